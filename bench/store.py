"""The run directory: content-addressed caches, atomic writes, and paths that stay inside it.

Layout of a run directory::

    RUN/results.json            flat records (see bench.runner)
    RUN/samples.csv             per-sample table (and samples.parquet when pyarrow is installed)
    RUN/audio/<label>/<prompt>__s<seed>.wav   the evaluated (normalised, trimmed) audio, for reports
    RUN/cache/clips/<ab>/<sha256>.npz         generated clips, keyed by ``clip_key``
    RUN/cache/embeddings/<ab>/<sha256>.npz    frame embeddings, keyed by ``embedding_key``
    RUN/cache/tokens/<ab>/<sha256>.npz        reference tokens, keyed by ``reference_tokens_key``

Every cache entry is checked when read (``bench.cache_entry``: the key it was written under, a digest
of its content, the prompt id and seed it promises); a damaged entry (flipped byte, truncated, empty,
copied under another key) is removed, counted in ``RunStore.damaged`` and recomputed, never used.

Every write goes to a temporary file in the destination folder and is renamed into place with
``os.replace``, so a process killed at any moment leaves either the old file, the new file or nothing,
never half a file; a rerun finds what is complete and redoes the rest. ``RunStore.path`` refuses any
relative path that would land outside the run directory (absolute paths, ``..``, symlinks out).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from bench import __version__
from bench.api import AudioClip, Prompt
from bench.cache_entry import DamagedEntry, pack_array, pack_clip, unpack_array, unpack_clip

_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read the process umask once (os.umask can only be read by setting it)

#: bump when the meaning of a cached clip or embedding changes without a version change elsewhere
CACHE_FORMAT = 2  # 2: entries carry their key and content digest (bench.cache_entry)


class PathEscapeError(ValueError):
    """A path that would read or write outside the run directory."""


def sha256_json(obj: Any) -> str:
    """sha256 hex of the canonical JSON of ``obj`` (sorted keys; non-JSON values through ``str``)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _file_stamp(path: Path | None) -> list[Any] | None:
    if path is None:
        return None
    st = Path(path).stat()
    return [str(path), st.st_size, st.st_mtime_ns]


def prompt_identity(prompt: Prompt) -> dict[str, Any]:
    """What makes a prompt this prompt: id, text, metadata and the files it points to (path, size,
    modification time, so an edited reference or melody file invalidates the cache)."""
    return {"id": prompt.id, "text": prompt.text, "metadata": dict(prompt.metadata),
            "melody": _file_stamp(prompt.melody_path), "reference": _file_stamp(prompt.reference_path)}


def clip_key(fingerprint: str, prompt: Prompt, seed: int, duration_s: float) -> str:
    """Cache key of one generated clip."""
    return sha256_json({"kind": "clip", "format": CACHE_FORMAT, "bench": __version__,
                        "generator": fingerprint, "prompt": prompt_identity(prompt), "seed": int(seed),
                        "duration_s": float(duration_s)})


def reference_tokens_key(fingerprint: str, digest_of_audio: str) -> str:
    """Cache key of a reference clip's tokens in one generator's codec."""
    return sha256_json({"kind": "reference_tokens", "format": CACHE_FORMAT, "bench": __version__,
                        "generator": fingerprint, "audio": digest_of_audio})


def audio_digest(wav: np.ndarray, sample_rate: int) -> str:
    """sha256 hex of float32 samples, shape and sample rate."""
    a = np.ascontiguousarray(wav, dtype=np.float32)
    h = hashlib.sha256(f"{a.shape}|{int(sample_rate)}|".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def embedding_key(name: str, version: str, sample_rate: int, checkpoint_digest: str,
                  params: Mapping[str, Any], digest_of_audio: str) -> str:
    """Cache key of one clip's frame embeddings for one embedder configuration."""
    return sha256_json({"kind": "embedding", "format": CACHE_FORMAT, "embedder": name,
                        "version": version, "sample_rate": int(sample_rate),
                        "checkpoint": checkpoint_digest, "params": dict(params), "audio": digest_of_audio})


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs are readable like any file we write
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


class RunStore:
    """A run directory with its caches (the runner counts hits and misses)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.root = Path(run_dir).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_file = None
        #: damaged cache entries met (kind -> one line each); they were removed and are recomputed
        self.damaged: dict[str, list[str]] = {}

    def lock(self) -> None:
        """Take the run directory for this process (an exclusive ``flock`` on ``RUN/.lock``, released
        when the process ends, even by SIGKILL) and remove temporary files a killed run left behind.
        A second run into the same directory fails at once instead of racing the first."""
        import fcntl

        f = open(self.root / ".lock", "a")  # noqa: SIM115 - held for the life of the store
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            raise RuntimeError(f"another bench run is using {self.root}; wait for it or use another "
                               f"--out") from None
        self._lock_file = f
        for tmp in self.root.rglob(".*.tmp"):
            tmp.unlink(missing_ok=True)

    def unlock(self) -> None:
        """Release the run directory (also done by the end of the process)."""
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def path(self, relative: str | Path) -> Path:
        """``root / relative``, refusing anything that resolves outside the run directory."""
        rel = Path(relative)
        if rel.is_absolute() or str(relative).startswith("~"):
            raise PathEscapeError(f"{str(relative)!r} is absolute; suite paths must be relative to "
                                  f"the run directory {self.root}")
        full = (self.root / rel).resolve()
        if full != self.root and self.root not in full.parents:
            raise PathEscapeError(f"{str(relative)!r} resolves to {full}, outside the run directory "
                                  f"{self.root}")
        return full

    @property
    def cache_dir(self) -> Path:
        return self.path("cache")

    def _cache_file(self, kind: str, key: str, suffix: str) -> Path:
        return self.path(f"cache/{kind}/{key[:2]}/{key}{suffix}")

    # -- clips -----------------------------------------------------------------------------------
    def _entry_damaged(self, kind: str, f: Path, error: DamagedEntry) -> None:
        """Count a damaged cache entry and remove it, so it is recomputed like a missing one."""
        self.damaged.setdefault(kind, []).append(str(error))
        f.unlink(missing_ok=True)

    def has_clip(self, key: str, prompt_id: str | None = None, seed: int | None = None) -> bool:
        """Whether a sound clip entry for ``key`` (and ``prompt_id``/``seed``) is cached; a damaged
        one is removed and counted (``damaged``)."""
        return self.load_clip(key, prompt_id, seed) is not None

    def load_clip(self, key: str, prompt_id: str | None = None, seed: int | None = None) -> AudioClip | None:
        """The cached clip for ``key``, checked (``bench.cache_entry``); None when missing or damaged."""
        f = self._cache_file("clips", key, ".npz")
        if not f.is_file():
            return None
        try:
            return unpack_clip(f, key, prompt_id, seed)
        except DamagedEntry as e:
            self._entry_damaged("clips", f, e)
            return None

    def save_clip(self, key: str, clip: AudioClip) -> Path:
        f = self._cache_file("clips", key, ".npz")
        atomic_write_bytes(f, pack_clip(key, clip))
        return f

    def count_clips(self) -> int:
        d = self.root / "cache" / "clips"
        return sum(1 for _ in d.glob("*/*.npz")) if d.is_dir() else 0

    # -- embeddings and reference tokens (kind "embeddings" or "tokens") ---------------------------
    def load_array(self, kind: str, key: str) -> np.ndarray | None:
        """The cached array for ``key``, checked; None when missing or damaged (counted)."""
        f = self._cache_file(kind, key, ".npz")
        if not f.is_file():
            return None
        try:
            return unpack_array(f, key)
        except DamagedEntry as e:
            self._entry_damaged(kind, f, e)
            return None

    def save_array(self, kind: str, key: str, array: np.ndarray) -> None:
        atomic_write_bytes(self._cache_file(kind, key, ".npz"), pack_array(key, array))

    def load_embedding(self, key: str) -> np.ndarray | None:
        return self.load_array("embeddings", key)

    def save_embedding(self, key: str, features: np.ndarray) -> None:
        self.save_array("embeddings", key, features)

    # -- outputs ---------------------------------------------------------------------------------
    def write_audio(self, relative: str, wav: np.ndarray, sample_rate: int) -> Path:
        """A 16-bit WAV of ``wav`` ``[C, T]`` for listening (reports), written atomically."""
        buf = io.BytesIO()
        sf.write(buf, np.clip(wav, -1.0, 1.0).T, sample_rate, format="WAV", subtype="PCM_16")
        path = self.path(relative)
        atomic_write_bytes(path, buf.getvalue())
        return path

    def write_json(self, relative: str, obj: Any) -> Path:
        path = self.path(relative)
        atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
        return path
