"""Waveform helpers shared by the codec, the conditioners and the training data: channel mixing and
resampling (julius's band-limited sinc; never torchaudio).

Both work on torch tensors whose last axis is time; they leave the dtype alone (except that integer
audio is not accepted by julius) and return the input itself when there is nothing to do.
"""

from __future__ import annotations

import torch


def to_mono(wav: torch.Tensor, channel_dim: int = -2) -> torch.Tensor:
    """Average the channels on ``channel_dim`` (kept, with size 1): ``[..., C, T]`` -> ``[..., 1, T]``."""
    return wav.mean(dim=channel_dim, keepdim=True)


def resample(wav: torch.Tensor, from_rate: int, to_rate: int) -> torch.Tensor:
    """``wav [..., T]`` at ``from_rate`` Hz -> ``[..., T']`` at ``to_rate`` Hz, ``T' = round(T * to / from)``.

    Identity (the same tensor) when the rates are equal or there are no samples; a non-positive rate
    is a ``ValueError`` naming it.
    """
    from_rate, to_rate = int(from_rate), int(to_rate)
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {from_rate} Hz -> {to_rate} Hz")
    if from_rate == to_rate or wav.shape[-1] == 0:
        return wav
    import julius

    return julius.resample_frac(wav, from_rate, to_rate)
