"""The run directory: content-addressed caches, atomic writes, and paths that stay inside it.

Layout of a run directory::

    RUN/results.json            flat records (see bench.score)
    RUN/samples.csv             per-sample table (and samples.parquet when pyarrow is installed)
    RUN/audio/<label>/<prompt>__s<seed>.wav   the evaluated (normalised, trimmed) audio, for reports
    RUN/cache/clips/<ab>/<sha256>.npz         generated clips, keyed by ``clip_key``
    RUN/cache/embeddings/<ab>/<sha256>.npz    frame embeddings, keyed by ``embedding_key``
    RUN/cache/tokens/<ab>/<sha256>.npz        reference tokens, keyed by ``reference_tokens_key``

Every cache entry is checked when read (``bench.cache_entry``: the key it was written under, a digest
of its content, the prompt id and seed it promises); a damaged entry (flipped byte, truncated, empty,
copied under another key) is removed, counted in ``RunStore.damaged`` and recomputed, never used.

Every write is atomic (``bench.files.atomic_write_bytes``: a temporary file in the destination folder
renamed into place), so a process killed at any moment leaves either the old file, the new file or
nothing, never half a file; a rerun finds what is complete and redoes the rest. ``RunStore.path``
refuses any relative path that would land outside the run directory (absolute paths, ``..``,
symlinks out).
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from bench import __version__
from bench.api import AudioClip, Prompt
from bench.cache_entry import DamagedEntry, pack_array, pack_clip, unpack_array, unpack_clip
from bench.files import atomic_write_bytes, atomic_write_json, atomic_write_text, file_digest, sha256_json

__all__ = ["CACHE_FORMAT", "PathEscapeError", "RunStore", "atomic_write_bytes", "atomic_write_text",
           "audio_digest", "clip_key", "embedding_key", "prompt_identity", "reference_tokens_key",
           "sha256_json"]  # the atomic writes and sha256_json live in bench.files

#: bump when the meaning of a cached clip or embedding changes without a version change elsewhere
CACHE_FORMAT = 2  # 2: entries carry their key and content digest (bench.cache_entry); files by content


class PathEscapeError(ValueError):
    """A path that would read or write outside the run directory."""


def _file_identity(path: Path | None) -> str | None:
    """The sha256 of a prompt's file: its content, not where it lies (a run directory moved or copied
    elsewhere, with a synthesized dataset inside it, keeps its cache; an edited file does not)."""
    return None if path is None else file_digest(path)


def prompt_identity(prompt: Prompt) -> dict[str, Any]:
    """What makes a prompt this prompt: id, text, metadata and the content of the files it points to
    (so an edited reference or melody file invalidates the cache; no absolute path enters a key)."""
    return {"id": prompt.id, "text": prompt.text, "metadata": dict(prompt.metadata),
            "melody": _file_identity(prompt.melody_path), "reference": _file_identity(prompt.reference_path)}


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
        #: damaged cache entries met (kind -> one line each); they were removed and are recomputed
        self.damaged: dict[str, list[str]] = {}

    def lock(self) -> None:
        """Take the run directory for this process (an exclusive ``flock`` on ``RUN/.lock``, released
        when the process ends, even by SIGKILL) and remove temporary files a killed run left behind.
        A second run into the same directory fails at once instead of racing the first; a run
        directory holding a link to a folder outside it (``links_out``) is refused."""
        import fcntl

        f = open(self.root / ".lock", "a",  # noqa: SIM115 - held for the life of the store
                 opener=lambda p, flags: os.open(p, flags | os.O_NOFOLLOW, 0o666))
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            raise RuntimeError(f"another bench run is using {self.root}; wait for it or use another "
                               f"--out") from None
        self._lock_file = f
        escaping = self.links_out()
        if escaping:
            self.unlock()
            raise RuntimeError(f"the run directory {self.root} holds a link to a folder outside it "
                               f"({'; '.join(escaping[:3])}); remove the link or use another --out")
        self.remove_temporaries()

    def remove_temporaries(self) -> list[Path]:
        """Remove the temporaries a killed run left: only names our atomic writes make
        (``musicgen.checkpoints.files.TEMPORARY_NAME``), only plain files, only in our folders (the run
        directory itself, ``cache/`` and ``audio/`` below it); a user's own ``.x.tmp`` stays."""
        from musicgen.checkpoints.files import TEMPORARY_NAME

        removed = []
        folders = [self.root] + [d for sub in ("cache", "audio") if (self.root / sub).is_dir()
                                 and not (self.root / sub).is_symlink()
                                 for d in [self.root / sub, *(self.root / sub).rglob("*")]]
        for folder in folders:
            if not folder.is_dir() or folder.is_symlink():
                continue
            for f in folder.iterdir():
                if TEMPORARY_NAME.match(f.name) and f.is_file() and not f.is_symlink():
                    f.unlink(missing_ok=True)
                    removed.append(f)
        return removed

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
        full = self.root / rel
        if rel.name not in ("", ".", ".."):  # the file itself may be a link: writes replace it, never follow
            full = full.parent.resolve() / rel.name
        else:
            full = full.resolve()
        if full != self.root and self.root not in full.parents:
            raise PathEscapeError(f"{str(relative)!r} resolves to {full}, outside the run directory "
                                  f"{self.root}")
        return full

    def links_out(self) -> list[str]:
        """Folders of ours (the run directory's entries, everything under ``cache/`` and ``audio/``)
        that are links leading outside the run directory: writes there would land elsewhere."""
        out = []
        candidates = list(self.root.iterdir())
        for sub in ("cache", "audio"):
            if (self.root / sub).is_dir() and not (self.root / sub).is_symlink():
                candidates += list((self.root / sub).rglob("*"))
        for p in candidates:
            if p.is_symlink() and p.is_dir():
                target = p.resolve()
                if target != self.root and self.root not in target.parents:
                    out.append(f"{p} -> {target}")
        return out

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
        return atomic_write_json(self.path(relative), obj)
