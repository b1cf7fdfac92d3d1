"""Small helpers shared by the adapters: fingerprints, per-prompt random generators, audio fitting."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np


def fingerprint_of(kind: str, code_version: str, params: Any, **extra: Any) -> str:
    """sha256 hex of an adapter's identity: its kind, code version, params and extra parts
    (weights digest, ...). Change ``code_version`` whenever the adapter's output changes."""
    dump = params.model_dump(mode="json") if hasattr(params, "model_dump") else params
    text = json.dumps({"kind": kind, "code": code_version, "params": dump, **extra},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def prompt_seed(seed: int, prompt_id: str) -> int:
    """A 63-bit seed from (seed, prompt id): the same clip whatever the batch it is generated in."""
    digest = hashlib.sha256(f"{int(seed)}|{prompt_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def fit_length(wav: np.ndarray, num_samples: int) -> np.ndarray:
    """Crop ``[C, T]`` to ``num_samples`` (shorter audio stays shorter: trimming is the runner's job)."""
    return np.ascontiguousarray(wav[..., :num_samples], dtype=np.float32)


def missing_packages(*modules: str) -> list[str]:
    """The import names among ``modules`` that are not installed (without importing them)."""
    import importlib.util

    out = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            out.append(name)
    return out


def weights_digest(path: Path, cache_dir: Path | None = None) -> str:
    """sha256 hex over a weights file or every file of a folder (sorted relative names + bytes).

    Hashing gigabytes each run would be slow, so digests are memoised in ``cache_dir/digests.json``
    keyed by (path, size, mtime) of every file: an edited or replaced file is hashed again.
    """
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    stamp = json.dumps([[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in files])
    memo_file = Path(cache_dir) / "digests.json" if cache_dir is not None else None
    memo: dict[str, str] = {}
    if memo_file is not None and memo_file.is_file():
        try:
            memo = json.loads(memo_file.read_text())
        except json.JSONDecodeError:
            memo = {}
    if stamp in memo:
        return memo[stamp]
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode() + b"\0")
        with open(f, "rb") as fh:
            while block := fh.read(1 << 20):
                h.update(block)
    digest = h.hexdigest()
    if memo_file is not None:
        import os
        import tempfile

        memo[stamp] = digest
        memo_file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=memo_file.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(memo, fh)
        os.replace(tmp, memo_file)
    return digest
