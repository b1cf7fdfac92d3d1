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

Each clip's three values go to the per-sample table. ``reference_stats``: a ``bench stats
--embeddings`` file holding every reference clip's logits by prompt id; they stand for the items'
reference audio (the file's embedder protocol must match the one in use).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

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
    #: a ``bench stats --embeddings`` file: each prompt's reference logits are read from it by prompt
    #: id (its embedder protocol must match), so items need no reference audio
    reference_stats: Path | None = None


class KLDivergence(BaseMetric):
    """Paired KL divergence of classifier label distributions."""

    Params = KLParams
    needs_reference = True
    mean_names = tuple(KL_NAMES)

    def __init__(self, params: KLParams | None = None) -> None:
        super().__init__(params)
        self.needs_reference = self.params.reference_stats is None
        self._stats: Any = None

    def check(self) -> list[str]:
        from bench.stats import stats_problems

        path = self.params.reference_stats
        return [] if path is None else stats_problems(path, self.params.embedder, need_embeddings=True)

    def bind_embedder(self, name: str, protocol: Mapping[str, Any]) -> None:
        """Also refuses a statistics file made with another protocol of this embedder."""
        super().bind_embedder(name, protocol)
        if self.params.reference_stats is not None and name == self.params.embedder:
            from bench.stats import bind_reference_stats

            self._stats = bind_reference_stats(self.params.reference_stats, name, protocol)

    def update(self, item: MetricItem,
               features: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, float] | None:
        """Adds the item; returns its per-clip values (``kl``, ``kl_reverse``, ``kl_symmetric``)."""
        if self.params.reference_stats is None:
            self.require_reference(item)
        if not self.accept(item, check_reference=True):
            return None
        sides = ("generated",) if self._stats is not None else ("generated", "reference")
        feats = self.features_of(features, item, sides)
        if self._stats is not None:
            feats["reference"] = self._stats.frames_of(item.prompt.id)
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
                                     **({"reference": f"per-clip logits of statistics file "
                                                      f"{self.params.reference_stats}"}
                                        if self.params.reference_stats is not None else {}),
                                     "aggregation": "softmax per segment, mean per clip, mean over clips"})
                for name, direction in KL_NAMES.items()]

    def compute(self) -> dict[str, MetricResult]:
        n = int(self.state["kl.weight"])
        return {name: self.mean_result(name, n) for name in KL_NAMES}
