"""Exponential moving average of a module's weights (the paper's EMA with decay 0.99).

``EMA(module, decay)`` keeps float32 copies of every floating-point entry of ``module.state_dict()``
(parameters and floating buffers). ``update(module)`` does ``shadow = decay * shadow + (1 - decay) *
value``; ``swapped(module)`` temporarily loads the averaged weights (validation, export) and puts the
live weights back afterwards. ``state_dict``/``load_state_dict`` are plain ``{name: tensor}`` so the
checkpoint writes them to safetensors.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class EMA:
    def __init__(self, module: nn.Module, decay: float = 0.99) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self.shadow: dict[str, torch.Tensor] = {
            name: value.detach().to(torch.float32).clone()
            for name, value in module.state_dict().items() if value.is_floating_point()
        }

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        for name, value in module.state_dict().items():
            avg = self.shadow.get(name)
            if avg is not None:
                avg.mul_(self.decay).add_(value.detach().to(torch.float32), alpha=1.0 - self.decay)

    @torch.no_grad()
    def copy_to(self, module: nn.Module) -> None:
        """Load the averaged weights into ``module`` (cast to each entry's dtype)."""
        state = module.state_dict()
        for name, avg in self.shadow.items():
            state[name].copy_(avg.to(state[name].dtype))

    @contextmanager
    def swapped(self, module: nn.Module) -> Iterator[nn.Module]:
        """``with ema.swapped(model): ...`` runs with the averaged weights, then restores the live ones."""
        live = {name: value.detach().clone() for name, value in module.state_dict().items()
                if name in self.shadow}
        self.copy_to(module)
        try:
            yield module
        finally:
            with torch.no_grad():
                state = module.state_dict()
                for name, value in live.items():
                    state[name].copy_(value)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.shadow)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = sorted(set(self.shadow) - set(state))
        extra = sorted(set(state) - set(self.shadow))
        if missing or extra:
            raise KeyError(f"EMA state does not match the model: missing {missing[:5]}, "
                           f"unexpected {extra[:5]}")
        for name, value in state.items():
            self.shadow[name].copy_(value.to(torch.float32))
