"""Step 4 of ``bench run``: frame embeddings of evaluation audio, cached, computed in batches.

Each embedder is built from the suite, checked (``Embedder.check``: a missing weight file fails the
run with its own message) and loaded once, on first use. A clip is downmixed to mono and resampled
with julius to the embedder's rate; its features ``[F, D]`` come from, in this order, an in-process
memo (the same audio for a second metric, or a reference seen again), the disk cache (counted as a
hit) or the embedder (counted as computed). The cache key (``bench.store.embedding_key``) holds the
embedder's name, version, rate, weights digest and params and the digest of the audio it embeds.

``features_many`` takes several clips at once: the clips neither memo nor disk cache holds go to
the embedder ``batch_size`` at a time (``bench.embedders.common.embed_clips``: the backbone's
``embed_batch`` where it has one; every built-in backbone takes clips of different lengths), and
each batch's features are checked (shape ``[F, D]``, finite) and written to the disk cache as soon as
the batch returns, so a killed run loses at most one batch. When a batch call fails, its clips are
embedded one by one, so the error names the clip (prompt id, seed) and the others are kept. The
counts equal those of embedding the clips one at a time in order: without a memo a clip whose audio
an earlier clip of the batch had counts as a disk hit, as it would have been one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bench.api import AudioClip, Embedder
from bench.audio import resample, to_mono
from bench.plan import RunError
from bench.store import RunStore, audio_digest, embedding_key
from bench.suite import PlannedSuite
from bench.throughput import Throughput

#: clips per embedder call unless the run says otherwise (``bench run --embed-batch-size``)
DEFAULT_EMBED_BATCH = 8


class EmbeddingCache:
    """The run's embedders and their cached features; ``stats`` counts hits and computed features,
    ``throughput`` the embedders' wall time and audio seconds (``bench.throughput``)."""

    def __init__(self, planned: PlannedSuite, store: RunStore, device: str,
                 throughput: Throughput | None = None) -> None:
        self.planned, self.store, self.device = planned, store, device
        self.stats = {"hits": 0, "computed": 0}
        self.throughput = throughput if throughput is not None else Throughput(device)
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
        return self.features_many(name, [clip], memo)[0]

    def features_many(self, name: str, clips: Sequence[AudioClip], memo: dict[str, np.ndarray] | None = None,
                      batch_size: int = DEFAULT_EMBED_BATCH) -> list[np.ndarray]:
        """Frame embeddings ``[F_i, D]`` of each of ``clips`` by embedder ``name``, in order: from
        ``memo`` (updated; None: no memo), the disk cache, or the embedder in batches of
        ``batch_size`` clips (see the module docstring)."""
        if batch_size < 1:
            raise ValueError(f"embedding batch size must be at least 1, got {batch_size}")
        emb = self.embedder(name)
        params = self.planned.embedders[name].params.model_dump(mode="json")
        digest = emb.digest()
        out: list[np.ndarray | None] = [None] * len(clips)
        todo: list[tuple[int, str, np.ndarray]] = []  # (clip index, key, mono audio) to compute
        later: list[tuple[int, str]] = []  # clips whose audio an earlier clip of ``todo`` has
        pending: set[str] = set()
        for i, clip in enumerate(clips):
            mono = resample(to_mono(clip.wav), clip.sample_rate, emb.sample_rate)
            key = embedding_key(name, emb.version, emb.sample_rate, digest, params,
                                audio_digest(mono, emb.sample_rate))
            if memo is not None and key in memo:
                out[i] = memo[key]
            elif key in pending:
                later.append((i, key))
            elif (cached := self.store.load_embedding(key)) is not None:
                self.stats["hits"] += 1
                self.throughput.add_cached("embedding", name, 1)
                out[i] = cached
                if memo is not None:
                    memo[key] = cached
            else:
                pending.add(key)
                todo.append((i, key, mono))
        computed: dict[str, np.ndarray] = {}
        for start in range(0, len(todo), batch_size):
            part = todo[start:start + batch_size]
            for (i, key, _), feats in zip(part, self._compute(name, emb, part, clips)):
                out[i] = computed[key] = feats
                if memo is not None:
                    memo[key] = feats
        for i, key in later:  # one at a time, it would have been a memo hit, or a disk hit without memo
            if memo is None:
                self.stats["hits"] += 1
                self.throughput.add_cached("embedding", name, 1)
            out[i] = computed[key]
        return out  # type: ignore[return-value]

    def _compute(self, name: str, emb: Embedder, part: list[tuple[int, str, np.ndarray]],
                 clips: Sequence[AudioClip]) -> list[np.ndarray]:
        """One batch through the embedder, each clip's features checked and cached; on a failed
        batch call, one clip at a time. Every good clip is cached before the first bad one raises."""
        from bench.embedders.common import embed_each  # here: the runner imports no plug-in package

        def where(i: int) -> str:
            return f"clip {clips[i].prompt_id!r} seed {clips[i].seed}"

        with self.throughput.timed("embedding", name):
            feats = embed_each(emb, [mono for _, _, mono in part])
        errors, good = [], []
        for (i, key, mono), f in zip(part, feats):
            if isinstance(f, BaseException):
                errors.append(RunError(f"embedder {name!r} failed on {where(i)}: {type(f).__name__}: {f}"))
                errors[-1].__cause__ = f
                continue
            f = np.asarray(f)
            if f.ndim != 2 or not np.all(np.isfinite(f)):
                errors.append(RunError(f"embedder {name!r} returned shape {f.shape} (want [F, D]) or NaN/inf "
                                       f"for {where(i)}"))
                continue
            self.store.save_embedding(key, f)
            self.stats["computed"] += 1
            speed = self.throughput.speed("embedding", name)
            speed.clips += 1
            speed.audio_s += len(mono) / emb.sample_rate
            good.append(f)
        if errors:
            raise errors[0]
        return good
