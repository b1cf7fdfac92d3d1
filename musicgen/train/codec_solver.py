"""The codec solver: the codec objective (``CodecTrainer``) on audio crops, with exact-resume checkpoints.

Each step takes ``batch_size`` random crops of ``segment_s`` seconds (1 s in the paper) from the
``AudioDataset``: which files and which offsets is a pure function of ``(seed, step)``. The objective
and the optimisers are ``musicgen.train.codec_trainer.CodecTrainer``'s.

Checkpoints hold the codec (with the quantizer's EMA codebooks), the optimizers, the discriminator,
the balancer's running norms, the RNG states (k-means initialisation and dead-code replacement draw
from torch's global generator) and the step. ``validate()`` reports the L1 and mel losses on fixed
validation crops. ``export(folder)`` writes the codec with ``save_pretrained``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musicgen.train.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    load_optimizer_state,
    load_rng_state,
    optimizer_state,
    rng_state,
    save_checkpoint,
)
from musicgen.train.codec_trainer import CodecTrainConfig, CodecTrainer
from musicgen.train.datasets import AudioDataset
from musicgen.train.recipes import CodecSolverConfig
from musicgen.train.solver_loop import SolverLoop


class CodecSolver(SolverLoop):
    name = "train codec"
    rate_key = "audio_s"
    rate_label = "audio s/s"

    def __init__(self, codec: torch.nn.Module, train: AudioDataset, config: CodecSolverConfig,
                 run_dir: str | os.PathLike[str], *, valid: AudioDataset | None = None,
                 device: str | torch.device = "cpu") -> None:
        for name, ds in (("train", train), ("valid", valid)):
            if ds is not None and (ds.sample_rate != codec.sample_rate or ds.channels != codec.channels
                                   or ds.duration_s != config.segment_s):
                raise ValueError(f"{name} dataset gives {ds.channels} channel(s) at {ds.sample_rate} Hz in "
                                 f"{ds.duration_s} s crops; the codec takes {codec.channels} at "
                                 f"{codec.sample_rate} Hz and the recipe asks for {config.segment_s} s")
        self.cfg = config
        self.device = torch.device(device)
        self.codec = codec.to(self.device)
        self.train_data, self.valid_data = train, valid
        self.trainer = CodecTrainer(self.codec, CodecTrainConfig(
            steps=config.steps, lr=config.lr, betas=tuple(config.betas), weights=dict(config.weights),
            commitment_weight=config.commitment_weight, balance=config.balance,
            adversarial=config.adversarial, grad_clip=config.grad_clip))
        if self.trainer.discriminator is not None:
            self.trainer.discriminator.to(self.device)
        self.run_dir = Path(run_dir)
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self.checkpoint_dir = self.run_dir / "checkpoints"
        self.rank = 0
        self.step = 0

    def _batch(self, data: AudioDataset, key: int, batch_size: int) -> torch.Tensor:
        rng = np.random.default_rng([self.cfg.seed, key])
        data.set_epoch(key)
        picks = rng.integers(0, len(data), size=batch_size)
        return torch.stack([data[int(i)]["wav"] for i in picks]).to(self.device)

    def train_step(self) -> dict[str, float]:
        wav = self._batch(self.train_data, self.step, self.cfg.batch_size)
        log = self.trainer.step(wav)
        self.step += 1
        log["loss"] = float(sum(v for k, v in log.items() if k in self.trainer.balancer.weights))
        log["audio_s"] = wav.shape[0] * wav.shape[-1] / self.codec.sample_rate
        return log

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        if self.valid_data is None:
            return {}
        self.codec.eval()
        totals: dict[str, float] = {}
        for b in range(self.cfg.valid_batches):
            wav = self._batch(self.valid_data, 2**31 - 1 - b, self.cfg.batch_size)
            out = self.codec(wav)
            losses = {"l1": self.trainer.losses(wav, out.audio).get("l1"),
                      "mel": self.trainer.mel_loss(out.audio, wav)}
            for k, v in losses.items():
                if v is not None:
                    totals[k] = totals.get(k, 0.0) + float(v) / self.cfg.valid_batches
        return totals

    # --- checkpoints --------------------------------------------------------------------------------
    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        opts = {"optimizer": self.trainer.optimizer}
        if self.trainer.discriminator is not None:
            opts["disc_optimizer"] = self.trainer.disc_optimizer
        return opts

    def save(self) -> Path:
        tensors: dict[str, dict[str, torch.Tensor]] = {"model": self.codec.state_dict()}
        state: dict[str, Any] = {"config": self.cfg.model_dump(mode="json"),
                                 "balancer": {"ema": dict(self.trainer.balancer._ema),
                                              "ema_weight": dict(self.trainer.balancer._ema_weight)}}
        for name, opt in self._optimizers().items():
            tensors[name], state[name] = optimizer_state(opt)
        if self.trainer.discriminator is not None:
            tensors["discriminator"] = self.trainer.discriminator.state_dict()
        tensors["rng"], state["rng"] = rng_state()
        return save_checkpoint(self.checkpoint_dir, self.step, tensors, state, keep=self.cfg.keep_checkpoints)

    def resume(self, path: str | os.PathLike[str] | None = None) -> bool:
        if path is None:
            path = latest_checkpoint(self.checkpoint_dir)
            if path is None:
                return False
        ckpt = load_checkpoint(path)
        self.codec.load_state_dict(ckpt.tensors["model"])
        for name, opt in self._optimizers().items():
            load_optimizer_state(opt, ckpt.tensors[name], ckpt.state[name])
        if self.trainer.discriminator is not None:
            self.trainer.discriminator.load_state_dict(ckpt.tensors["discriminator"])
        self.trainer.balancer._ema = dict(ckpt.state["balancer"]["ema"])
        self.trainer.balancer._ema_weight = dict(ckpt.state["balancer"]["ema_weight"])
        load_rng_state(ckpt.tensors["rng"], ckpt.state["rng"])
        self.step = ckpt.step
        return True

    def export(self, folder: str | os.PathLike[str]) -> Path:
        self.codec.eval()
        return Path(self.codec.save_pretrained(folder))
