"""KL divergence between the label distributions of reference and generated clips (paired).

Features: the classifier embedder's per-segment logits ``[S, C]`` (PaSST: 20 s segments without
padding, segments of 0.15 s or less dropped, C = 527). Per clip: softmax, mean over segments. Values
(means over items, each with a bootstrap interval): ``kl`` = KL(reference || generated) with eps 1e-6
on the generated probabilities (the paper's number), ``kl_reverse`` and ``kl_symmetric`` (the sum,
audiocraft's ``kld_both``).

Clips longer than one 20 s segment: we average the segment distributions per clip (our choice, named
in every record's protocol as ``aggregation``); audiocraft's ``PasstKLDivergenceMetric``
(``audiocraft/metrics/kld.py``) instead pairs generated and reference segments by index and weights
by segments. Both agree for clips of at most 20 s (MusicCaps is 10 s).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bench.api import MetricInfo, MetricItem, MetricResult
from bench.metrics.base import BaseMetric, EmbedderParams, item_key
from bench.metrics.functional.divergence import KL_EPS, clip_label_distribution, kl_all_directions

KL_NAMES = {"kl": "KL(reference || generated), eps on generated",
            "kl_reverse": "KL(generated || reference), eps on reference",
            "kl_symmetric": "KL(reference || generated) + KL(generated || reference)"}


class KLParams(EmbedderParams):
    embedder: str = "passt"
    eps: float = KL_EPS


class KLDivergence(BaseMetric):
    """Paired KL divergence of classifier label distributions."""

    Params = KLParams
    needs_reference = True
    mean_names = tuple(KL_NAMES)

    def update(self, item: MetricItem, features: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        self.require_reference(item)
        if not self.accept(item, check_reference=True):
            return
        feats = self.features_of(features, item, ("generated", "reference"))
        p_ref = clip_label_distribution(feats["reference"])
        p_gen = clip_label_distribution(feats["generated"])
        if p_ref.shape != p_gen.shape:
            raise ValueError(f"KL: class counts differ for {item_key(item)!r}: "
                             f"{p_ref.shape} vs {p_gen.shape}")
        for name, value in kl_all_directions(p_ref, p_gen, self.params.eps).items():
            self.add_value(name, item_key(item), float(value))

    def infos(self) -> list[MetricInfo]:
        base = self.base_protocol()
        return [MetricInfo(name, higher_is_better=False, unit="nats",
                           protocol={**base, "direction": direction, "eps": self.params.eps,
                                     "aggregation": "softmax per segment, mean per clip, mean over clips"})
                for name, direction in KL_NAMES.items()]

    def compute(self) -> dict[str, MetricResult]:
        n = int(self.state["kl.weight"])
        return {name: self.mean_result(name, n) for name in KL_NAMES}
