"""Residual vector quantization (RVQ) with EMA codebooks, as in SoundStream / EnCodec.

Each of the K layers quantizes the residual the previous layers left: ``r_0 = x``,
``c_k = argmin_j ||r_k - e_j||``, ``r_{k+1} = r_k - e_{c_k}``, and the quantized latent is the sum of
the chosen entries. Codes are ``[B, K, F]`` (int64), latents ``[B, D, F]``.

Training (``forward`` in ``train()`` mode):
- the codebook is initialised by k-means on the first batch it sees (``kmeans_init``; else random
  normal entries are used from the start and ``inited`` is already 1);
- entries move by exponential moving averages of the vectors assigned to them (``decay``) with
  Laplace smoothing of the counts (``epsilon``); the codebook is a buffer, not a parameter;
- entries whose EMA count falls under ``threshold_ema_dead_code`` are replaced by random vectors of
  the current batch (their EMA statistics reset to that vector with the threshold count);
- the commitment loss is ``mse(r_k, sg(q_k))`` averaged over the active layers, and gradients pass
  to the encoder with the straight-through estimator;
- with ``q_dropout`` a random number of layers 1..K is used per step (bandwidth dropout).

Not done here: codebook statistics are not averaged across processes (single-process training).
Buffers are named like transformers' ``EncodecModel`` (``layers.N.codebook.{inited, cluster_size,
embed, embed_avg}``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


def kmeans(
    samples: torch.Tensor, num_clusters: int, num_iters: int = 10
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means on ``samples [M, D]`` -> (centroids ``[num_clusters, D]``, counts ``[num_clusters]``).

    Centroids start at random samples (with replacement when ``M < num_clusters``); a cluster that
    loses all its samples keeps its previous centroid.
    """
    m = samples.shape[0]
    if m >= num_clusters:
        idx = torch.randperm(m, device=samples.device)[:num_clusters]
    else:
        idx = torch.randint(0, m, (num_clusters,), device=samples.device)
    means = samples[idx].clone()
    counts = torch.zeros(num_clusters, device=samples.device, dtype=samples.dtype)
    for _ in range(num_iters):
        assign = torch.cdist(samples, means).argmin(dim=-1)
        counts = torch.bincount(assign, minlength=num_clusters).to(samples.dtype)
        sums = torch.zeros_like(means).index_add_(0, assign, samples)
        filled = counts > 0
        means = torch.where(filled[:, None], sums / counts.clamp(min=1)[:, None], means)
    return means, counts


class EuclideanCodebook(nn.Module):
    """One codebook of ``codebook_size`` entries of size ``dim``, nearest by Euclidean distance."""

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        decay: float = 0.99,
        epsilon: float = 1e-5,
        kmeans_init: bool = True,
        kmeans_iters: int = 10,
        threshold_ema_dead_code: float = 2.0,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.codebook_size = codebook_size
        self.decay = decay
        self.epsilon = epsilon
        self.kmeans_iters = kmeans_iters
        self.threshold_ema_dead_code = threshold_ema_dead_code
        embed = torch.zeros(codebook_size, dim) if kmeans_init else torch.randn(codebook_size, dim)
        self.register_buffer("inited", torch.tensor([0.0 if kmeans_init else 1.0]))
        self.register_buffer("cluster_size", torch.zeros(codebook_size))
        self.register_buffer("embed", embed)
        self.register_buffer("embed_avg", embed.clone())

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        """Nearest entry for each row of ``x [M, D]`` -> ``[M]``."""
        embed_t = self.embed.t()
        dist = -(x.pow(2).sum(1, keepdim=True) - 2 * x @ embed_t + embed_t.pow(2).sum(0, keepdim=True))
        return dist.max(dim=-1).indices

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``x [..., D]`` -> codes ``[...]``."""
        return self.quantize(x.reshape(-1, x.shape[-1])).view(*x.shape[:-1])

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes ``[...]`` -> entries ``[..., D]``."""
        return F.embedding(codes, self.embed)

    @torch.no_grad()
    def init_from(self, x: torch.Tensor) -> None:
        """k-means initialisation from ``x [M, D]`` (once)."""
        if bool(self.inited.item()):
            return
        means, counts = kmeans(x.float(), self.codebook_size, self.kmeans_iters)
        self.embed.copy_(means)
        self.embed_avg.copy_(means)
        self.cluster_size.copy_(counts)
        self.inited.fill_(1.0)

    @torch.no_grad()
    def replace_dead_codes(self, x: torch.Tensor) -> int:
        """Replace entries whose EMA count is under the threshold by random rows of ``x [M, D]``."""
        if self.threshold_ema_dead_code <= 0:
            return 0
        dead = self.cluster_size < self.threshold_ema_dead_code
        n_dead = int(dead.sum())
        if n_dead == 0:
            return 0
        picks = x[torch.randint(0, x.shape[0], (n_dead,), device=x.device)].to(self.embed.dtype)
        self.embed[dead] = picks
        self.embed_avg[dead] = picks * self.threshold_ema_dead_code
        self.cluster_size[dead] = self.threshold_ema_dead_code
        return n_dead

    @torch.no_grad()
    def ema_update(self, x: torch.Tensor, codes: torch.Tensor) -> None:
        """Move entries towards the mean of the rows of ``x [M, D]`` assigned to them (``codes [M]``)."""
        onehot = F.one_hot(codes, self.codebook_size).to(x.dtype)
        self.cluster_size.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.embed_avg.mul_(self.decay).add_(onehot.t() @ x, alpha=1 - self.decay)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.epsilon) / (n + self.codebook_size * self.epsilon) * n
        self.embed.copy_(self.embed_avg / smoothed[:, None])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [M, D]`` -> (entries ``[M, D]``, codes ``[M]``), updating the codebook in training."""
        if self.training:
            self.init_from(x.detach())
        codes = self.quantize(x.detach())
        if self.training:
            self.ema_update(x.detach(), codes)
            self.replace_dead_codes(x.detach())
        return self.decode(codes), codes


class VectorQuantizer(nn.Module):
    """One RVQ layer in conv layout: ``[B, D, F]`` latents, ``[B, F]`` codes."""

    def __init__(self, dim: int, codebook_size: int, **codebook_kwargs) -> None:
        super().__init__()
        self.codebook = EuclideanCodebook(dim, codebook_size, **codebook_kwargs)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.codebook.encode(x.transpose(1, 2))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.codebook.decode(codes).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (straight-through quantized ``[B, D, F]``, codes ``[B, F]``, commitment loss)."""
        b, d, f = x.shape
        flat = x.transpose(1, 2).reshape(-1, d)
        q, codes = self.codebook(flat)
        q = q.view(b, f, d).transpose(1, 2)
        commit = F.mse_loss(x, q.detach()) if self.training else x.new_zeros(())
        q = x + (q - x).detach()
        return q, codes.view(b, f), commit


@dataclass
class QuantizedResult:
    """What ``ResidualVectorQuantizer.forward`` returns."""

    quantized: torch.Tensor  # [B, D, F], straight-through in training
    codes: torch.Tensor  # [B, K_used, F]
    commitment_loss: torch.Tensor  # scalar, mean over the used layers
    bandwidth_kbps: float  # bits per second / 1000 for K_used codebooks


class ResidualVectorQuantizer(nn.Module):
    """K codebooks applied to successive residuals. ``num_codebooks`` is the number used by default."""

    def __init__(
        self,
        dim: int = 128,
        codebook_size: int = 2048,
        num_codebooks: int = 4,
        q_dropout: bool = False,
        **codebook_kwargs,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.codebook_size = codebook_size
        self.total_codebooks = num_codebooks
        self.num_codebooks = num_codebooks
        self.q_dropout = q_dropout
        self.layers = nn.ModuleList(
            [VectorQuantizer(dim, codebook_size, **codebook_kwargs) for _ in range(num_codebooks)]
        )

    def set_num_codebooks(self, n: int) -> None:
        if not 1 <= n <= self.total_codebooks:
            raise ValueError(f"num_codebooks must be in 1..{self.total_codebooks}, got {n}")
        self.num_codebooks = n

    def num_codebooks_for_bandwidth(self, bandwidth_kbps: float, frame_rate: float) -> int:
        """Largest number of codebooks whose bit rate fits ``bandwidth_kbps`` (at least 1)."""
        per_codebook = math.log2(self.codebook_size) * frame_rate / 1000
        n = int(math.floor(bandwidth_kbps / per_codebook + 1e-9))
        return max(1, min(self.total_codebooks, n))

    def _n(self, n: int | None) -> int:
        n = self.num_codebooks if n is None else n
        if not 1 <= n <= self.total_codebooks:
            raise ValueError(f"num_codebooks must be in 1..{self.total_codebooks}, got {n}")
        return n

    def encode(self, x: torch.Tensor, num_codebooks: int | None = None) -> torch.Tensor:
        """Latents ``[B, D, F]`` -> codes ``[B, K, F]``."""
        residual = x
        codes = []
        for layer in self.layers[: self._n(num_codebooks)]:
            c = layer.encode(residual)
            residual = residual - layer.decode(c)
            codes.append(c)
        return torch.stack(codes, dim=1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, K, F]`` -> latents ``[B, D, F]`` (sum of the K entries)."""
        if codes.shape[1] > self.total_codebooks:
            raise ValueError(
                f"codes have {codes.shape[1]} codebooks, the quantizer has {self.total_codebooks}"
            )
        out = torch.zeros((), device=codes.device)
        for k in range(codes.shape[1]):
            out = out + self.layers[k].decode(codes[:, k])
        return out

    def forward(
        self, x: torch.Tensor, frame_rate: float, num_codebooks: int | None = None
    ) -> QuantizedResult:
        """Quantize ``x [B, D, F]``; in training updates the codebooks and returns the commitment loss."""
        n = self._n(num_codebooks)
        if self.training and self.q_dropout:
            n = int(torch.randint(1, n + 1, (1,)).item())
        residual = x
        quantized = torch.zeros_like(x)
        codes, losses = [], []
        for layer in self.layers[:n]:
            q, c, commit = layer(residual)
            residual = residual - q.detach()
            quantized = quantized + q.detach()
            codes.append(c)
            losses.append(commit)
        quantized = x + (quantized - x).detach()  # straight-through for the sum of the layers
        bw = n * math.log2(self.codebook_size) * frame_rate / 1000
        return QuantizedResult(quantized, torch.stack(codes, dim=1), torch.stack(losses).mean(), bw)
