"""``bench run``: plan -> generate (cached) -> normalise -> embed (cached) -> score -> results.

The runner resolves every plug-in through the registry (``bench.suite.load_suite``) and imports no
concrete plug-in. Steps:

1. plan: dataset prompts (``dataset.limit``, then ``--limit``) x generators (after matrix expansion,
   ``--only``) x seeds; each clip keyed by ``bench.store.clip_key``;
2. generation: missing clips only, in batches of ``generation.batch_size`` per (generator, seed),
   with a tqdm progress bar; each clip is written atomically as soon as its batch returns;
3. evaluation audio: generated audio normalised to ``loudness_lufs`` (ITU-R BS.1770, pyloudnorm;
   silence stays silent and is flagged), reference audio cut to ``duration_s`` (normalised too when
   ``normalize_reference``), both trimmed to their common length when ``trim_to_reference``;
4. embeddings: mono, resampled with julius to each embedder's rate, cached by
   ``bench.store.embedding_key``;
5. metrics: one fresh instance per (generator, metric), fed every item; any failure raises;
6. outputs: ``results.json`` (flat records, see ``RESULTS_SCHEMA``), ``samples.csv`` (+ parquet with
   pyarrow), evaluated audio under ``audio/``, and the HTML report when ``bench.report`` is present.

Killing the process at any point and running again redoes only what is missing; cache hits are
counted in ``results.json["metadata"]["cache"]``.

Under torchrun (``bench.distributed``) each rank takes every ``world_size``-th item of the plan,
generates and scores only those, and the metric states, per-sample rows and cache counts are
combined on rank 0, which alone writes the outputs; the results equal a one-process run's.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import json
import platform
import re
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench import __version__
from bench.api import AudioClip, Embedder, Generator, MetricItem, Prompt
from bench.audio import crop, normalize_loudness, read_audio, resample, to_mono
from bench.distributed import RankError, World
from bench.store import RunStore, audio_digest, clip_key, embedding_key, reference_tokens_key
from bench.suite import PlannedSuite, Plugin

RESULTS_SCHEMA = ("generator", "params", "metric", "value", "ci_low", "ci_high", "n", "higher_is_better",
                  "protocol")


class RunError(RuntimeError):
    """A run that cannot finish; the message names the generator, prompt, seed or metric."""


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text).strip("_") or "_"


@dataclass
class EvalItem:
    """One (generator, prompt, seed) as it is evaluated."""

    prompt: Prompt
    seed: int
    key: str
    cached: bool
    mine: bool = True  # this rank's to generate and score (always, in a one-process run)
    clip: AudioClip | None = None
    reference: AudioClip | None = None
    row: dict[str, Any] = field(default_factory=dict)


def _check_clips(clips: Sequence[AudioClip], batch: Sequence[Prompt], seed: int, label: str) -> None:
    if len(clips) != len(batch):
        raise RunError(f"generator {label!r} returned {len(clips)} clips for {len(batch)} prompts")
    for clip, prompt in zip(clips, batch):
        if clip.prompt_id != prompt.id or clip.seed != seed:
            raise RunError(f"generator {label!r} returned a clip for ({clip.prompt_id!r}, seed {clip.seed}) "
                           f"where ({prompt.id!r}, seed {seed}) was asked")
        if clip.wav.shape[-1] == 0 or not np.all(np.isfinite(clip.wav)):
            raise RunError(f"generator {label!r}: clip for prompt {prompt.id!r} seed {seed} is empty or "
                           f"holds NaN/inf")


class Runner:
    """Runs a validated suite into its run directory."""

    def __init__(self, planned: PlannedSuite, *, limit: int | None = None, only: Sequence[str] = (),
                 device: str = "cpu", progress: bool = True, world: World | None = None) -> None:
        self.planned = planned
        self.suite = planned.suite
        self.gen = planned.suite.generation
        self.world = world if world is not None else World(device=device)
        self.limit, self.only, self.device = limit, list(only), device
        self.progress = progress and self.world.is_main
        self.store = RunStore(planned.run_dir)
        self._reference_features: dict[str, np.ndarray] = {}  # embedding key -> features
        self.stats = {"clips": {"hits": 0, "generated": 0}, "embeddings": {"hits": 0, "computed": 0}}
        self._embedders: dict[str, Embedder] = {}
        self._loaded: set[int] = set()  # generators whose load() ran

    # -- plan ------------------------------------------------------------------------------------
    def generators(self) -> list[Plugin]:
        gens = self.planned.generators
        if not self.only:
            return gens
        known = {g.label for g in gens} | {g.name for g in gens}
        for want in self.only:
            if want not in known:
                close = difflib.get_close_matches(want, sorted(known), n=3)
                hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
                raise RunError(f"--only {want!r} matches no generator of the suite{hint} "
                               f"(labels: {', '.join(g.label for g in gens)})")
        return [g for g in gens if g.label in self.only or g.name in self.only]

    def prompts(self) -> tuple[list[Prompt], dict[str, Any]]:
        dataset = self.planned.make(self.planned.dataset)
        prompts = dataset.prompts()
        for n in (self.suite.dataset.limit, self.limit):
            if n is not None:
                prompts = prompts[:n]
        if not prompts:
            raise RunError(f"dataset {self.planned.dataset.name!r} gave no prompts")
        ids = [p.id for p in prompts]
        if len(set(ids)) != len(ids):
            raise RunError(f"dataset {self.planned.dataset.name!r} has duplicate prompt ids")
        return prompts, {**dataset.protocol(), "name": self.planned.dataset.name, "n_prompts": len(prompts)}

    # -- generation ------------------------------------------------------------------------------
    def generate_all(self, plan: list[tuple[Plugin, Generator, list[EvalItem]]]) -> None:
        from tqdm import tqdm

        total = sum(len(items) for _, _, items in plan)
        with tqdm(total=total, desc="generate", unit="clip", disable=not self.progress,
                  file=sys.stderr) as bar:
            for plugin, generator, items in plan:
                hits = [it for it in items if it.cached]
                self.stats["clips"]["hits"] += len(hits)
                bar.update(len(hits))
                todo = [it for it in items if not it.cached]
                if not todo:
                    continue
                generator.load(self.device)
                self._loaded.add(id(generator))
                for seed in self.gen.seeds:
                    pending = [it for it in todo if it.seed == seed]
                    for start in range(0, len(pending), self.gen.batch_size):
                        batch = pending[start:start + self.gen.batch_size]
                        prompts = [it.prompt for it in batch]
                        try:
                            clips = generator.generate(prompts, seed, self.gen.duration_s)
                        except Exception as e:
                            raise RunError(f"generator {plugin.label!r} failed on prompts "
                                           f"{[p.id for p in prompts]} seed {seed}: {type(e).__name__}: "
                                           f"{e}") from e
                        _check_clips(clips, prompts, seed, plugin.label)
                        for it, clip in zip(batch, clips):
                            self.store.save_clip(it.key, clip)
                            self.stats["clips"]["generated"] += 1
                        bar.update(len(batch))

    # -- evaluation audio ------------------------------------------------------------------------
    def reference(self, prompt: Prompt) -> AudioClip | None:
        if prompt.reference_path is None:
            return None
        wav, sr = read_audio(prompt.reference_path)  # read again per generator: memory stays bounded
        wav = crop(wav, round(self.gen.duration_s * sr))
        if self.gen.normalize_reference and self.gen.loudness_lufs is not None:
            wav, _ = normalize_loudness(wav, sr, self.gen.loudness_lufs)
        return AudioClip(wav, sr, prompt.id, -1, meta={"reference": True})

    def prepare(self, label: str, item: EvalItem) -> None:
        clip = self.store.load_clip(item.key)
        if clip is None:
            raise RunError(f"clip {item.key} for {label!r} / {item.prompt.id!r} vanished from the cache")
        measured = None
        if self.gen.loudness_lufs is not None:
            wav, measured = normalize_loudness(clip.wav, clip.sample_rate, self.gen.loudness_lufs)
            clip = AudioClip(wav, clip.sample_rate, clip.prompt_id, clip.seed, clip.tokens, clip.meta)
        ref = self.reference(item.prompt)
        if ref is not None and self.gen.trim_to_reference:
            common_s = min(clip.duration_s, ref.duration_s)
            clip = AudioClip(crop(clip.wav, round(common_s * clip.sample_rate)), clip.sample_rate,
                             clip.prompt_id, clip.seed, clip.tokens, clip.meta)
            ref = AudioClip(crop(ref.wav, round(common_s * ref.sample_rate)), ref.sample_rate,
                            ref.prompt_id, ref.seed, meta=ref.meta)
        item.clip, item.reference = clip, ref
        audio = f"audio/{slug(label)}/{slug(item.prompt.id)}__s{item.seed}.wav"
        self.store.write_audio(audio, clip.wav, clip.sample_rate)
        ref_audio = None
        if ref is not None:
            ref_audio = f"audio/_reference/{slug(item.prompt.id)}.wav"
            if not self.store.path(ref_audio).is_file():
                self.store.write_audio(ref_audio, ref.wav, ref.sample_rate)
        item.row = {"generator": label, "prompt_id": item.prompt.id, "seed": item.seed,
                    "text": item.prompt.text, "audio": audio, "reference_audio": ref_audio,
                    "duration_s": round(clip.duration_s, 6), "sample_rate": clip.sample_rate,
                    "loudness_lufs_before": None if measured is None else round(measured, 3),
                    "silent": bool(measured is not None and not np.isfinite(measured)),
                    "cached": item.cached}

    # -- embeddings ------------------------------------------------------------------------------
    def embedder(self, name: str) -> Embedder:
        if name not in self._embedders:
            emb = self.planned.make(self.planned.embedders[name])
            missing = emb.check()
            if missing:
                raise RunError(f"embedder {name!r}: " + "; ".join(missing))
            emb.load(self.device)
            self._embedders[name] = emb
        return self._embedders[name]

    def features(self, name: str, clip: AudioClip, memo: dict[str, np.ndarray]) -> np.ndarray:
        """Frame embeddings of ``clip`` by embedder ``name``: from ``memo`` (this process), the disk
        cache (counted as a hit) or the embedder (counted as computed)."""
        emb = self.embedder(name)
        mono = resample(to_mono(clip.wav), clip.sample_rate, emb.sample_rate)
        params = self.planned.embedders[name].params.model_dump(mode="json")
        key = embedding_key(name, emb.version, emb.sample_rate, emb.digest(), params,
                            audio_digest(mono, emb.sample_rate))
        if key in memo:  # the same audio again (a reference, or a second metric)
            return memo[key]
        cached = self.store.load_embedding(key)
        if cached is not None:
            self.stats["embeddings"]["hits"] += 1
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
        self.stats["embeddings"]["computed"] += 1
        memo[key] = feats
        return feats

    # -- metrics ---------------------------------------------------------------------------------
    def bind(self, metric: Any, names: Sequence[str]) -> None:
        """Optional hooks a metric may define (duck-typed, see ``bench.api.Metric``):
        ``bind_embedder(name, protocol)`` receives each loaded embedder's protocol, and
        ``set_text_encoder(fn)`` receives the embedder's ``embed_text`` (texts -> ``[N, D]``)."""
        for name in names:
            emb = self.embedder(name)
            if hasattr(metric, "bind_embedder"):
                metric.bind_embedder(name, emb.protocol())
            if hasattr(metric, "set_text_encoder") and hasattr(emb, "embed_text"):
                metric.set_text_encoder(emb.embed_text)

    def reference_tokens(self, generator: Generator, fingerprint: str, ref: AudioClip) -> np.ndarray | None:
        """``ref``'s tokens in the generator's codec (cached), for ``needs_reference_tokens`` metrics."""
        key = reference_tokens_key(fingerprint, audio_digest(ref.wav, ref.sample_rate))
        tokens = self.store.load_array("tokens", key)
        if tokens is None:
            if id(generator) not in self._loaded:
                generator.load(self.device)
                self._loaded.add(id(generator))
            tokens = generator.encode_reference(ref.wav, ref.sample_rate)
            if tokens is None:
                return None
            tokens = np.asarray(tokens, dtype=np.int64)
            self.store.save_array("tokens", key, tokens)
        return tokens

    def evaluate(self, plugin: Plugin, generator: Generator, fingerprint: str,
                 items: list[EvalItem]) -> list[tuple[Plugin, Any, tuple[str, ...]]]:
        """Stream the generator's items through every metric (one clip in memory at a time); returns
        each metric (plug-in, fed instance, embedder names) for ``records``."""
        metrics = [(mp, self.planned.make(mp)) for mp in self.planned.metrics]
        names_of = {id(m): tuple(m.embedder_names()) for _, m in metrics}
        for _, metric in metrics:
            self.bind(metric, names_of[id(metric)])
        want_tokens = any(getattr(m, "needs_reference_tokens", False) for _, m in metrics)
        for it in items:
            self.prepare(plugin.label, it)
            if want_tokens and it.reference is not None:
                it.reference.tokens = self.reference_tokens(generator, fingerprint, it.reference)
            feats: dict[str, dict[str, np.ndarray]] = {}
            for mp, metric in metrics:
                if metric.needs_reference and it.reference is None:
                    raise RunError(f"metric {mp.name!r} needs reference audio; prompt {it.prompt.id!r} "
                                   f"has none")
                for name in names_of[id(metric)]:
                    if name not in feats:
                        feats[name] = {"generated": self.features(name, it.clip, {})}
                        if it.reference is not None:
                            feats[name]["reference"] = self.features(name, it.reference,
                                                                     self._reference_features)
                try:
                    per_sample = metric.update(MetricItem(it.prompt, it.clip, it.reference),
                                               {n: feats[n] for n in names_of[id(metric)]})
                except Exception as e:
                    raise RunError(f"metric {mp.name!r} failed on {plugin.label!r} / prompt "
                                   f"{it.prompt.id!r} seed {it.seed}: {type(e).__name__}: {e}") from e
                for k, v in (per_sample or {}).items():
                    it.row[k] = float(v)
            it.clip = it.reference = None  # audio is not kept: MusicCaps-sized sets stay in memory bounds
        return [(mp, metric, names_of[id(metric)]) for mp, metric in metrics]

    def records(self, plugin: Plugin, mp: Plugin, metric: Any, names: Sequence[str],
                dataset_protocol: Mapping[str, Any]) -> list[dict]:
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
                        "embedders": {n: self.embedder(n).protocol() for n in names},
                        "dataset": dict(dataset_protocol), "generation": self.gen.model_dump(mode="json"),
                        **dict(res.extra.get("protocol", {}))}
            out.append({"generator": plugin.label, "params": plugin.params.model_dump(mode="json"),
                        "metric": out_name, "value": float(res.value),
                        "ci_low": None if res.ci_low is None else float(res.ci_low),
                        "ci_high": None if res.ci_high is None else float(res.ci_high),
                        "n": int(res.n), "higher_is_better": bool(info.higher_is_better),
                        "protocol": protocol,
                        "details": json.loads(json.dumps({k: v for k, v in res.extra.items()
                                                          if k != "protocol"}, default=str))})
        return out

    # -- the whole run ---------------------------------------------------------------------------
    def _phase(self, error: BaseException | None, phase: str) -> None:
        """Every rank reports how ``phase`` went; any failure fails every rank, naming the rank."""
        try:
            self.world.check(error, phase)
        except RankError as e:
            raise RunError(str(e)) from None

    def plan(self) -> tuple[list, list[Prompt], dict[str, Any]]:
        """``[(plugin, generator, items, fingerprint)]`` with every item of the run, the prompts and
        the dataset protocol. Items are numbered across the whole plan (generators in suite order,
        then seeds, then prompts); item ``i`` is rank ``i % world_size``'s (``EvalItem.mine``)."""
        prompts, dataset_protocol = self.prompts()
        for what, names in (("generator labels", [g.label for g in self.generators()]),
                            ("prompt ids", [p.id for p in prompts])):
            slugs = [slug(n) for n in names]
            clash = sorted({n for n, s in zip(names, slugs) if slugs.count(s) > 1})
            if clash:
                raise RunError(f"{what} {clash} map to the same audio file name; rename them")
        plan, index = [], 0
        for plugin in self.generators():
            generator = self.planned.make(plugin)
            fp = generator.fingerprint()
            items = []
            for seed in self.gen.seeds:
                for p in prompts:
                    key = clip_key(fp, p, seed, self.gen.duration_s)
                    mine = self.world.owns(index)
                    items.append(EvalItem(p, seed, key, mine and self.store.has_clip(key), mine=mine))
                    index += 1
            plan.append((plugin, generator, items, fp))
        return plan, prompts, dataset_protocol

    def run(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        error: BaseException | None = None
        if self.world.is_main:  # rank 0 holds the lock for the whole world, which joined through torchrun
            try:
                self.store.lock()
            except RuntimeError as e:
                error = RunError(str(e))
        self._phase(error, "lock")
        plan, prompts, dataset_protocol, error = [], [], {}, None
        try:
            plan, prompts, dataset_protocol = self.plan()
        except Exception as e:
            error = e
        self._phase(error, "plan")
        mine = [(p, g, [it for it in items if it.mine], fp) for p, g, items, fp in plan]
        try:
            self.generate_all([(p, g, items) for p, g, items, _ in mine])
        except Exception as e:
            error = e
        self._phase(error, "generation")
        t_gen = time.perf_counter()
        records, rows = [], []
        for plugin, generator, items, fp in mine:  # the same generators in the same order on every rank
            metrics = []
            try:
                metrics = self.evaluate(plugin, generator, fp, items)
            except Exception as e:
                error = e
            self._phase(error, f"evaluation of {plugin.label!r}")
            for _, metric, _ in metrics:
                self.world.reduce_metric(metric)
            if self.world.is_main:  # states are dropped after each generator: memory stays bounded
                try:
                    records += [rec for mp, metric, names in metrics
                                for rec in self.records(plugin, mp, metric, names, dataset_protocol)]
                except Exception as e:
                    error = e
            self._phase(error, f"scores of {plugin.label!r}")
            rows += [it.row for it in items]
        rows = self._gather_rows(plan, rows)
        self.stats = self._gather_stats()
        results: dict[str, Any] = {}
        if self.world.is_main:
            try:
                t_end = time.perf_counter()
                results = {"suite": self.suite.name,
                           "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                           "records": records,
                           "metadata": self.metadata(plan, prompts, dataset_protocol,
                                                     {"generation": t_gen - t0, "evaluation": t_end - t_gen,
                                                      "total": t_end - t0})}
                self.write_outputs(results, rows)
            except Exception as e:
                error = e
        self._phase(error, "results")
        return results

    def _gather_rows(self, plan: list, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Every rank's per-sample rows, in the plan's order (as one process writes them)."""
        if not self.world.distributed:
            return rows
        by_item = {(r["generator"], r["prompt_id"], r["seed"]): r for part in self.world.gather(rows)
                   for r in part}
        return [by_item[(p.label, it.prompt.id, it.seed)] for p, _, items, _ in plan for it in items
                if (p.label, it.prompt.id, it.seed) in by_item]

    def _gather_stats(self) -> dict[str, dict[str, int]]:
        """Cache counts summed over ranks."""
        total: dict[str, dict[str, int]] = {}
        for stats in self.world.gather(self.stats):
            for what, counts in stats.items():
                for k, v in counts.items():
                    total.setdefault(what, {}).setdefault(k, 0)
                    total[what][k] += v
        return total

    def metadata(self, plan: list, prompts: list[Prompt], dataset_protocol: Mapping[str, Any],
                 durations: Mapping[str, float]) -> dict[str, Any]:
        import numpy
        import torch

        return {"bench_version": __version__, "commit": _git_commit(), "python": platform.python_version(),
                "packages": {"numpy": numpy.__version__, "torch": torch.__version__},
                "device": self.device, "world_size": self.world.world_size,
                "distributed_backend": self.world.backend, "suite_file": str(self.planned.path),
                "suite_sha256": hashlib.sha256(self.planned.path.read_bytes()).hexdigest(),
                "dataset": dict(dataset_protocol), "prompt_ids": [p.id for p in prompts],
                "seeds": list(self.gen.seeds), "duration_s": self.gen.duration_s,
                "limit": self.limit, "only": self.only, "cache": self.stats,
                "durations_s": {k: round(v, 3) for k, v in durations.items()},
                "generators": {p.label: {"name": p.name, "params": p.params.model_dump(mode="json"),
                                         "fingerprint": fp} for p, _, _, fp in plan}}

    def write_outputs(self, results: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        import pandas as pd

        table = self.suite.report.samples
        df = pd.DataFrame(rows)
        from bench.store import atomic_write_text

        atomic_write_text(self.store.path(f"{table}.csv"), df.to_csv(index=False))
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            pass
        else:
            tmp = self.store.path(f".{table}.parquet.tmp")
            df.to_parquet(tmp, index=False)
            tmp.replace(self.store.path(f"{table}.parquet"))
        results["metadata"]["samples_table"] = f"{table}.csv"
        self.store.write_json("results.json", results)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
