"""MusicGen: codec, codebook patterns, transformer LM, conditioning, sampling and checkpoints.

The public entry points are imported lazily so that ``import musicgen`` stays cheap and so that a
submodule's optional dependencies are only needed when it is used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "MusicGen": "musicgen.models.musicgen",
    "CompressionModel": "musicgen.models.codec",
    "LMModel": "musicgen.models.lm",
    "get_pattern": "musicgen.modules.patterns",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'musicgen' has no attribute {name!r}")


__all__ = list(_LAZY)
