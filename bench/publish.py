"""Step 6 of ``bench run``: the outputs, written together by rank 0.

``results.json`` (suite, creation time, flat records as ``bench.score`` makes them, and ``metadata``:
versions, commit, device, world, suite file digest, dataset protocol, prompt ids, seeds, cache counts,
durations, generator fingerprints), the per-sample table ``samples.csv`` (+ ``samples.parquet`` when
pyarrow is installed), every file written atomically. Under torchrun the ranks' rows and cache counts
are gathered here first (``gather_rows``, ``gather_stats``), so the outputs equal a one-process run's.
"""

from __future__ import annotations

import hashlib
import io
import platform
from collections.abc import Mapping
from typing import Any

from bench import __version__
from bench.api import Prompt
from bench.distributed import World
from bench.files import atomic_write_bytes, atomic_write_text, file_digest, git_commit
from bench.plan import PlanEntry
from bench.store import RunStore
from bench.suite import PlannedSuite


def gather_rows(world: World, plan: list[PlanEntry], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every rank's per-sample rows, in the plan's order (as one process writes them)."""
    if not world.distributed:
        return rows
    by_item = {(r["generator"], r["prompt_id"], r["seed"]): r for part in world.gather(rows) for r in part}
    return [by_item[(e.plugin.label, it.prompt.id, it.seed)] for e in plan for it in e.items
            if (e.plugin.label, it.prompt.id, it.seed) in by_item]


def gather_stats(world: World, stats: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    """Cache counts summed over ranks."""
    total: dict[str, dict[str, int]] = {}
    for part in world.gather(dict(stats)):
        for what, counts in part.items():
            for k, v in counts.items():
                total.setdefault(what, {}).setdefault(k, 0)
                total[what][k] += v
    return total


def run_metadata(planned: PlannedSuite, plan: list[PlanEntry], prompts: list[Prompt],
                 dataset_protocol: Mapping[str, Any], durations: Mapping[str, float], *, device: str,
                 world: World, limit: int | None, only: list[str],
                 cache: Mapping[str, Any]) -> dict[str, Any]:
    """``results.json["metadata"]``: what made these numbers, and how long it took."""
    import numpy
    import torch

    settings = planned.suite.generation
    return {"bench_version": __version__, "commit": git_commit(), "python": platform.python_version(),
            "packages": {"numpy": numpy.__version__, "torch": torch.__version__},
            "device": device, "world_size": world.world_size,
            "distributed_backend": world.backend, "suite_file": str(planned.path),
            "suite_sha256": file_digest(planned.path),
            "dataset": dict(dataset_protocol), "prompt_ids": [p.id for p in prompts],
            "seeds": list(settings.seeds), "duration_s": settings.duration_s,
            "limit": limit, "only": only, "cache": dict(cache),
            "durations_s": {k: round(v, 3) for k, v in durations.items()},
            "generators": {e.plugin.label: {"name": e.plugin.name,
                                            "params": e.plugin.params.model_dump(mode="json"),
                                            "fingerprint": e.fingerprint} for e in plan}}


def write_outputs(store: RunStore, table: str, results: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """``RUN/<table>.csv`` (+ parquet) and ``RUN/results.json``, each atomically, results last."""
    import pandas as pd

    df = pd.DataFrame(rows)
    csv = df.to_csv(index=False)
    # results.json, written last, names the table it goes with: a reader refuses a mix of two runs
    results["metadata"]["samples_sha256"] = {f"{table}.csv": hashlib.sha256(csv.encode()).hexdigest()}
    atomic_write_text(store.path(f"{table}.csv"), csv)
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        pass
    else:
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        atomic_write_bytes(store.path(f"{table}.parquet"), buf.getvalue())
    results["metadata"]["samples_table"] = f"{table}.csv"
    store.write_json("results.json", results)
