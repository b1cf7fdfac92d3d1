"""Per-clip audio checks: non-finite samples and silence are flagged, never averaged in silently."""

from __future__ import annotations

import numpy as np

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


def to_mono(wav: np.ndarray) -> np.ndarray:
    """``[C, T]`` or ``[T]`` -> float32 ``[T]`` (channel mean)."""
    x = np.asarray(wav, dtype=np.float32)
    if x.ndim == 2:
        return x.mean(axis=0)
    if x.ndim != 1:
        raise ValueError(f"audio must be [C, T] or [T]; got shape {x.shape}")
    return x


def resample(wav: np.ndarray, sample_rate: int, target_rate: int) -> np.ndarray:
    """Mono ``[T]`` float32 resampled with julius (identity when the rates match)."""
    if sample_rate == target_rate:
        return np.asarray(wav, dtype=np.float32)
    import julius
    import torch

    y = julius.resample_frac(torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32)),
                             int(sample_rate), int(target_rate))
    return y.numpy()
