"""CLAP score: mean cosine between the prompt's text embedding and the generated clip's audio embedding.

Audio features come from the runner (embedder ``clap``: one L2-normalised ``[1, 512]`` embedding of a
deterministic 10 s crop, see ``bench.embedders.clap``). Text embeddings come from the same
embedder's text tower (``Embedder.embed_text``, texts -> ``[N, D]``), which the runner hands over
through ``Metric.set_text_encoder``; used without the runner, a ``ClapEmbedder`` built from this
metric's ``checkpoint``/``tokenizer`` params is loaded on first use. Text embeddings are cached per
prompt text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from bench.api import MetricInfo, MetricItem, MetricResult
from bench.metrics.base import BaseMetric, EmbedderParams, item_key
from bench.metrics.functional.similarity import cosine_similarity

TextEncoder = Callable[[Sequence[str]], np.ndarray]


class ClapScoreParams(EmbedderParams):
    embedder: str = "clap"
    checkpoint: str = "music_audioset_epoch_15_esc_90.14.pt"
    tokenizer: str = "roberta-base"


class ClapScore(BaseMetric):
    """Mean text-audio cosine (higher is better)."""

    Params = ClapScoreParams
    mean_names = ("clap_score",)

    def __init__(self, params: ClapScoreParams | None = None) -> None:
        super().__init__(params)
        self._text_encoder: TextEncoder | None = None
        self._text_cache: dict[str, np.ndarray] = {}

    def set_text_encoder(self, encoder: TextEncoder) -> None:
        """Use ``encoder`` (list of texts -> ``[N, D]`` embeddings) for prompts."""
        self._text_encoder = encoder

    def _text_embedding(self, text: str) -> np.ndarray:
        if text not in self._text_cache:
            if self._text_encoder is None:
                from bench.embedders.clap import ClapEmbedder

                emb = ClapEmbedder(ClapEmbedder.Params(checkpoint=self.params.checkpoint,
                                                       tokenizer=self.params.tokenizer))
                emb.load()
                self._text_encoder = emb.embed_text
            self._text_cache[text] = np.asarray(self._text_encoder([text]), dtype=np.float64)[0]
        return self._text_cache[text]

    def update(self, item: MetricItem,
               features: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, float] | None:
        """Adds the item; returns its per-clip ``clap_score``."""
        if not self.accept(item):
            return None
        audio = np.asarray(self.features_of(features, item)["generated"], dtype=np.float64)
        if audio.ndim != 2 or not np.all(np.isfinite(audio)):
            raise ValueError(f"CLAP score: audio embedding of {item_key(item)!r} must be finite [F, D]; "
                             f"got shape {audio.shape}")
        text = self._text_embedding(item.prompt.text)
        if text.shape[-1] != audio.shape[-1]:
            raise ValueError(f"CLAP score: text dim {text.shape[-1]} != audio dim {audio.shape[-1]}")
        # several crops (if an embedder returns them) count as one clip: mean cosine over crops
        value = float(cosine_similarity(audio, text[None, :]).mean())
        self.add_value("clap_score", item_key(item), value)
        return {"clap_score": value}

    def infos(self) -> list[MetricInfo]:
        proto = {**self.base_protocol(), "statistic": "mean cosine(text embedding, audio embedding)",
                 "text_checkpoint": self.params.checkpoint, "tokenizer": self.params.tokenizer}
        return [MetricInfo("clap_score", higher_is_better=True, protocol=proto)]

    def compute(self) -> dict[str, MetricResult]:
        return {"clap_score": self.mean_result("clap_score", int(self.state["clap_score.weight"]))}
