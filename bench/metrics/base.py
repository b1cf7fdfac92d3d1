"""Shared machinery of the built-in metrics: bad-audio flags, mean-with-bootstrap state, protocols.

- Every clip is checked (``audio_flags``): non-finite or silent audio is either an error
  (``on_bad_audio="raise"``) or flagged (default): the clip is left out of every value of the
  metric, counted in state ``n_flagged`` and listed by id in ``MetricResult.extra["flagged"]``.
- Means carry a Poisson bootstrap (``functional.bootstrap``): the replicate sums are state too, so
  merging shards gives the same values and intervals as one pass.
- The protocols the runner hands over (``Metric.bind_embedder``: backbone, checkpoint digest, sample
  rate, crop policy) are copied into every ``MetricInfo.protocol``.
- ``EmbedderParams`` adds the ``embedder`` choice (a registry name) for metrics on one backbone.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np

from bench.api import Metric, MetricItem, MetricResult, Params
from bench.metrics.functional.audio_checks import audio_flags
from bench.metrics.functional.bootstrap import percentile_interval, poisson_weights, weighted_mean_replicates


class MetricParams(Params):
    """Parameters every built-in metric takes."""

    n_bootstrap: int = 200
    confidence: float = 0.95
    seed: int = 0
    on_bad_audio: Literal["flag", "raise"] = "flag"


class EmbedderParams(MetricParams):
    """Parameters of a metric computed on one embedder's features: which one (registry name)."""

    embedder: str


def item_key(item: MetricItem) -> str:
    """Identity of an item for bootstrap weights: prompt id and seed."""
    return f"{item.prompt.id}#{item.generated.seed}"


class BaseMetric(Metric):
    """A metric with flagged clips, bootstrapped means and bound embedder protocols."""

    Params = MetricParams
    #: bootstrapped means this metric keeps (``add_mean_state`` for each at construction)
    mean_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: Params | None = None) -> None:
        super().__init__(params)
        self.flagged: dict[str, list[str]] = {}
        self.add_state("n_flagged")
        for name in self.mean_names:
            self.add_mean_state(name)

    # -- protocols -------------------------------------------------------------------------------
    def base_protocol(self) -> dict[str, Any]:
        p = self.params
        out: dict[str, Any] = {"bootstrap": f"poisson, {p.n_bootstrap} replicates, seed {p.seed}",
                               "confidence": p.confidence, "on_bad_audio": p.on_bad_audio}
        for name in self.embedder_names():
            out[f"embedder.{name}"] = self.embedder_protocols.get(name, "not bound (see run record)")
        return out

    # -- bad audio -------------------------------------------------------------------------------
    def accept(self, item: MetricItem, check_reference: bool = False) -> bool:
        """False (and the clip flagged) when the generated or reference audio is non-finite or
        silent; raises instead with ``on_bad_audio="raise"``."""
        problems = [f"generated {f}" for f in audio_flags(item.generated.wav)]
        if check_reference and item.reference is not None:
            problems += [f"reference {f}" for f in audio_flags(item.reference.wav)]
        if not problems:
            return True
        key = item_key(item)
        if self.params.on_bad_audio == "raise":
            raise ValueError(f"{type(self).__name__}: item {key!r} has {', '.join(problems)} audio")
        for p in problems:
            self.flagged.setdefault(p, []).append(key)
        self.state["n_flagged"] += 1.0
        return False

    def require_reference(self, item: MetricItem) -> None:
        if item.reference is None:
            raise ValueError(f"{type(self).__name__} is paired: item {item_key(item)!r} has no reference "
                             f"clip (reference and generated sets must have the same N)")

    def merge(self, other: Metric) -> None:
        if isinstance(other, BaseMetric):
            for k in set(other.state) - set(self.state):  # lazily shaped states
                self.state[k] = np.zeros_like(other.state[k])
            for k in set(self.state) - set(other.state):
                other_state = np.zeros_like(self.state[k])
                other.state[k] = other_state
        super().merge(other)
        if isinstance(other, BaseMetric):
            for flag, keys in other.flagged.items():
                self.flagged.setdefault(flag, []).extend(keys)

    def extra(self) -> dict[str, Any]:
        return {"n_flagged": int(self.state["n_flagged"]),
                "flagged": {k: sorted(v) for k, v in self.flagged.items()}}

    # -- bootstrapped means ----------------------------------------------------------------------
    def add_mean_state(self, name: str) -> None:
        b = self.params.n_bootstrap
        self.add_state(f"{name}.sum")
        self.add_state(f"{name}.weight")
        self.add_state(f"{name}.boot_sum", (b,))
        self.add_state(f"{name}.boot_weight", (b,))

    def add_value(self, name: str, key: str, value: float, weight: float = 1.0) -> None:
        """Add ``value`` (already multiplied by nothing) with ``weight`` to the mean ``name``."""
        if not np.isfinite(value):
            raise ValueError(f"{type(self).__name__}: {name} of item {key!r} is not finite ({value})")
        w = poisson_weights(self.params.seed, key, self.params.n_bootstrap)
        self.state[f"{name}.sum"] += value * weight
        self.state[f"{name}.weight"] += weight
        self.state[f"{name}.boot_sum"] += w * value * weight
        self.state[f"{name}.boot_weight"] += w * weight

    def mean_result(self, name: str, n: int) -> MetricResult:
        weight = float(self.state[f"{name}.weight"])
        if weight <= 0:
            raise ValueError(f"{type(self).__name__}: no usable items for {name} "
                             f"({int(self.state['n_flagged'])} flagged)")
        value = float(self.state[f"{name}.sum"]) / weight
        lo = hi = None
        if self.params.n_bootstrap > 0:
            reps = weighted_mean_replicates(self.state[f"{name}.boot_sum"], self.state[f"{name}.boot_weight"])
            lo, hi = percentile_interval(reps, self.params.confidence)
        return MetricResult(value=value, n=n, ci_low=lo, ci_high=hi, extra=self.extra())
