"""A small, reusable codec training loop (``musicgen.train.codec_solver`` adds data, checkpoints, resume).

``CodecTrainer(model, CodecTrainConfig(...)).step(wav [B, C, T])`` does one optimisation step:
encode-quantize-decode, reconstruction losses (L1 waveform, multi-scale mel, optional multi-scale
STFT) and, with ``adversarial=True``, the MS-STFT discriminator's hinge and feature-matching losses;
the output-side losses go through the ``Balancer`` (weights are fractions of the gradient) and the
commitment loss is added directly on the encoder side. ``state_dict``/``load_state_dict`` cover the
optimisers, discriminator and balancer so a solver can checkpoint the trainer.
``train_codec(model, batches, config)`` runs ``config.steps`` steps and returns the per-step logs.
``tone_batches`` yields synthetic training audio (random sums of sines with an envelope).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from musicgen.models.codec import CompressionModel
from musicgen.train.balancer import Balancer
from musicgen.train.codec_losses import MultiScaleMelLoss, MultiScaleSTFTLoss, l1_waveform
from musicgen.train.discriminator import (
    MultiScaleSTFTDiscriminator,
    discriminator_hinge_loss,
    feature_matching_loss,
    generator_hinge_loss,
)


@dataclass
class CodecTrainConfig:
    """Hyper-parameters of ``CodecTrainer``; ``weights`` are balancer fractions (EnCodec's defaults)."""

    steps: int = 1000
    lr: float = 3e-4
    betas: tuple[float, float] = (0.5, 0.9)
    weights: dict[str, float] = field(
        default_factory=lambda: {"l1": 0.1, "mel": 2.0, "stft": 0.0, "adv": 4.0, "feat": 4.0}
    )
    commitment_weight: float = 1.0
    balance: bool = True
    adversarial: bool = False
    mel_n_ffts: tuple[int, ...] = (32, 64, 128, 256, 512, 1024, 2048)
    stft_n_ffts: tuple[int, ...] = (512, 1024, 2048)
    disc_n_ffts: tuple[int, ...] = (2048, 1024, 512)
    disc_filters: int = 32
    grad_clip: float = 0.0


class CodecTrainer:
    """One optimisation step at a time for a ``CompressionModel`` (see the module docstring)."""

    def __init__(self, model: CompressionModel, config: CodecTrainConfig | None = None) -> None:
        self.model = model
        self.config = c = config or CodecTrainConfig()
        self.mel_loss = MultiScaleMelLoss(model.sample_rate, c.mel_n_ffts)
        self.stft_loss = MultiScaleSTFTLoss(c.stft_n_ffts)
        weights = {
            k: v for k, v in c.weights.items() if v > 0 and (c.adversarial or k not in ("adv", "feat"))
        }
        self.balancer = Balancer(weights, balance=c.balance)
        self.optimizer = torch.optim.Adam(model.parameters(), lr=c.lr, betas=c.betas)
        self.discriminator = None
        if c.adversarial:
            self.discriminator = MultiScaleSTFTDiscriminator(model.channels, c.disc_filters, c.disc_n_ffts)
            self.disc_optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=c.lr, betas=c.betas)

    def losses(self, wav: torch.Tensor, out_audio: torch.Tensor) -> dict[str, torch.Tensor]:
        """Output-side losses of one reconstruction (those with a positive weight)."""
        w = self.balancer.weights
        losses: dict[str, torch.Tensor] = {}
        if "l1" in w:
            losses["l1"] = l1_waveform(out_audio, wav)
        if "mel" in w:
            losses["mel"] = self.mel_loss(out_audio, wav)
        if "stft" in w:
            losses["stft"] = self.stft_loss(out_audio, wav)
        if self.discriminator is not None:
            fake_logits, fake_feats = self.discriminator(out_audio)
            with torch.no_grad():
                _, real_feats = self.discriminator(wav)
            losses["adv"] = generator_hinge_loss(fake_logits)
            losses["feat"] = feature_matching_loss(real_feats, fake_feats)
        return losses

    def step(self, wav: torch.Tensor) -> dict[str, float]:
        """One step on ``wav [B, C, T]``; returns the loss values (floats)."""
        self.model.train()
        log: dict[str, float] = {}
        out = self.model(wav)  # one forward per step: the codebooks' EMA moves once
        if self.discriminator is not None:
            real_logits, _ = self.discriminator(wav)
            fake_logits, _ = self.discriminator(out.audio.detach())
            d_loss = discriminator_hinge_loss(real_logits, fake_logits)
            self.disc_optimizer.zero_grad()
            d_loss.backward()
            self.disc_optimizer.step()
            log["d_loss"] = float(d_loss.detach())
            self.discriminator.requires_grad_(False)
        losses = self.losses(wav, out.audio)
        self.optimizer.zero_grad()
        if out.commitment_loss.requires_grad and self.config.commitment_weight > 0:
            (self.config.commitment_weight * out.commitment_loss).backward(retain_graph=True)
        self.balancer.backward(losses, out.audio)
        if self.discriminator is not None:
            self.discriminator.requires_grad_(True)
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        log.update({k: float(v.detach()) for k, v in losses.items()})
        log["commitment"] = float(out.commitment_loss.detach())
        return log

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "optimizer": self.optimizer.state_dict(),
            "balancer_ema": dict(self.balancer._ema),
            "balancer_ema_weight": dict(self.balancer._ema_weight),
        }
        if self.discriminator is not None:
            state["discriminator"] = self.discriminator.state_dict()
            state["disc_optimizer"] = self.disc_optimizer.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.balancer._ema = dict(state["balancer_ema"])
        self.balancer._ema_weight = dict(state["balancer_ema_weight"])
        if self.discriminator is not None:
            self.discriminator.load_state_dict(state["discriminator"])
            self.disc_optimizer.load_state_dict(state["disc_optimizer"])


def train_codec(
    model: CompressionModel, batches: Iterable[torch.Tensor], config: CodecTrainConfig | None = None
) -> list[dict[str, float]]:
    """Run ``config.steps`` steps (or until ``batches`` ends); returns the per-step loss logs."""
    trainer = CodecTrainer(model, config)
    history = []
    for i, wav in enumerate(batches):
        if i >= trainer.config.steps:
            break
        history.append(trainer.step(wav))
    model.eval()
    return history


def tone_batches(
    batch_size: int,
    length: int,
    sample_rate: int,
    channels: int = 1,
    seed: int = 0,
    max_tones: int = 3,
    f_min: float = 100.0,
    f_max: float | None = None,
) -> Iterator[torch.Tensor]:
    """Endless ``[B, C, length]`` batches of 1..max_tones random sines (random phase, amplitude, fade)."""
    gen = torch.Generator().manual_seed(seed)
    f_max = f_max or sample_rate / 4
    t = torch.arange(length) / sample_rate
    while True:
        n = max_tones
        freqs = f_min * (f_max / f_min) ** torch.rand(batch_size, channels, n, 1, generator=gen)
        amps = 0.5 * torch.rand(batch_size, channels, n, 1, generator=gen) / n
        amps = amps * (
            torch.arange(n) < torch.randint(1, n + 1, (batch_size, channels, 1), generator=gen)
        ).unsqueeze(-1)
        phase = 2 * math.pi * torch.rand(batch_size, channels, n, 1, generator=gen)
        wav = (amps * torch.sin(2 * math.pi * freqs * t + phase)).sum(2)
        decay = 1 + 4 * torch.rand(batch_size, channels, 1, generator=gen)
        yield wav * torch.exp(-decay * t / t[-1].clamp_min(1e-9))
