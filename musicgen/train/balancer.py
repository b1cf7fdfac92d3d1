"""Loss balancer: loss weights as fractions of the gradient on the model output.

For losses ``l_i`` that all depend on one output tensor ``y`` (the decoded audio), the balancer
computes each ``g_i = d l_i / d y``, keeps an exponential moving average of their norms ``n_i``
(``ema_decay``), and back-propagates ``sum_i total_norm * (w_i / sum_j w_j) * g_i / (n_i + eps)``
through ``y``. So a weight says which share of the gradient a loss gets, whatever its scale (the idea
of EnCodec's balancer, Défossez et al. 2022). With ``per_batch_item`` the norms are taken per
example and averaged. ``balance=False`` falls back to ``sum_i w_i g_i`` (plain weighted sum).
"""

from __future__ import annotations

import torch


class Balancer:
    """``backward(losses, output)`` with weights that are fractions of the output gradient."""

    def __init__(
        self,
        weights: dict[str, float],
        total_norm: float = 1.0,
        ema_decay: float = 0.999,
        per_batch_item: bool = True,
        balance: bool = True,
        eps: float = 1e-12,
    ) -> None:
        bad = {k: w for k, w in weights.items() if w < 0}
        if bad:
            raise ValueError(f"balancer weights must be >= 0, got {bad}")
        self.weights = dict(weights)
        self.total_norm = total_norm
        self.ema_decay = ema_decay
        self.per_batch_item = per_batch_item
        self.balance = balance
        self.eps = eps
        self._ema: dict[str, float] = {}
        self._ema_weight: dict[str, float] = {}
        self.metrics: dict[str, float] = {}

    def _norm(self, grad: torch.Tensor) -> float:
        if self.per_batch_item and grad.dim() > 1:
            return float(grad.flatten(1).norm(dim=1).mean())
        return float(grad.norm())

    def _ema_update(self, name: str, value: float) -> float:
        # bias-corrected EMA: the first value counts fully
        self._ema[name] = self._ema.get(name, 0.0) * self.ema_decay + value
        self._ema_weight[name] = self._ema_weight.get(name, 0.0) * self.ema_decay + 1.0
        return self._ema[name] / self._ema_weight[name]

    def backward(self, losses: dict[str, torch.Tensor], output: torch.Tensor) -> torch.Tensor:
        """Back-propagate the balanced gradient of ``losses`` through ``output``; returns that gradient."""
        unknown = sorted(set(losses) - set(self.weights))
        if unknown:
            raise ValueError(f"losses {unknown} have no balancer weight; weights are {sorted(self.weights)}")
        grads = {}
        for name, loss in losses.items():
            if self.weights[name] == 0 or not loss.requires_grad:
                continue
            grads[name] = torch.autograd.grad(loss, [output], retain_graph=True)[0]
        total_weight = sum(self.weights[n] for n in grads) or 1.0
        out_grad = torch.zeros_like(output)
        for name, g in grads.items():
            if self.balance:
                norm = self._ema_update(name, self._norm(g))
                scale = self.total_norm * self.weights[name] / total_weight / (norm + self.eps)
            else:
                scale = self.weights[name]
            self.metrics[f"ratio_{name}"] = self.weights[name] / total_weight
            out_grad = out_grad + scale * g
        output.backward(out_grad)
        return out_grad
