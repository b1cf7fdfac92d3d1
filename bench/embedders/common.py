"""Helpers shared by the embedders: local weight files, digests, safe torch loading with numpy data."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musicgen.checkpoints.files import MissingCheckpointFile, resolve_local, sha256_file
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


def check_weights(path: str, what: str, how_to_get: str, required: tuple[str, ...] = ()) -> list[str]:
    """``validate``'s look at one weight file: present, not empty, readable as what its name says, and
    holding names that match each pattern of ``required`` (read from the safetensors header or the
    pickle's opcodes, no tensor loaded). One line per problem, each with the one instruction."""
    try:
        p = local_file(path, what, how_to_get)
    except FileNotFoundError as e:
        return [str(e)]
    return check_weight_file(p, what, required, how_to_get)


@functools.lru_cache(maxsize=32)
def file_digest(path: str, mtime_ns: int, size: int) -> str:
    """sha256 of a file, cached by (path, mtime, size)."""
    return sha256_file(Path(path))


def digest_of(*paths: Path) -> str:
    """One sha256 hex string for one file, or joined digests of several files."""
    parts = [file_digest(str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths]
    return parts[0] if len(parts) == 1 else hashlib.sha256("+".join(parts).encode()).hexdigest()


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
        raise ValueError(f"{path}: could not be read as a weights-only torch checkpoint ({e})") from e


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
