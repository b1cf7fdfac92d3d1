"""TEMPORARY delay pattern for the LM tests until musicgen.modules.patterns lands on main."""
from __future__ import annotations

import torch


class DelayPattern:
    def __init__(self, num_codebooks: int):
        self.num_codebooks = num_codebooks
        self.delays = list(range(num_codebooks))

    def num_steps(self, t: int) -> int:
        return t + max(self.delays)

    def valid_mask(self, t: int) -> torch.Tensor:
        m = torch.zeros(self.num_codebooks, self.num_steps(t), dtype=torch.bool)
        for k, d in enumerate(self.delays):
            m[k, d:d + t] = True
        return m

    def build(self, codes, special):
        b, k, t = codes.shape
        seq = torch.full((b, k, self.num_steps(t)), special, dtype=codes.dtype, device=codes.device)
        for i, d in enumerate(self.delays):
            seq[:, i, d:d + t] = codes[:, i]
        return seq, self.valid_mask(t)

    def revert(self, seq):
        t = seq.shape[2] - max(self.delays)
        return torch.stack([seq[:, i, d:d + t] for i, d in enumerate(self.delays)], dim=1)


def get_pattern(name, num_codebooks):
    assert name == "delay"
    return DelayPattern(num_codebooks)
