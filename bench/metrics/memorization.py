"""Memorization rates for training items prompted with their own conditions (paired).

Token mode (both ``item.generated.tokens`` and ``item.reference.tokens`` present, ``[K, T]``):
``exact_match_rate`` (all first-codebook tokens of the first 250 steps equal) and
``partial_match_rate`` (at least 80 % equal). Embedding mode (generators without tokens): the cosine
of the clip-mean embeddings of the generated clip and its training original, and
``embedding_copy_rate``, the rate of pairs above ``copy_threshold``. The full nearest-neighbour rate
against the whole training set (needs every training embedding at once, not a streamed sum) is
``functional.nearest_neighbour_rate``. A suite mixing items with and without tokens reports both.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bench.api import MetricInfo, MetricItem, MetricResult
from bench.metrics.base import BaseMetric, EmbedderParams, item_key
from bench.metrics.functional.memorization import MEMORIZATION_TOKENS, PARTIAL_MATCH, token_match_fraction
from bench.metrics.functional.similarity import cosine_similarity


class MemorizationParams(EmbedderParams):
    n_tokens: int = MEMORIZATION_TOKENS
    partial: float = PARTIAL_MATCH
    embedder: str = "vggish"
    copy_threshold: float = 0.95


NAMES = ("exact_match_rate", "partial_match_rate", "embedding_cosine", "embedding_copy_rate")


class Memorization(BaseMetric):
    """Token match rates (or embedding copy rate) between continuations and training originals."""

    Params = MemorizationParams
    needs_reference = True
    needs_reference_tokens = True
    mean_names = NAMES

    def update(self, item: MetricItem, features: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        self.require_reference(item)
        key = item_key(item)
        if item.generated.tokens is not None and item.reference.tokens is not None:
            frac = token_match_fraction(item.generated.tokens, item.reference.tokens, self.params.n_tokens)
            self.add_value("exact_match_rate", key, float(frac == 1.0))
            self.add_value("partial_match_rate", key, float(frac >= self.params.partial))
            return
        if not self.accept(item, check_reference=True):
            return
        feats = self.features_of(features, item, ("generated", "reference"))  # no tokens: embeddings
        gen, ref = np.mean(feats["generated"], axis=0), np.mean(feats["reference"], axis=0)
        cos = float(cosine_similarity(gen, ref))
        self.add_value("embedding_cosine", key, cos)
        self.add_value("embedding_copy_rate", key, float(cos >= self.params.copy_threshold))

    def infos(self) -> list[MetricInfo]:
        p = self.params
        proto = {**self.base_protocol(), "tokens": f"first codebook, first {p.n_tokens} steps",
                 "partial": p.partial, "copy_threshold": p.copy_threshold}
        return [MetricInfo(n, higher_is_better=False, protocol=proto) for n in NAMES]

    def compute(self) -> dict[str, MetricResult]:
        out = {}
        for name in NAMES:
            n = int(self.state[f"{name}.weight"])
            if n:
                out[name] = self.mean_result(name, n)
        if not out:
            raise ValueError(f"memorization: no usable items ({int(self.state['n_flagged'])} flagged)")
        return out
