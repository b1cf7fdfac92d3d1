"""The run directory: content-addressed caches, atomic writes, and paths that stay inside it.

Layout of a run directory::

    RUN/results.json            flat records (see bench.score)
    RUN/samples.csv             per-sample table (and samples.parquet when pyarrow is installed)
    RUN/audio/<label>/<prompt>__s<seed>.wav   the evaluated (normalised, trimmed) audio, for reports
    RUN/cache/clips/<ab>/<sha256>.npz         generated clips, keyed by ``clip_key``
    RUN/cache/embeddings/<ab>/<sha256>.npy    frame embeddings, keyed by ``embedding_key``

Every write is atomic (``bench.files.atomic_write_bytes``: a temporary file in the destination folder
renamed into place), so a process killed at any moment leaves either the old file, the new file or
nothing, never half a file; a rerun finds what is complete and redoes the rest. ``RunStore.path``
refuses any relative path that would land outside the run directory (absolute paths, ``..``,
symlinks out).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from bench import __version__
from bench.api import AudioClip, Prompt
from bench.files import atomic_write_bytes, atomic_write_json, atomic_write_text, sha256_json

__all__ = ["CACHE_FORMAT", "PathEscapeError", "RunStore", "atomic_write_bytes", "atomic_write_text",
           "audio_digest", "clip_key", "embedding_key", "prompt_identity", "reference_tokens_key",
           "sha256_json"]  # the atomic writes and sha256_json live in bench.files

#: bump when the meaning of a cached clip or embedding changes without a version change elsewhere
CACHE_FORMAT = 1


class PathEscapeError(ValueError):
    """A path that would read or write outside the run directory."""


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


def clip_key(fingerprint: str, prompt: Prompt, seed: int, duration_s: float,
             identity: str | None = None) -> str:
    """Cache key of one generated clip; ``identity`` is ``Generator.clip_identity`` (e.g. the digest of
    the file a ``files`` clip is read from), left out of the key when None."""
    parts = {"kind": "clip", "format": CACHE_FORMAT, "bench": __version__, "generator": fingerprint,
             "prompt": prompt_identity(prompt), "seed": int(seed), "duration_s": float(duration_s)}
    if identity is not None:
        parts["identity"] = identity
    return sha256_json(parts)


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


class RunStore:
    """A run directory with its caches (the runner counts hits and misses)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.root = Path(run_dir).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_file = None

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
        for pattern in (".*.tmp", ".*.tmp-*"):  # temporaries of atomic writes (bench.files)
            for tmp in self.root.rglob(pattern):
                if tmp.is_file():
                    tmp.unlink(missing_ok=True)

    def unlock(self) -> None:
        """Release the run directory (closing the locked file); a no-op when not locked. For callers
        that run several times in one process (``bench score`` after a failed run)."""
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
    def has_clip(self, key: str) -> bool:
        return self._cache_file("clips", key, ".npz").is_file()

    def load_clip(self, key: str) -> AudioClip | None:
        """The cached clip for ``key``, or None."""
        f = self._cache_file("clips", key, ".npz")
        if not f.is_file():
            return None
        with np.load(f, allow_pickle=False) as z:
            tokens = z["tokens"] if "tokens" in z.files else None
            meta = json.loads(str(z["meta"]))
            return AudioClip(wav=z["wav"].astype(np.float32), sample_rate=int(z["sample_rate"]),
                             prompt_id=meta.pop("prompt_id"), seed=int(meta.pop("seed")),
                             tokens=tokens, meta=meta)

    def save_clip(self, key: str, clip: AudioClip) -> Path:
        meta = {**clip.meta, "prompt_id": clip.prompt_id, "seed": int(clip.seed)}
        arrays: dict[str, Any] = {"wav": np.asarray(clip.wav, dtype=np.float32),
                                  "sample_rate": np.int64(clip.sample_rate),
                                  "meta": np.array(json.dumps(meta, default=str))}
        if clip.tokens is not None:
            arrays["tokens"] = np.asarray(clip.tokens, dtype=np.int64)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        f = self._cache_file("clips", key, ".npz")
        atomic_write_bytes(f, buf.getvalue())
        return f

    def count_clips(self) -> int:
        d = self.root / "cache" / "clips"
        return sum(1 for _ in d.glob("*/*.npz")) if d.is_dir() else 0

    # -- embeddings and reference tokens (kind "embeddings" or "tokens") ---------------------------
    def load_array(self, kind: str, key: str) -> np.ndarray | None:
        f = self._cache_file(kind, key, ".npy")
        if not f.is_file():
            return None
        return np.load(f, allow_pickle=False)

    def save_array(self, kind: str, key: str, array: np.ndarray) -> None:
        buf = io.BytesIO()
        np.save(buf, np.asarray(array), allow_pickle=False)
        atomic_write_bytes(self._cache_file(kind, key, ".npy"), buf.getvalue())

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
        return atomic_write_json(self.path(relative), obj)
