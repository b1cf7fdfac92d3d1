"""Helpers shared by the embedders: local weight files, digests, safe torch loading with numpy data."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.files import file_digest as bench_file_digest
from bench.files import files_digest
from musicgen.checkpoints.files import MissingCheckpointFile, resolve_local
from musicgen.checkpoints.peek import check_weight_file


def local_file(path: str, what: str, how_to_get: str) -> Path:
    """An existing local file for ``path`` (a path or a file inside a local HF snapshot), else a
    ``MissingCheckpointFile`` naming it and how to get it."""
    try:
        p = resolve_local(path)
    except MissingCheckpointFile as e:
        raise MissingCheckpointFile(f"{what}: {str(e).rstrip('.')}. {how_to_get}") from None
    if not p.is_file():
        raise MissingCheckpointFile(f"{what}: {str(p)!r} is not a file. {how_to_get}")
    return p


def check_weight_files(embedder: Any, *specs: tuple[str, tuple[str, ...], str]) -> list[str]:
    """``validate``'s look at an embedder's ``weight_files()``: each is present, not empty, readable as
    what its name says, and holds names matching the patterns of its spec ``(what, required, how to
    get it)`` (read from the safetensors header or the pickle's opcodes; no tensor is loaded). One line
    per problem, each with the one instruction that fixes it."""
    if embedder.in_memory:
        return []
    try:
        files = embedder.weight_files()
    except FileNotFoundError as e:
        return [str(e)]
    return [line for f, (what, required, how) in zip(files, specs)
            for line in check_weight_file(f, what, required, how)]


#: one sha256 hex string for one file, or joined digests of several files (``bench.files``)
digest_of = files_digest


def file_digest(path: str, mtime_ns: int, size: int) -> str:
    """Deprecated: use ``bench.files.file_digest(path)`` (memoised by path, size and mtime itself)."""
    warnings.warn("bench.embedders.common.file_digest is deprecated; use bench.files.file_digest(path)",
                  DeprecationWarning, stacklevel=2)
    return bench_file_digest(path)


def _numpy_safe_globals() -> list[Any]:
    """The numpy classes pickled arrays and scalars need, allow-listed for ``weights_only`` loads.

    numpy 2 moved ``numpy.core`` to ``numpy._core``: files saved under numpy 1.x (the released laion
    CLAP checkpoint, torchvggish's PCA file) name ``numpy.core.multiarray.scalar`` and
    ``_reconstruct``, files saved under numpy 2 name ``numpy._core.multiarray.*``. Both spellings are
    registered for the running numpy's objects, so either file loads under either numpy."""
    core = np._core if hasattr(np, "_core") and hasattr(np._core, "multiarray") else np.core
    out: list[Any] = [np.ndarray, np.dtype]
    for fn in (core.multiarray._reconstruct, core.multiarray.scalar):
        out += [(fn, f"{package}.multiarray.{fn.__name__}") for package in ("numpy.core", "numpy._core")]
    out += [type(np.dtype(t)) for t in ("float16", "float32", "float64", "int32", "int64", "uint8", "bool")]
    return out


def torch_load_with_numpy(path: Path) -> Any:
    """``torch.load(weights_only=True)`` that also accepts numpy arrays and scalars (e.g. torchvggish's
    PCA parameters, laion CLAP's epoch bookkeeping). Anything else fails loudly; no unsafe fallback."""
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        from musicgen.checkpoints.files import weights_only_refusal

        raise weights_only_refusal(path, e) from None


def unwrap_state_dict(obj: Any, keys: tuple[str, ...] = ("state_dict", "model", "best_state")) -> dict:
    """The tensor mapping inside a checkpoint that may wrap it under one of ``keys``."""
    for k in keys:
        if isinstance(obj, dict) and k in obj and isinstance(obj[k], dict):
            return obj[k]
    if not isinstance(obj, dict):
        raise ValueError(f"checkpoint holds a {type(obj).__name__}, not a state dict")
    return obj


def require_length(wav: np.ndarray, min_samples: int, name: str, sample_rate: int) -> np.ndarray:
    """Mono float32 ``[T]``; a clip shorter than ``min_samples`` raises a clear error."""
    x = np.asarray(wav, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"{name}: expected mono audio [T]; got shape {x.shape}")
    if x.shape[0] < min_samples:
        raise ValueError(f"{name}: clip of {x.shape[0]} samples ({x.shape[0] / sample_rate:.3f} s) is "
                         f"shorter than the backbone's window of {min_samples} samples "
                         f"({min_samples / sample_rate:.3f} s at {sample_rate} Hz)")
    return x


def embed_clips(embedder: Any, wavs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Several mono clips at the embedder's rate -> their ``[F_i, D]`` features, in order: through the
    backbone's ``embed_batch(wavs)`` (several clips per network call) where it has one, else one
    ``embed`` per clip."""
    batch = getattr(embedder, "embed_batch", None)
    return list(batch(wavs)) if callable(batch) else [embedder.embed(w) for w in wavs]


def embed_each(embedder: Any, wavs: Sequence[np.ndarray]) -> list[Any]:
    """:func:`embed_clips`, and when that batch call fails (or returns another number of outputs),
    one clip at a time: per clip, in order, its features or the exception its own call raised, so a
    caller can name the bad clip and keep the others."""
    try:
        feats = embed_clips(embedder, wavs)
        if len(feats) != len(wavs):
            raise ValueError(f"returned {len(feats)} outputs for {len(wavs)} clips")
        return feats
    except Exception as e:
        if len(wavs) == 1:
            return [e]
    out: list[Any] = []
    for w in wavs:
        try:
            out += embed_clips(embedder, [w])
        except Exception as e:
            out.append(e)
    return out
