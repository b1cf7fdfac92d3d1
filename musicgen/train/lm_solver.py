"""The LM solver: teacher-forced training of the MusicGen LM on cached codec tokens.

One step (paper section 4 and audiocraft's ``MusicGenSolver``):

1. a batch of token crops ``codes [B, K, T]`` from the ``TokenCache``; which items and offsets is a
   pure function of ``(seed, step, rank)``, so a resumed run sees exactly the batches an
   uninterrupted one would;
2. texts through the optional ``text_transform`` (metadata merge, word dropout) and condition dropout
   for classifier-free guidance (``cfg_dropout``: the text becomes ``None``, the null condition), from
   an RNG seeded by ``(seed, step)``; then the trainable text ``conditioner`` -> ``[B, L, cond_dim]``;
3. the pattern builds ``seq [B, K, S]`` and the validity mask ``[K, S]``; the LM reads ``seq`` shifted
   right by one step (special token first) and predicts ``seq``;
4. cross-entropy per codebook over the mask's valid positions, averaged over codebooks;
5. AdamW (betas 0.9/0.95, weight decay 0.1), cosine schedule with warmup, gradient clipping at 1.0,
   EMA of the weights (0.99), mixed precision on CUDA only (fp16 with a GradScaler, or bf16).

``validate()`` computes the loss and perplexity (``exp`` of the mean cross-entropy) on the validation
cache with the EMA weights, over fixed batches. Checkpoints (``checkpoint.py``) hold the LM, the
conditioner, the EMA, optimizer, scaler, RNG states and the step; ``resume()`` restores them.

Distributed: when ``WORLD_SIZE > 1`` (torchrun) the process group is initialised (nccl on CUDA,
gloo on CPU), the model is wrapped in ``DistributedDataParallel``, each rank draws its own share of
the batch (drawn with its rank) and only rank 0 writes logs and checkpoints. Tested on CPU with 2 gloo
ranks under torchrun (``tests/musicgen/train/test_lm_solver.py``): both ranks end with identical
weights, equal to one process stepping on the mean of the two ranks' losses. NCCL on GPUs is untested
here (no GPU in this project's CI). The logged training loss is rank 0's, not the mean over ranks.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from musicgen.train.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    load_optimizer_state,
    load_rng_state,
    optimizer_state,
    rng_state,
    save_checkpoint,
)
from musicgen.train.ema import EMA
from musicgen.train.schedules import CosineWarmup, set_lr
from musicgen.train.solver_loop import SolverLoop
from musicgen.train.token_cache import TokenCache

TextTransform = Callable[[Sequence[str | None], Sequence[dict], random.Random], list[str | None]]


class LMTrainConfig(BaseModel):
    """Hyper-parameters of ``LMSolver``: the ``train`` section of an LM recipe (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid")

    steps: int = Field(1000, ge=1)
    batch_size: int = Field(8, ge=1)
    segment_frames: int = Field(250, ge=1)
    lr: float = Field(1e-3, gt=0)
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = Field(0.1, ge=0)
    warmup_steps: int = Field(100, ge=0)
    min_lr_ratio: float = Field(0.0, ge=0, le=1)
    grad_clip: float = Field(1.0, gt=0)
    ema_decay: float = Field(0.99, ge=0, lt=1)
    cfg_dropout: float = Field(0.2, ge=0, le=1)
    optimizer: Literal["adamw", "dadam"] = "adamw"  # dadam: D-Adaptation Adam (package dadaptation)
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"  # auto: fp16 on CUDA, fp32 on CPU
    seed: int = 0
    log_every: int = Field(10, ge=1)
    valid_every: int = Field(0, ge=0)  # 0: only at the end
    valid_batches: int = Field(4, ge=1)
    checkpoint_every: int = Field(0, ge=0)  # 0: only at the end
    keep_checkpoints: int = Field(2, ge=1)


def lm_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy over valid positions, per codebook and averaged.

    ``logits [B, K, S, card]``, ``targets [B, K, S]``, ``mask [K, S]`` (True where the pattern placed a
    code). Returns ``(loss, ce_per_codebook [K])``; loss = mean over codebooks of each codebook's mean.
    """
    per_k = []
    for k in range(logits.shape[1]):
        valid = mask[k]
        lk = logits[:, k][:, valid].reshape(-1, logits.shape[-1]).float()
        tk = targets[:, k][:, valid].reshape(-1)
        per_k.append(F.cross_entropy(lk, tk))
    ce = torch.stack(per_k)
    return ce.mean(), ce


def _make_optimizer(params: list[nn.Parameter], cfg: LMTrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    if cfg.optimizer == "dadam":
        try:
            from dadaptation import DAdaptAdam
        except ImportError as e:
            raise ImportError("optimizer 'dadam' (D-Adaptation, used by the paper's 300M model) needs "
                              "the 'dadaptation' package: pip install dadaptation; or use optimizer: "
                              "adamw") from e
        return DAdaptAdam(params, lr=1.0, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay,
                          decouple=True)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; expected 'adamw' or 'dadam'")


def _precision(cfg: LMTrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for float32."""
    if cfg.precision == "auto":
        return torch.float16 if device.type == "cuda" else None
    if cfg.precision == "fp32":
        return None
    if cfg.precision not in ("fp16", "bf16"):
        raise ValueError(f"precision must be auto, fp32, fp16 or bf16, got {cfg.precision!r}")
    if device.type != "cuda":
        raise ValueError(f"precision {cfg.precision!r} is for CUDA only (mixed precision); this run is on "
                         f"{device.type}: use precision: fp32 or auto")
    return torch.float16 if cfg.precision == "fp16" else torch.bfloat16


class ConditionedLM(nn.Module):
    """The trained pair: ``conditioner(texts) -> condition`` then ``lm(tokens, condition)``.

    One module so that DistributedDataParallel sees a single forward; state dict keys are
    ``lm.*`` and ``conditioner.*``.
    """

    def __init__(self, lm: nn.Module, conditioner: nn.Module | None) -> None:
        super().__init__()
        self.lm = lm
        self.conditioner = conditioner

    def forward(self, tokens: torch.Tensor, texts: list[str | None]) -> torch.Tensor:
        """``tokens [B, K, S]`` (input, already shifted) -> logits ``[B, K, S, card]``."""
        if self.conditioner is None:
            return self.lm(tokens)
        condition, condition_mask = self.conditioner(texts)
        return self.lm(tokens, condition, condition_mask)


class LMSolver(SolverLoop):
    """Trains ``lm`` (and ``conditioner``) with ``pattern`` on ``train`` tokens; see module docstring."""

    name = "train lm"

    def __init__(self, lm: nn.Module, pattern: Any, train: TokenCache, config: LMTrainConfig,
                 run_dir: str | os.PathLike[str], *, valid: TokenCache | None = None,
                 conditioner: nn.Module | None = None, text_transform: TextTransform | None = None,
                 device: str | torch.device = "cpu", extra_state: dict[str, Any] | None = None) -> None:
        self.cfg = config
        self.device = torch.device(device)
        self.run_dir = Path(run_dir)
        self.rank = int(os.environ.get("RANK", 0))
        self.world_size = int(os.environ.get("WORLD_SIZE", 1))
        if self.world_size > 1 and self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(self.device)
        if train.num_codebooks != lm.num_codebooks or train.card != lm.special_token:
            raise ValueError(f"tokens have K={train.num_codebooks}, card={train.card} but the LM has "
                             f"K={lm.num_codebooks}, card={lm.special_token}")
        if config.batch_size % self.world_size:
            raise ValueError(f"batch_size {config.batch_size} is not divisible by WORLD_SIZE "
                             f"{self.world_size}")
        if getattr(lm.config, "cross_attention", False) and conditioner is None:
            raise ValueError("this LM cross-attends to a text condition: pass a conditioner")
        self.lm = lm.to(self.device)
        self.conditioner = conditioner.to(self.device) if conditioner is not None else None
        self.pattern = pattern
        self.train_data, self.valid_data = train, valid
        self.text_transform = text_transform
        self.extra_state = dict(extra_state or {})
        self.model = ConditionedLM(self.lm, self.conditioner)
        self.trained: nn.Module = self._distributed(self.model) if self.world_size > 1 else self.model
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = _make_optimizer(params, config)
        self.schedule = CosineWarmup(config.lr, config.warmup_steps, config.steps, config.min_lr_ratio)
        self.ema = EMA(self.model, config.ema_decay)
        self.autocast_dtype = _precision(config, self.device)
        self.scaler = torch.amp.GradScaler("cuda") if self.autocast_dtype == torch.float16 else None
        self.step = 0
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self.checkpoint_dir = self.run_dir / "checkpoints"

    def _distributed(self, modules: nn.Module) -> nn.Module:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(modules, device_ids=ids)

    # --- one step -----------------------------------------------------------------------------------
    def _autocast(self):
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _texts(self, texts: list[str | None], metas: list[dict], rng: random.Random) -> list[str | None]:
        """Training texts: the optional transform (augmentation), then condition dropout for CFG."""
        if self.conditioner is None:
            return texts
        if self.text_transform is not None:
            texts = self.text_transform(texts, metas, rng)
        return [None if rng.random() < self.cfg.cfg_dropout else t for t in texts]

    def loss(self, codes: torch.Tensor, texts: list[str | None], model: nn.Module | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loss, ce_per_codebook [K])`` for ``codes [B, K, T]`` and final ``texts``."""
        model = self.model if model is None else model
        codes = codes.to(self.device)
        special = self.lm.special_token
        seq, mask = self.pattern.build(codes, special)
        inp = torch.cat([torch.full_like(seq[..., :1], special), seq[..., :-1]], dim=-1)
        with self._autocast():
            logits = model(inp, texts)
        return lm_cross_entropy(logits, seq, mask.to(self.device))

    def _batch(self, step: int, rank: int, data: TokenCache, per_rank: int
               ) -> tuple[torch.Tensor, list[str], list[dict], random.Random]:
        rng = np.random.default_rng([self.cfg.seed, step, rank])
        codes, texts, metas = data.sample_batch(per_rank, self.cfg.segment_frames, rng)
        return codes, texts, metas, random.Random(int(rng.integers(2**62)))

    def train_step(self) -> dict[str, float]:
        per_rank = self.cfg.batch_size // self.world_size
        codes, texts, metas, text_rng = self._batch(self.step, self.rank, self.train_data, per_rank)
        lr = self.schedule.lr_at(self.step)
        if self.cfg.optimizer == "adamw":
            set_lr(self.optimizer, lr)
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss, ce = self.loss(codes, self._texts(texts, metas, text_rng), self.trained)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite training loss {loss.item()} at step {self.step}")
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.ema.update(self.model)
        self.step += 1
        out = {"loss": loss.item(), "grad_norm": float(grad_norm), "lr": lr,
               "tokens": int(codes.numel()) * self.world_size}
        out.update({f"ce_k{k}": float(v) for k, v in enumerate(ce.detach())})
        return out

    @torch.no_grad()
    def validate(self, data: TokenCache | None = None, use_ema: bool = True) -> dict[str, float]:
        """Loss and perplexity on fixed batches of ``data`` (default: valid), with the EMA weights."""
        data = data if data is not None else self.valid_data
        if data is None:
            return {}
        self.model.eval()
        total, count = 0.0, 0
        with self.ema.swapped(self.model) if use_ema else nullcontext():
            for b in range(self.cfg.valid_batches):
                rng = np.random.default_rng([self.cfg.seed, 2**31 - 1, b])
                codes, texts, metas = data.sample_batch(self.cfg.batch_size, self.cfg.segment_frames, rng)
                loss, _ = self.loss(codes, texts)
                total += loss.item()
                count += 1
        mean = total / count
        return {"loss": mean, "perplexity": math.exp(min(mean, 50.0))}

    # --- checkpoints --------------------------------------------------------------------------------
    def save(self) -> Path | None:
        if self.rank != 0:
            return None
        opt_tensors, opt_meta = optimizer_state(self.optimizer)
        rng_tensors, rng_meta = rng_state()
        tensors = {"model": self.model.state_dict(), "ema": self.ema.state_dict(),
                   "optimizer": opt_tensors, "rng": rng_tensors}
        state = {"optimizer": opt_meta, "rng": rng_meta,
                 "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                 "config": self.cfg.model_dump(), "extra": self.extra_state}
        return save_checkpoint(self.checkpoint_dir, self.step, tensors, state, keep=self.cfg.keep_checkpoints)

    def resume(self, path: str | os.PathLike[str] | None = None) -> bool:
        """Restore the newest checkpoint of this run (or ``path``); False when there is none."""
        if path is None:
            found = latest_checkpoint(self.checkpoint_dir)
            if found is None:
                return False
            path = found
        ckpt = load_checkpoint(path)
        self.model.load_state_dict(ckpt.tensors["model"])
        self.ema.load_state_dict(ckpt.tensors["ema"])
        load_optimizer_state(self.optimizer, ckpt.tensors["optimizer"], ckpt.state["optimizer"])
        load_rng_state(ckpt.tensors["rng"], ckpt.state["rng"])
        if self.scaler is not None and ckpt.state.get("scaler"):
            self.scaler.load_state_dict(ckpt.state["scaler"])
        self.step = ckpt.step
        return True
