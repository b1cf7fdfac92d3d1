"""Per-clip audio checks: non-finite samples and silence are flagged, never averaged in silently."""

from __future__ import annotations

import numpy as np

from bench.audio import resample, to_mono  # noqa: F401  (re-exported: their home is bench.audio)

#: peak amplitude at or under which a clip counts as silent (-100 dBFS)
SILENCE_PEAK = 1e-5


def audio_flags(wav: np.ndarray, silence_peak: float = SILENCE_PEAK) -> list[str]:
    """``["nonfinite"]``, ``["silent"]`` or ``[]`` for audio of any shape."""
    x = np.asarray(wav)
    if x.size == 0:
        return ["empty"]
    if not np.all(np.isfinite(x)):
        return ["nonfinite"]
    if float(np.max(np.abs(x))) <= silence_peak:
        return ["silent"]
    return []
