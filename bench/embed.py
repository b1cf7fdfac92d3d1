"""Step 4 of ``bench run``: frame embeddings of evaluation audio, cached.

Each embedder is built from the suite, checked (``Embedder.check``: a missing weight file fails the
run with its own message) and loaded once, on first use. A clip is downmixed to mono and resampled
with julius to the embedder's rate; its features ``[F, D]`` come from, in this order, an in-process
memo (the same audio for a second metric, or a reference seen again), the disk cache (counted as a
hit) or the embedder (counted as computed). The cache key (``bench.store.embedding_key``) holds the
embedder's name, version, rate, weights digest and params and the digest of the audio it embeds.
"""

from __future__ import annotations

import numpy as np

from bench.api import AudioClip, Embedder
from bench.audio import resample, to_mono
from bench.plan import RunError
from bench.store import RunStore, audio_digest, embedding_key
from bench.suite import PlannedSuite


class EmbeddingCache:
    """The run's embedders and their cached features; ``stats`` counts hits and computed features."""

    def __init__(self, planned: PlannedSuite, store: RunStore, device: str) -> None:
        self.planned, self.store, self.device = planned, store, device
        self.stats = {"hits": 0, "computed": 0}
        self._embedders: dict[str, Embedder] = {}

    def embedder(self, name: str) -> Embedder:
        """The suite's embedder ``name``, checked and loaded on first use."""
        if name not in self._embedders:
            emb = self.planned.make(self.planned.embedders[name])
            missing = emb.check()
            if missing:
                raise RunError(f"embedder {name!r}: " + "; ".join(missing))
            emb.load(self.device)
            self._embedders[name] = emb
        return self._embedders[name]

    def features(self, name: str, clip: AudioClip, memo: dict[str, np.ndarray]) -> np.ndarray:
        """Frame embeddings ``[F, D]`` of ``clip`` by embedder ``name``, from ``memo``, the disk cache
        or the embedder (see the module docstring); what is computed is checked and cached."""
        emb = self.embedder(name)
        mono = resample(to_mono(clip.wav), clip.sample_rate, emb.sample_rate)
        params = self.planned.embedders[name].params.model_dump(mode="json")
        key = embedding_key(name, emb.version, emb.sample_rate, emb.digest(), params,
                            audio_digest(mono, emb.sample_rate))
        if key in memo:
            return memo[key]
        cached = self.store.load_embedding(key)
        if cached is not None:
            self.stats["hits"] += 1
            memo[key] = cached
            return cached
        try:
            feats = np.asarray(emb.embed(mono))
        except Exception as e:
            raise RunError(f"embedder {name!r} failed on clip {clip.prompt_id!r} seed {clip.seed}: "
                           f"{type(e).__name__}: {e}") from e
        if feats.ndim != 2 or not np.all(np.isfinite(feats)):
            raise RunError(f"embedder {name!r} returned shape {feats.shape} (want [F, D]) or NaN/inf "
                           f"for clip {clip.prompt_id!r} seed {clip.seed}")
        self.store.save_embedding(key, feats)
        self.stats["computed"] += 1
        memo[key] = feats
        return feats
