"""Multi-scale STFT discriminator (MS-STFTD, EnCodec) with hinge adversarial and feature-matching losses.

Each scale takes the complex STFT of the audio (``n_fft``, hop ``n_fft // 4``, Hann window) as
real and imaginary channels ``[B, 2 C, frames, bins]`` and runs a stack of weight-normalised 2-d
convolutions with LeakyReLU(0.2): a (3, 9) conv, then (3, 9) convs strided 2 along frequency with
time dilations 1, 2, 4, then a (3, 3) conv and a (3, 3) conv to one logit map. It returns the
logits and every intermediate feature map (for feature matching).

Losses (hinge, as EnCodec/audiocraft):
- discriminator: ``mean(relu(1 - D(x))) + mean(relu(1 + D(G(z))))`` per scale, averaged;
- generator: ``mean(relu(1 - D(G(z))))`` per scale, averaged;
- feature matching: ``L1(f(G(z)), f(x)) / mean(|f(x)|)`` per feature map, averaged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm


class STFTDiscriminator(nn.Module):
    """One scale: waveform ``[B, C, T]`` -> (logits ``[B, 1, frames', bins']``, feature maps)."""

    def __init__(
        self, channels: int = 1, filters: int = 32, n_fft: int = 1024, dilations: Sequence[int] = (1, 2, 4)
    ) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = n_fft // 4
        convs = [weight_norm(nn.Conv2d(2 * channels, filters, (3, 9), padding=(1, 4)))]
        for d in dilations:
            convs.append(
                weight_norm(
                    nn.Conv2d(filters, filters, (3, 9), stride=(1, 2), dilation=(d, 1), padding=(d, 4))
                )
            )
        convs.append(weight_norm(nn.Conv2d(filters, filters, (3, 3), padding=(1, 1))))
        self.convs = nn.ModuleList(convs)
        self.post = weight_norm(nn.Conv2d(filters, 1, (3, 3), padding=(1, 1)))

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, c, t = wav.shape
        flat = wav.reshape(b * c, t)
        if t <= self.n_fft // 2:
            flat = F.pad(flat, (0, self.n_fft // 2 + 1 - t))
        window = torch.hann_window(self.n_fft, device=wav.device, dtype=wav.dtype)
        spec = torch.stft(flat, self.n_fft, self.hop_length, window=window, return_complex=True)
        spec = torch.view_as_real(spec)  # [B*C, bins, frames, 2]
        x = (
            spec.view(b, c, *spec.shape[1:])
            .permute(0, 1, 4, 3, 2)
            .reshape(b, 2 * c, spec.shape[2], spec.shape[1])
        )
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
            features.append(x)
        return self.post(x), features


class MultiScaleSTFTDiscriminator(nn.Module):
    """Several ``STFTDiscriminator`` at different STFT sizes; returns lists over scales."""

    def __init__(
        self, channels: int = 1, filters: int = 32, n_ffts: Sequence[int] = (2048, 1024, 512)
    ) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList([STFTDiscriminator(channels, filters, n) for n in n_ffts])

    def forward(self, wav: torch.Tensor) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        logits, features = [], []
        for disc in self.discriminators:
            lg, ft = disc(wav)
            logits.append(lg)
            features.append(ft)
        return logits, features


def discriminator_hinge_loss(
    real_logits: list[torch.Tensor], fake_logits: list[torch.Tensor]
) -> torch.Tensor:
    losses = [F.relu(1 - r).mean() + F.relu(1 + f).mean() for r, f in zip(real_logits, fake_logits)]
    return torch.stack(losses).mean()


def generator_hinge_loss(fake_logits: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack([F.relu(1 - f).mean() for f in fake_logits]).mean()


def feature_matching_loss(
    real_features: list[list[torch.Tensor]], fake_features: list[list[torch.Tensor]]
) -> torch.Tensor:
    losses = []
    for rs, fs in zip(real_features, fake_features):
        for r, f in zip(rs, fs):
            r = r.detach()
            losses.append(F.l1_loss(f, r) / r.abs().mean().clamp_min(1e-8))
    return torch.stack(losses).mean()
