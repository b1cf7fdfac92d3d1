"""``bench run``: plan -> generate (cached) -> normalise -> embed (cached) -> score -> results.

The runner resolves every plug-in through the registry (``bench.suite.load_suite``) and imports no
concrete plug-in. Each step has its own module; this one runs them in order, as phases:

1. plan (``bench.plan``): dataset prompts x generators x seeds, each clip keyed by its content;
2. generation (``bench.generation``): missing clips only, batched, cached as each batch returns;
3. evaluation audio (``bench.eval_audio``): loudness normalisation, reference crop and trim;
4. embeddings (``bench.embed``): mono, resampled to each embedder's rate, cached, computed
   ``embed_batch_size`` clips per embedder call;
5. metrics (``bench.score``): one fresh instance per (generator, metric), fed every item; any failure
   raises; records with ``Generator.describe`` as ``generator_info``;
   Per-clip values that need the merged state (``Metric.late_values``: per-song FAD) join each
   rank's per-sample rows once the states are summed;
6. outputs (``bench.publish``): ``results.json`` (flat records, see ``RESULTS_SCHEMA``, and
   ``worst_clips``: each system's worst clips per per-clip score, ``bench.per_clip``),
   ``samples.csv`` (+ parquet with pyarrow), evaluated audio under ``audio/``.

Killing the process at any point and running again redoes only what is missing; cache hits are
counted in ``results.json["metadata"]["cache"]``, generation and embedding speed (audio-seconds per
second, ``bench.throughput``) in ``results.json["metadata"]["throughput"]``.

Under torchrun (``bench.distributed``) each rank takes every ``world_size``-th item of the plan,
generates and scores only those, and the metric states, per-sample rows and cache counts are
combined on rank 0, which alone writes the outputs; the results equal a one-process run's. After each
phase every rank reports how it went (``World.check``): a failure anywhere fails every rank.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from typing import Any

from bench.distributed import RankError, World
from bench.embed import DEFAULT_EMBED_BATCH, EmbeddingCache
from bench.generation import check_clips, generate_missing
from bench.per_clip import add_late_values, worst_clips
from bench.plan import EvalItem, PlanEntry, RunError, load_prompts, make_plan, select_generators, slug
from bench.publish import gather_rows, gather_stats, run_metadata, write_outputs
from bench.run_flags import summarize
from bench.score import RESULTS_SCHEMA, Scorer
from bench.store import RunStore
from bench.suite import PlannedSuite
from bench.throughput import Throughput, merge

__all__ = ["RESULTS_SCHEMA", "EvalItem", "PlanEntry", "RunError", "Runner", "check_clips", "slug"]


class Runner:
    """Runs a validated suite into its run directory."""

    def __init__(self, planned: PlannedSuite, *, limit: int | None = None, only: Sequence[str] = (),
                 device: str = "cpu", progress: bool = True, world: World | None = None,
                 embed_batch_size: int = DEFAULT_EMBED_BATCH) -> None:
        self.planned = planned
        self.suite = planned.suite
        self.world = world if world is not None else World(device=device)
        self.limit, self.only, self.device = limit, list(only), device
        self.progress = progress and self.world.is_main
        self.store = RunStore(planned.run_dir)
        self.throughput = Throughput(device)
        self.embeddings = EmbeddingCache(planned, self.store, device, self.throughput)
        self.scorer = Scorer(planned, self.store, self.embeddings, device, embed_batch_size)
        self.stats: dict[str, dict[str, int]] = {"clips": {"hits": 0, "generated": 0},
                                                 "embeddings": self.embeddings.stats}

    def _phase(self, error: BaseException | None, phase: str) -> None:
        """Every rank reports how ``phase`` went; any failure fails every rank, naming the rank. An
        unexpected exception becomes a one-line ``RunError`` naming the phase (its cause chained)."""
        if error is not None and not isinstance(error, RunError) and not self.world.distributed:
            raise RunError(f"{phase}: {type(error).__name__}: {error}") from error
        try:
            self.world.check(error, phase)
        except RankError as e:
            raise RunError(str(e)) from None

    def plan(self) -> tuple[list[PlanEntry], list, dict[str, Any]]:
        """Every item of the run (``bench.plan``), the prompts and the dataset protocol."""
        prompts, dataset_protocol, dataset_ids = load_prompts(self.planned, self.limit)
        generators = select_generators(self.planned, self.only)
        plan = make_plan(self.planned, generators, prompts, self.world, self.store, dataset_ids)
        return plan, prompts, dataset_protocol

    def _describe(self, entry: PlanEntry) -> dict[str, Any]:
        try:
            return dict(entry.generator.describe(self.suite.generation.duration_s))
        except Exception as e:
            raise RunError(f"generator {entry.plugin.label!r}: describe() failed: {type(e).__name__}: "
                           f"{e}") from e

    def run(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        error: BaseException | None = None
        if self.world.is_main:  # rank 0 holds the lock for the whole world, which joined through torchrun
            try:
                self.store.lock()
            except RuntimeError as e:
                error = RunError(str(e))
        self._phase(error, "lock")
        plan, prompts, dataset_protocol = [], [], {}
        try:
            plan, prompts, dataset_protocol = self.plan()
        except Exception as e:
            error = e
        self._phase(error, "plan")
        mine = [entry.mine() for entry in plan]
        try:
            self.stats["clips"] = generate_missing(mine, self.store, self.suite.generation, self.device,
                                                   self.progress, self.throughput)
        except Exception as e:
            error = e
        self._phase(error, "generation")
        t_gen = time.perf_counter()
        records, rows = [], []
        for entry in mine:  # the same generators in the same order on every rank
            fed = []
            try:
                fed = self.scorer.evaluate(entry)
            except Exception as e:
                error = e
            self._phase(error, f"evaluation of {entry.plugin.label!r}")
            for _, metric, _ in fed:
                self.world.reduce_metric(metric)
            try:  # per-clip values that need the whole set (per-song FAD), for this rank's items
                add_late_values(entry.items, [m for _, m, _ in fed])
            except Exception as e:
                error = RunError(f"per-clip values of {entry.plugin.label!r}: {type(e).__name__}: {e}")
            self._phase(error, f"per-clip values of {entry.plugin.label!r}")
            if self.world.is_main:  # states are dropped after each generator: memory stays bounded
                try:
                    info = self._describe(entry)
                    records += [rec for f in fed
                                for rec in self.scorer.records(entry.plugin, f, dataset_protocol, info)]
                except Exception as e:
                    error = e
            self._phase(error, f"scores of {entry.plugin.label!r}")
            rows += [it.row for it in entry.items]
        rows = gather_rows(self.world, plan, rows)
        for kind, lines in self.store.damaged.items():  # recomputed, counted, never used
            self.stats.setdefault(kind, {})["damaged"] = len(lines)
        self.stats = gather_stats(self.world, self.stats)
        throughput = merge(self.world.gather(self.throughput.as_json()))
        damaged: dict[str, list[str]] = {}
        for part in self.world.gather(self.store.damaged):
            for kind, lines in part.items():
                damaged.setdefault(kind, []).extend(lines)
        results: dict[str, Any] = {}
        if self.world.is_main:
            try:
                t_end = time.perf_counter()
                durations = {"generation": t_gen - t0, "evaluation": t_end - t_gen, "total": t_end - t0}
                metadata = run_metadata(self.planned, plan, prompts, dataset_protocol, durations,
                                        device=self.device, world=self.world, limit=self.limit,
                                        only=self.only, cache=self.stats)
                metadata["audio_flags"] = summarize(rows)
                metadata["throughput"] = throughput
                metadata["damaged_cache_entries"] = {k: v[:50] for k, v in damaged.items()}
                results = {"suite": self.suite.name, "worst_clips": worst_clips(rows, self.scorer.directions),
                           "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                           "records": records, "metadata": metadata}
                if self.suite.report.html:  # no report of the previous run beside these results
                    self.store.path(self.suite.report.html).unlink(missing_ok=True)
                write_outputs(self.store, self.suite.report.samples, results, rows)
            except Exception as e:
                error = e
        self._phase(error, "results")
        return results
