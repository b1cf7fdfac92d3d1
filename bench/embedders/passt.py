"""PaSST (Koutini et al. 2022) AudioSet tagger for the KL metric: our inference code, hear21passt layout.

Front end (32 kHz, eval mode of hear21passt's ``AugmentMelSTFT``): pre-emphasis
``y[n] = x[n+1] - 0.97 x[n]`` (length N-1); STFT n_fft 1024, hop 320, window = symmetric Hann of 800
zero-padded to 1024 (centred), centred frames with reflect padding; power; 128 Kaldi-style mel bands
0-15000 Hz (``mel = 1127 ln(1 + f/700)``, triangles linear in mel, peak 1) plus a zero Nyquist
column; ``(log(mel + 1e-5) + 4.5) / 5``.

Network (``passt_20sec``): Conv2d(1, D, 16, stride 10) patches on ``[B, 1, 128, frames]``, frequency
and time positional tables (the time table cut to the input's patches, no padding or mask), tokens in
frequency-major order after a cls and a distillation token, pre-norm blocks (LayerNorm eps 1e-6,
qkv with bias, exact GELU), final norm, features = mean of the two special tokens, head =
LayerNorm(1e-5) + Linear(D, 527). ``head_dist`` is loaded but unused.

Segmenting (audiocraft's KL protocol since commit 2454f80): 20 s segments without padding; a last
segment of 0.15 s (4800 samples) or less is dropped; a clip of 4800 samples or less is an error.
``embed`` returns per-segment logits ``[S, 527]``; the KL metric applies the softmax.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from bench.api import Embedder, Params
from bench.embedders.common import (
    check_weight_files,
    local_file,
    require_length,
    torch_load_with_numpy,
    unwrap_state_dict,
)

SAMPLE_RATE = 32000
N_FFT = 1024
HOP = 320
WIN = 800
N_MELS = 128
SEGMENT_SAMPLES = 20 * SAMPLE_RATE
MIN_SEGMENT_SAMPLES = int(0.15 * SAMPLE_RATE)  # segments of this length or less are dropped
HOW_TO_GET = ("Download passt-s-f128-20sec-p16-s10-ap.474-swa.pt from the PaSST releases "
              "(github.com/kkoutini/PaSST/releases/tag/v0.0.5) and pass its path.")


def kaldi_mel_banks(n_mels: int = N_MELS, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE,
                    fmin: float = 0.0, fmax: float = 15000.0) -> torch.Tensor:
    """Kaldi mel triangles ``[n_mels, n_fft // 2 + 1]`` (last column, Nyquist, is zero)."""
    def mel(f: torch.Tensor) -> torch.Tensor:
        return 1127.0 * torch.log1p(f / 700.0)

    n_bins = n_fft // 2
    bin_mel = mel(torch.arange(n_bins, dtype=torch.float64) * (sample_rate / n_fft))
    lo, hi = mel(torch.tensor(fmin, dtype=torch.float64)), mel(torch.tensor(fmax, dtype=torch.float64))
    delta = (hi - lo) / (n_mels + 1)
    left = lo + delta * torch.arange(n_mels, dtype=torch.float64)[:, None]
    up = (bin_mel - left) / delta
    down = (left + 2 * delta - bin_mel) / delta
    banks = torch.clamp(torch.minimum(up, down), min=0.0)
    return torch.nn.functional.pad(banks, (0, 1))


@functools.lru_cache(maxsize=4)
def _front_end_tables(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    window = torch.hann_window(WIN, periodic=False, dtype=torch.float64)
    return window.to(dtype), kaldi_mel_banks().to(dtype)


def passt_log_mel(wav: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``[B, N]`` float at 32 kHz -> normalised log mel ``[B, 128, 1 + (N - 1) // 320]`` (float32).

    ``dtype`` is the precision of the pre-emphasis, STFT and mel arithmetic; float32 (the default)
    stays within float tolerance of float64 (``benchmarks/front_end_precision.py``, the tests)."""
    window, banks = _front_end_tables(dtype)
    x = wav.to(dtype)
    x = x[:, 1:] - 0.97 * x[:, :-1]
    spec = torch.stft(x, N_FFT, hop_length=HOP, win_length=WIN, window=window, center=True,
                      pad_mode="reflect", return_complex=True)
    power = spec.real ** 2 + spec.imag ** 2  # [B, 513, frames]
    mel = torch.matmul(banks, power)
    return ((torch.log(mel + 1e-5) + 4.5) / 5.0).float()


@dataclass(frozen=True)
class PasstConfig:
    """Sizes of a PaSST network; the defaults are ``passt_20sec`` (86.2 M parameters)."""

    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_dim: int = 3072
    num_classes: int = 527
    n_mels: int = N_MELS
    patch: int = 16
    stride: int = 10
    time_positions: int = 200

    @property
    def freq_patches(self) -> int:
        return (self.n_mels - self.patch) // self.stride + 1


class PasstAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = torch.nn.functional.scaled_dot_product_attention(q, k, v)  # [B, H, N, hd]
        return self.proj(y.transpose(1, 2).reshape(b, n, d))


class PasstMlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.nn.functional.gelu(self.fc1(x)))


class PasstBlock(nn.Module):
    def __init__(self, cfg: PasstConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.embed_dim, eps=1e-6)
        self.attn = PasstAttention(cfg.embed_dim, cfg.num_heads)
        self.norm2 = nn.LayerNorm(cfg.embed_dim, eps=1e-6)
        self.mlp = PasstMlp(cfg.embed_dim, cfg.mlp_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))

    def forward_first(self, x: torch.Tensor, n: int) -> torch.Tensor:
        """``forward(x)[:, :n]`` without computing the other tokens' outputs: their keys and values
        are needed, their queries, projections and MLP are not. ``[B, N, D] -> [B, n, D]``."""
        b, tokens, d = x.shape
        attn = self.attn
        h = self.norm1(x)
        w_q, w_kv = attn.qkv.weight.split([d, 2 * d])
        b_q, b_kv = attn.qkv.bias.split([d, 2 * d])
        q = torch.nn.functional.linear(h[:, :n], w_q, b_q).view(b, n, attn.heads, -1).transpose(1, 2)
        kv = torch.nn.functional.linear(h, w_kv, b_kv).view(b, tokens, 2, attn.heads, -1)
        k, v = kv.permute(2, 0, 3, 1, 4)
        y = torch.nn.functional.scaled_dot_product_attention(q, k, v)  # [B, H, n, hd]
        x = x[:, :n] + attn.proj(y.transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, cfg: PasstConfig) -> None:
        super().__init__()
        self.proj = nn.Conv2d(1, cfg.embed_dim, cfg.patch, stride=cfg.stride)


class PasstNet(nn.Module):
    """PaSST with hear21passt parameter names. ``forward``: log mel ``[B, 1, 128, frames]`` ->
    logits ``[B, num_classes]``."""

    def __init__(self, cfg: PasstConfig = PasstConfig()) -> None:
        super().__init__()
        d = cfg.embed_dim
        self.cfg = cfg
        self.patch_embed = PatchEmbed(cfg)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, d))
        self.new_pos_embed = nn.Parameter(torch.zeros(1, 2, d))
        self.freq_new_pos_embed = nn.Parameter(torch.zeros(1, d, cfg.freq_patches, 1))
        self.time_new_pos_embed = nn.Parameter(torch.zeros(1, d, 1, cfg.time_positions))
        self.blocks = nn.Sequential(*[PasstBlock(cfg) for _ in range(cfg.depth)])
        self.norm = nn.LayerNorm(d, eps=1e-6)
        self.head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, cfg.num_classes))
        self.head_dist = nn.Linear(d, cfg.num_classes)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed.proj(mel)  # [B, D, F', T']
        t = x.shape[-1]
        if t > self.cfg.time_positions:
            raise ValueError(f"PaSST: {t} time patches exceed the positional table of "
                             f"{self.cfg.time_positions}")
        x = x + self.time_new_pos_embed[..., :t] + self.freq_new_pos_embed
        x = x.flatten(2).transpose(1, 2)  # [B, F' * T', D], frequency-major
        special = torch.cat([self.cls_token, self.dist_token], dim=1) + self.new_pos_embed
        x = torch.cat([special.expand(x.shape[0], -1, -1), x], dim=1)
        for block in self.blocks[:-1]:
            x = block(x)
        x = self.norm(self.blocks[-1].forward_first(x, 2))  # only the two special tokens are read
        return self.head((x[:, 0] + x[:, 1]) / 2)


SEGMENT_BATCH = 8  # segments per network call (of one length: full 20 s segments of several clips)


def passt_segments(wav: np.ndarray) -> list[np.ndarray]:
    """20 s segments without padding; a tail of 0.15 s or less is dropped."""
    segs = [wav[i:i + SEGMENT_SAMPLES] for i in range(0, len(wav), SEGMENT_SAMPLES)]
    return [s for s in segs if len(s) > MIN_SEGMENT_SAMPLES]


class PasstParams(Params):
    checkpoint: str = "passt-s-f128-20sec-p16-s10-ap.474-swa.pt"
    num_heads: int | None = None


class PasstEmbedder(Embedder):
    """Per-segment AudioSet logits ``[S, 527]`` from PaSST (32 kHz, 20 s segments)."""

    name: ClassVar[str] = "passt"
    version: ClassVar[str] = "1"
    sample_rate: ClassVar[int] = SAMPLE_RATE
    dim: ClassVar[int] = 527
    Params = PasstParams

    def __init__(self, params: PasstParams | None = None) -> None:
        super().__init__(params)
        self.net: PasstNet | None = None

    def check(self) -> list[str]:
        return check_weight_files(self, ("PaSST checkpoint", (r"(^|\.)patch_embed\.proj\.weight$",
                                                              r"(^|\.)time_new_pos_embed$",
                                                              r"(^|\.)head\.1\.weight$"), HOW_TO_GET))

    def weight_files(self) -> list[Path]:
        return [local_file(self.params.checkpoint, "PaSST checkpoint", HOW_TO_GET)]

    def load(self, device: str = "cpu") -> None:
        (path,) = self.weight_files()
        state = unwrap_state_dict(torch_load_with_numpy(path))
        for prefix in ("module.", "net."):
            if all(k.startswith(prefix) or k.startswith("mel.") for k in state):
                state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        with torch.device("meta"):
            net = PasstNet(config_from_state_dict(state, self.params.num_heads))
        net.load_state_dict(state, assign=True)
        self.net = net.eval().to(device)
        self.device = device

    def set_network(self, net: PasstNet) -> None:
        """Use an in-memory network (tests, benchmarks); the digest becomes ``"in-memory"``."""
        self.net = net.eval()
        self.use_in_memory()

    def protocol(self) -> dict:
        return {**super().protocol(), "segments": "20 s, no padding, tail <= 0.15 s dropped",
                "output": "logits per segment"}

    def embed(self, wav: np.ndarray) -> np.ndarray:
        return self.embed_batch([wav])[0]

    @torch.inference_mode()
    def embed_batch(self, wavs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The segments of all clips through the network, ``SEGMENT_BATCH`` of one length at a time."""
        if self.net is None:
            raise RuntimeError("passt: call load() before embed()")
        segs = [passt_segments(require_length(w, MIN_SEGMENT_SAMPLES + 1, self.name, SAMPLE_RATE))
                for w in wavs]
        flat = [(i, j, s) for i, clip in enumerate(segs) for j, s in enumerate(clip)]
        out: dict[tuple[int, int], torch.Tensor] = {}
        for n in sorted({len(s) for _, _, s in flat}):
            group = [(i, j, s) for i, j, s in flat if len(s) == n]
            for k in range(0, len(group), SEGMENT_BATCH):
                part = group[k:k + SEGMENT_BATCH]
                x = torch.from_numpy(np.stack([s for _, _, s in part]))
                logits = self.net(passt_log_mel(x)[:, None].to(self.device)).float().cpu()
                out.update({(i, j): row for (i, j, _), row in zip(part, logits)})
        return [torch.stack([out[(i, j)] for j in range(len(clip))]).numpy() for i, clip in enumerate(segs)]


def config_from_state_dict(state: dict[str, torch.Tensor], num_heads: int | None = None) -> PasstConfig:
    """Sizes read off a PaSST state dict (embed dim, depth, MLP width, classes, time table); the head
    count is not in the weights: 64 dims per head (12 for passt_20sec) unless given."""
    d = state["cls_token"].shape[-1]
    depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
    heads = num_heads or max(1, d // 64)
    return PasstConfig(embed_dim=d, depth=depth, num_heads=heads,
                       mlp_dim=state["blocks.0.mlp.fc1.weight"].shape[0],
                       num_classes=state["head.1.weight"].shape[0],
                       patch=state["patch_embed.proj.weight"].shape[-1],
                       time_positions=state["time_new_pos_embed"].shape[-1])
