"""Reconstruction losses for training the codec (waveform and spectral domains).

- ``l1_waveform(x, y)``: mean absolute error of the waveforms.
- ``MelSpectrogram``: ``|STFT|`` (``torch.stft``, periodic Hann, centred, reflect padding) times a
  librosa Slaney mel filter bank, ``[B, C, T] -> [B, C, n_mels, frames]``.
- ``MultiScaleMelLoss``: over STFT sizes ``n_fft`` (hop ``n_fft // 4``), the mean of
  ``L1(M(x), M(y)) + log_weight * MSE(log(M(x) + eps), log(M(y) + eps))``.
- ``MultiScaleSTFTLoss``: over STFT sizes, spectral convergence ``||S(x)-S(y)||_F / ||S(y)||_F`` plus
  ``L1(log S(x), log S(y))`` (linear magnitudes).
The commitment loss comes from the quantizer (``CodecOutput.commitment_loss``); the adversarial and
feature-matching losses from ``musicgen.train.discriminator``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F


def l1_waveform(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean ``|x - y|`` of two ``[B, C, T]`` waveforms."""
    return F.l1_loss(x, y)


def stft_magnitude(wav: torch.Tensor, n_fft: int, hop_length: int, power: float = 1.0) -> torch.Tensor:
    """``[B, C, T] -> [B, C, n_fft // 2 + 1, frames]`` magnitude (``power`` 1) or power (2) spectrogram."""
    b, c, t = wav.shape
    flat = wav.reshape(b * c, t)
    if t <= n_fft // 2:  # reflect padding needs more samples than half a window
        flat = F.pad(flat, (0, n_fft // 2 + 1 - t))
    window = torch.hann_window(n_fft, device=wav.device, dtype=wav.dtype)
    spec = torch.stft(
        flat, n_fft, hop_length, window=window, center=True, pad_mode="reflect", return_complex=True
    )
    mag = spec.abs().clamp_min(1e-8) if power == 1.0 else spec.abs().pow(power)
    return mag.view(b, c, *mag.shape[-2:])


class MelSpectrogram(nn.Module):
    """Mel magnitude spectrogram ``[B, C, T] -> [B, C, n_mels, frames]`` (librosa Slaney filters)."""

    def __init__(
        self,
        sample_rate: int,
        n_fft: int,
        hop_length: int,
        n_mels: int,
        f_min: float = 0.0,
        f_max: float | None = None,
    ) -> None:
        super().__init__()
        import librosa

        with warnings.catch_warnings():  # small n_fft leaves some mel bands empty: harmless zeros
            warnings.simplefilter("ignore")
            fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=f_min, fmax=f_max)
        self.register_buffer("filters", torch.from_numpy(fb).float(), persistent=False)
        self.n_fft = n_fft
        self.hop_length = hop_length

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        mag = stft_magnitude(wav, self.n_fft, self.hop_length)
        return torch.einsum("mf,bcft->bcmt", self.filters.to(mag.dtype), mag)


class MultiScaleMelLoss(nn.Module):
    """Mel reconstruction loss averaged over several STFT sizes (see the module docstring)."""

    def __init__(
        self,
        sample_rate: int,
        n_ffts: Sequence[int] = (32, 64, 128, 256, 512, 1024, 2048),
        n_mels: int = 64,
        log_weight: float = 1.0,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.mels = nn.ModuleList(
            [MelSpectrogram(sample_rate, n, n // 4, min(n_mels, n // 2)) for n in n_ffts]
        )
        self.log_weight = log_weight
        self.eps = eps

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        total = x.new_zeros(())
        for mel in self.mels:
            mx, my = mel(x), mel(y)
            total = total + F.l1_loss(mx, my)
            total = total + self.log_weight * F.mse_loss(torch.log(mx + self.eps), torch.log(my + self.eps))
        return total / len(self.mels)


class MultiScaleSTFTLoss(nn.Module):
    """Spectral convergence + log-magnitude L1, averaged over STFT sizes (hop ``n_fft // 4``)."""

    def __init__(self, n_ffts: Sequence[int] = (512, 1024, 2048)) -> None:
        super().__init__()
        self.n_ffts = list(n_ffts)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        total = x.new_zeros(())
        for n in self.n_ffts:
            sx, sy = stft_magnitude(x, n, n // 4), stft_magnitude(y, n, n // 4)
            total = total + torch.linalg.norm(sx - sy) / torch.linalg.norm(sy).clamp_min(1e-8)
            total = total + F.l1_loss(torch.log(sx), torch.log(sy))
        return total / len(self.n_ffts)
