"""Cache entries that cannot lie: each file carries the key it was written under and a digest of
its content, and is checked against both (and against the prompt id and seed it promises) when read.

A clip entry (``.npz``, no pickles) holds ``wav`` ``[C, T]`` float32, ``sample_rate``, optional
``tokens`` ``[K, T]`` int64, ``meta`` (JSON: prompt id, seed, generator metadata) and ``entry`` (JSON:
``{"key", "sha256"}``, the sha256 over every other member's dtype, shape and bytes). An array entry
(embeddings ``[F, D]``, reference tokens) holds ``array`` and ``entry`` the same way.

``unpack_*`` raises ``DamagedEntry`` (one line: the file and what is wrong) for a file that is
truncated, empty, not a zip, fails its CRC, lacks a member, was written under another key (a valid
entry copied to another name), whose content digest does not match (a flipped byte), or whose prompt
id or seed is not the one asked for. The store then treats the entry as missing: it is recomputed,
counted, and never used.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from bench.api import AudioClip


class DamagedEntry(ValueError):
    """A cache file that is not what its key promises."""


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _pack(key: str, arrays: dict[str, np.ndarray]) -> bytes:
    entry = json.dumps({"key": key, "sha256": _digest(arrays)})
    buf = io.BytesIO()
    np.savez(buf, **arrays, entry=np.array(entry))
    return buf.getvalue()


def _unpack(path: Path, key: str, names: tuple[str, ...],
            optional: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            members = set(z.files)
            missing = [n for n in (*names, "entry") if n not in members]
            if missing:
                raise DamagedEntry(f"cache file {path} lacks {', '.join(missing)}")
            arrays = {n: z[n] for n in (*names, *optional) if n in members}
            entry = json.loads(str(z["entry"]))
    except DamagedEntry:
        raise
    except (OSError, ValueError, EOFError, KeyError, TypeError, zipfile.BadZipFile, zlib.error) as e:
        raise DamagedEntry(f"cache file {path} cannot be read ({type(e).__name__}: "
                           f"{' '.join(str(e).split()) or 'empty or truncated'})") from None
    if not isinstance(entry, dict) or entry.get("key") != key:
        got = entry.get("key") if isinstance(entry, dict) else entry
        raise DamagedEntry(f"cache file {path} was written under another key ({str(got)[:16]}...)")
    if entry.get("sha256") != _digest(arrays):
        raise DamagedEntry(f"cache file {path}: its content does not match its digest")
    return arrays


def pack_clip(key: str, clip: AudioClip) -> bytes:
    """The bytes of a clip entry for ``key``."""
    meta = {**clip.meta, "prompt_id": clip.prompt_id, "seed": int(clip.seed)}
    arrays: dict[str, Any] = {"wav": np.asarray(clip.wav, dtype=np.float32),
                              "sample_rate": np.int64(clip.sample_rate),
                              "meta": np.array(json.dumps(meta, default=str))}
    if clip.tokens is not None:
        arrays["tokens"] = np.asarray(clip.tokens, dtype=np.int64)
    return _pack(key, arrays)


def unpack_clip(path: Path, key: str, prompt_id: str | None = None, seed: int | None = None) -> AudioClip:
    """The clip in ``path`` if it is ``key``'s (and ``prompt_id``'s and ``seed``'s when given);
    ``DamagedEntry`` otherwise."""
    z = _unpack(path, key, ("wav", "sample_rate", "meta"), ("tokens",))
    try:
        meta = json.loads(str(z["meta"]))
        clip = AudioClip(wav=z["wav"].astype(np.float32), sample_rate=int(z["sample_rate"]),
                         prompt_id=str(meta.pop("prompt_id")), seed=int(meta.pop("seed")),
                         tokens=z.get("tokens"), meta=meta)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise DamagedEntry(f"cache file {path}: malformed clip ({type(e).__name__}: {e})") from None
    if (prompt_id is not None and clip.prompt_id != prompt_id) or (seed is not None and clip.seed != seed):
        raise DamagedEntry(f"cache file {path} holds prompt {clip.prompt_id!r} seed {clip.seed}, not "
                           f"prompt {prompt_id!r} seed {seed}")
    return clip


def pack_array(key: str, array: np.ndarray) -> bytes:
    """The bytes of an array entry (embeddings, reference tokens) for ``key``."""
    return _pack(key, {"array": np.asarray(array)})


def unpack_array(path: Path, key: str) -> np.ndarray:
    """The array in ``path`` if it is ``key``'s; ``DamagedEntry`` otherwise."""
    return _unpack(path, key, ("array",))["array"]
