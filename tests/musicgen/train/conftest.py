"""Fixtures for the training tests: a tiny synthcaps corpus and a tiny frame quantizer as codec."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from musicgen.train.synthcaps import build_synthcaps


class FrameQuantizer(nn.Module):
    """A tiny random 'codec' for tokens: frames of ``hop`` samples, a random projection to ``dim``,
    then residual nearest-centroid quantisation with ``num_codebooks`` random codebooks of ``card``.
    Only ``encode`` is needed by the token cache; the real codec is tested in its own suite."""

    def __init__(self, sample_rate: int = 8000, hop: int = 160, dim: int = 8, num_codebooks: int = 4,
                 card: int = 16, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.sample_rate, self.channels, self.hop = sample_rate, 1, hop
        self.cardinality, self.num_codebooks = card, num_codebooks
        self.frame_rate = sample_rate / hop
        self.register_buffer("proj", torch.randn(hop, dim, generator=g) / hop**0.5)
        self.register_buffer("codebooks", torch.randn(num_codebooks, card, dim, generator=g)
                             * torch.logspace(0, -1.5, num_codebooks)[:, None, None])

    @torch.no_grad()
    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """``[B, 1, T] -> [B, K, T // hop]``."""
        frames = wav[:, 0, : wav.shape[-1] // self.hop * self.hop].reshape(wav.shape[0], -1, self.hop)
        residual = frames @ self.proj * 10.0
        codes = []
        for book in self.codebooks:
            idx = torch.cdist(residual, book[None].expand(wav.shape[0], -1, -1)).argmin(-1)
            codes.append(idx)
            residual = residual - book[idx]
        return torch.stack(codes, dim=1)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """12 clips of 3 s at 8 kHz (train 10 / valid 1 / test 1)."""
    return build_synthcaps(tmp_path_factory.mktemp("corpus") / "synthcaps", num_clips=12, seed=0,
                           duration_s=3.0, sample_rate=8000)


@pytest.fixture(scope="session")
def tiny_codec():
    return FrameQuantizer()
