"""Step 5 of ``bench run``: metrics, fed every item, and the flat records of ``results.json``.

One fresh instance of every metric per generator. Before the first item each metric gets its
embedders' protocols and, where an embedder has a text tower, its ``embed_text``
(``Metric.bind_embedder`` / ``Metric.set_text_encoder``, see ``bench.api``). Items stream through in
chunks of the embedding batch size (that many clips and references in memory): each chunk's clips are
embedded together (``EmbeddingCache.features_many``), then every item of the chunk is fed to every
metric in the plan's order, so the metric states equal those of one item at a time. Reference tokens
are encoded in the generator's codec (and cached) only when a metric ``needs_reference_tokens``. Any
failure raises ``RunError`` naming the metric, generator, prompt and seed: no metric is computed on a
partial set.

A record: ``generator`` (label), ``params`` (the generator's), ``metric`` (output name), ``value``,
``ci_low``/``ci_high``, ``n``, ``higher_is_better``, ``protocol`` (the metric's, its embedders', the
dataset's and the generation settings), ``generator_info`` (``Generator.describe``; not part of
the protocol) and ``details`` (what the metric reported beside its value, ``MetricResult.extra``
less its protocol: FAD-inf's fit, flagged items; not part of the protocol either).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bench.api import AudioClip, Metric, MetricItem
from bench.embed import DEFAULT_EMBED_BATCH, EmbeddingCache
from bench.eval_audio import prepare_item
from bench.plan import EvalItem, PlanEntry, RunError
from bench.store import RunStore, audio_digest, reference_tokens_key
from bench.suite import PlannedSuite, Plugin

RESULTS_SCHEMA = ("generator", "params", "metric", "value", "ci_low", "ci_high", "n", "higher_is_better",
                  "protocol", "generator_info", "details")

#: a metric fed with a generator's items: (its plug-in, the instance, the embedders it uses)
FedMetric = tuple[Plugin, Metric, tuple[str, ...]]


class Scorer:
    """Feeds a generator's items through every metric of the suite and turns states into records."""

    def __init__(self, planned: PlannedSuite, store: RunStore, embeddings: EmbeddingCache,
                 device: str, embed_batch_size: int = DEFAULT_EMBED_BATCH) -> None:
        self.planned, self.store, self.embeddings, self.device = planned, store, embeddings, device
        if embed_batch_size < 1:
            raise ValueError(f"embedding batch size must be at least 1, got {embed_batch_size}")
        self.embed_batch_size = embed_batch_size  # clips per embedder call, and items per chunk
        self.settings = planned.suite.generation
        self._reference_features: dict[str, np.ndarray] = {}  # embedding key -> features
        self.directions: dict[str, bool] = {}  # per-sample column -> higher is better (infos)

    def bind(self, metric: Metric, names: Sequence[str]) -> None:
        """Hand each embedder's protocol (and text tower, when it has one) to ``metric``."""
        for name in names:
            emb = self.embeddings.embedder(name)
            metric.bind_embedder(name, emb.protocol())
            encoder = emb.text_encoder()
            if encoder is not None:
                metric.set_text_encoder(encoder)

    def reference_tokens(self, entry: PlanEntry, ref: AudioClip) -> np.ndarray | None:
        """``ref``'s tokens in the generator's codec (cached), for ``needs_reference_tokens`` metrics."""
        key = reference_tokens_key(entry.fingerprint, audio_digest(ref.wav, ref.sample_rate))
        tokens = self.store.load_array("tokens", key)
        if tokens is None:
            tokens = entry.load(self.device).encode_reference(ref.wav, ref.sample_rate)
            if tokens is None:
                return None
            tokens = np.asarray(tokens, dtype=np.int64)
            self.store.save_array("tokens", key, tokens)
        return tokens

    def evaluate(self, entry: PlanEntry) -> list[FedMetric]:
        """Stream ``entry``'s items through every metric (one chunk of clips in memory at a time)."""
        label = entry.plugin.label
        fed = []
        for mp in self.planned.metrics:
            metric = self.planned.make(mp)
            names = tuple(metric.embedder_names())
            try:
                self.bind(metric, names)
            except RunError:
                raise
            except Exception as e:  # e.g. a reference statistics file of another embedder protocol
                raise RunError(f"metric {mp.name!r}: {e}") from e
            self.directions.update({i.name: i.higher_is_better for i in metric.infos()})
            fed.append((mp, metric, names))
        want_tokens = any(m.needs_reference_tokens for _, m, _ in fed)
        names = list(dict.fromkeys(n for _, _, ns in fed for n in ns))
        for start in range(0, len(entry.items), self.embed_batch_size):
            chunk = entry.items[start:start + self.embed_batch_size]
            for it in chunk:
                prepare_item(self.store, self.settings, label, it)
                if want_tokens and it.reference is not None:
                    it.reference.tokens = self.reference_tokens(entry, it.reference)
                for mp, metric, _ in fed:
                    if metric.needs_reference and it.reference is None:
                        raise RunError(f"metric {mp.name!r} needs reference audio; prompt {it.prompt.id!r} "
                                       f"has none")
            feats = self.chunk_features(chunk, names)
            for it, item_feats in zip(chunk, feats):
                for mp, metric, used in fed:
                    try:
                        per_sample = metric.update(MetricItem(it.prompt, it.clip, it.reference),
                                                   {n: item_feats[n] for n in used})
                    except Exception as e:
                        raise RunError(f"metric {mp.name!r} failed on {label!r} / prompt "
                                       f"{it.prompt.id!r} seed {it.seed}: {type(e).__name__}: {e}") from e
                    for k, v in (per_sample or {}).items():
                        it.row[k] = float(v)
                it.clip = it.reference = None  # audio is not kept: MusicCaps-sized sets stay in memory bounds
        return fed

    def chunk_features(self, chunk: Sequence[EvalItem], names: Sequence[str]
                       ) -> list[dict[str, dict[str, np.ndarray]]]:
        """Per item of ``chunk``: embedder name -> ``{"generated": [F, D], "reference": [F, D]}`` (no
        ``reference`` without one), each embedder's clips in batches (references through the run's memo)."""
        out: list[dict[str, dict[str, np.ndarray]]] = [{} for _ in chunk]
        paired = [i for i, it in enumerate(chunk) if it.reference is not None]
        for name in names:
            generated = self.embeddings.features_many(name, [it.clip for it in chunk], None,
                                                      self.embed_batch_size)
            refs = self.embeddings.features_many(name, [chunk[i].reference for i in paired],
                                                 self._reference_features, self.embed_batch_size)
            for i, g in enumerate(generated):
                out[i][name] = {"generated": g}
            for i, r in zip(paired, refs):
                out[i][name]["reference"] = r
        return out

    def records(self, plugin: Plugin, fed: FedMetric, dataset_protocol: Mapping[str, Any],
                generator_info: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The records (see the module docstring) of one fed metric's ``compute()``."""
        mp, metric, names = fed
        try:
            results = metric.compute()
        except Exception as e:
            raise RunError(f"metric {mp.name!r} failed to compute for {plugin.label!r}: "
                           f"{type(e).__name__}: {e}") from e
        infos = {info.name: info for info in metric.infos()}
        out = []
        for out_name, res in results.items():
            if out_name not in infos:
                raise RunError(f"metric {mp.name!r} returned {out_name!r}, which infos() does not declare")
            info = infos[out_name]
            protocol = {**dict(info.protocol), "metric": mp.name,
                        "metric_params": mp.params.model_dump(mode="json"), "unit": info.unit,
                        "embedders": {n: self.embeddings.embedder(n).protocol() for n in names},
                        "dataset": dict(dataset_protocol),
                        "generation": self.settings.model_dump(mode="json"),
                        **dict(res.extra.get("protocol", {}))}
            out.append({"generator": plugin.label, "params": plugin.params.model_dump(mode="json"),
                        "metric": out_name, "value": float(res.value),
                        "ci_low": None if res.ci_low is None else float(res.ci_low),
                        "ci_high": None if res.ci_high is None else float(res.ci_high),
                        "n": int(res.n), "higher_is_better": bool(info.higher_is_better),
                        "protocol": protocol, "generator_info": dict(generator_info),
                        "details": json.loads(json.dumps(
                            {k: v for k, v in res.extra.items() if k not in ("protocol", "flagged")},
                            default=str))})
            if "n_flagged" in res.extra:  # clips left out of this value (silent, non-finite), by id
                out[-1].update(n_flagged=int(res.extra["n_flagged"]),
                               flagged=res.extra.get("flagged", {}))
        return out
