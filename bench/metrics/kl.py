"""KL divergence between the label distributions of reference and generated clips (paired).

Features: the classifier embedder's per-segment logits ``[S, C]`` (PaSST: 20 s segments without
padding, segments of 0.15 s or less dropped, C = 527). Per clip: softmax, mean over segments. Values
(means over items, each with a bootstrap interval): ``kl`` = KL(reference || generated) with eps 1e-6
on the generated probabilities (the paper's number), ``kl_reverse`` and ``kl_symmetric`` (the sum,
audiocraft's ``kld_both``).

Clips longer than one 20 s segment: we average the segment distributions per clip (REFERENCE.md's
protocol); audiocraft's ``PasstKLDivergenceMetric`` instead pairs generated and reference segments
by index and weights by segments. Both agree for clips of at most 20 s (MusicCaps is 10 s).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bench.api import MetricInfo, MetricItem, MetricResult
from bench.metrics.base import BaseMetric, MetricParams, item_key
from bench.metrics.functional.divergence import KL_EPS, clip_label_distribution, kl_all_directions

KL_NAMES = {"kl": "KL(reference || generated), eps on generated",
            "kl_reverse": "KL(generated || reference), eps on reference",
            "kl_symmetric": "KL(reference || generated) + KL(generated || reference)"}


class KLParams(MetricParams):
    embedder: str = "passt"
    eps: float = KL_EPS


class KLDivergence(BaseMetric):
    """Paired KL divergence of classifier label distributions."""

    Params = KLParams
    embedders = ("passt",)
    needs_reference = True

    def __init__(self, params: KLParams | None = None) -> None:
        super().__init__(params)
        self.embedders = (self.params.embedder,)
        for name in KL_NAMES:
            self.add_mean_state(name)

    def update(self, item: MetricItem,
               features: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, float] | None:
        """Adds the item; returns its per-clip values (``kl``, ``kl_reverse``, ``kl_symmetric``)."""
        self.require_reference(item)
        if not self.accept(item, check_reference=True):
            return None
        feats = features.get(self.params.embedder, {})
        if "generated" not in feats or "reference" not in feats:
            raise KeyError(f"KL: item {item_key(item)!r} lacks {self.params.embedder!r} logits for "
                           f"{'generated' if 'generated' not in feats else 'reference'}")
        p_ref = clip_label_distribution(feats["reference"])
        p_gen = clip_label_distribution(feats["generated"])
        if p_ref.shape != p_gen.shape:
            raise ValueError(f"KL: class counts differ for {item_key(item)!r}: "
                             f"{p_ref.shape} vs {p_gen.shape}")
        values = {name: float(v) for name, v in kl_all_directions(p_ref, p_gen, self.params.eps).items()}
        for name, value in values.items():
            self.add_value(name, item_key(item), value)
        return values

    def infos(self) -> list[MetricInfo]:
        base = self.base_protocol()
        return [MetricInfo(name, higher_is_better=False, unit="nats",
                           protocol={**base, "direction": direction, "eps": self.params.eps,
                                     "aggregation": "softmax per segment, mean per clip, mean over clips"})
                for name, direction in KL_NAMES.items()]

    def compute(self) -> dict[str, MetricResult]:
        n = int(self.state["kl.weight"])
        return {name: self.mean_result(name, n) for name in KL_NAMES}
