"""Small helpers shared by the adapters: fingerprints, per-prompt seeds, cropping to a length, missing
packages, and ``weights_digest`` (an alias of ``bench.files.tree_digest``)."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from bench.files import sha256_json, tree_digest

#: sha256 over a weights file or every file of a folder, memoised in a cache folder (``bench.files``)
weights_digest = tree_digest


def fingerprint_of(kind: str, code_version: str, params: Any, **extra: Any) -> str:
    """sha256 hex of an adapter's identity: its kind, code version, params and extra parts
    (weights digest, ...). Change ``code_version`` whenever the adapter's output changes."""
    dump = params.model_dump(mode="json") if hasattr(params, "model_dump") else params
    return sha256_json({"kind": kind, "code": code_version, "params": dump, **extra})


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
