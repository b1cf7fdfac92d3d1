"""Per-clip results: values that need the whole set, and the worst clips of each system.

- ``add_late_values``: puts each metric's ``late_values()`` (per-sample values computed from the
  merged state, e.g. per-song FAD) into the per-sample rows of the items they belong to.
- ``worst_clips``: for each generator and each per-sample score column, the ``k`` clips with the
  worst values (highest where lower is better, lowest where higher is better), as
  ``results.json["worst_clips"][generator][column] = [{prompt_id, seed, value, audio}, ...]``.
  Rows without a value (NaN or empty: not computable for that clip) are left out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

WORST_K = 5


def add_late_values(items: Sequence[Any], metrics: Sequence[Any]) -> None:
    """``item.row[column] = value`` for every value of every metric's ``late_values()``;
    ``items`` are the runner's ``EvalItem`` (``prompt.id``, ``seed``, ``row``)."""
    by_key = {(it.prompt.id, it.seed): it for it in items}
    for metric in metrics:
        for key, values in metric.late_values().items():
            item = by_key.get((key[0], int(key[1])))
            if item is None:
                raise KeyError(f"{type(metric).__name__}.late_values() names item {key}, which this "
                               f"process did not evaluate")
            for column, value in values.items():
                item.row[column] = float(value)


def worst_clips(rows: Sequence[Mapping[str, Any]], directions: Mapping[str, bool],
                k: int = WORST_K) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """``{generator: {column: [worst k clips]}}`` over the columns named in ``directions``
    (column -> higher is better)."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for column, higher in directions.items():
        by_gen: dict[str, list[tuple[float, Mapping[str, Any]]]] = {}
        for row in rows:
            value = row.get(column)
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                by_gen.setdefault(str(row["generator"]), []).append((float(value), row))
        for gen, pairs in by_gen.items():
            pairs.sort(key=lambda p: (p[0] if higher else -p[0], str(p[1].get("prompt_id"))))
            out.setdefault(gen, {})[column] = [
                {"prompt_id": r.get("prompt_id"), "seed": r.get("seed"), "value": v, "audio": r.get("audio")}
                for v, r in pairs[:k]]
    return out


def worst_rows(run_dir: Path, html_dir: Path,
               audio_src: Callable[[Any, Path, Path], tuple[str, bool]]) -> list[dict[str, Any]]:
    """``results.json["worst_clips"]`` (``bench.per_clip``) as rows: generator, column, clips with
    their value and ``audio_src(path, run_dir, html_dir)[0]`` (the report's relative link); empty when
    the run has none."""
    try:
        raw = json.loads((run_dir / "results.json").read_text(encoding="utf-8")).get("worst_clips") or {}
    except (OSError, ValueError, AttributeError):  # no results.json there (a results file given alone)
        return []
    if not isinstance(raw, dict):
        return []
    out = []
    for gen, columns in sorted(raw.items()):
        for column, clips in sorted(columns.items()):
            rows = [{**c, "src": audio_src(c.get("audio"), run_dir, html_dir)[0]} for c in clips]
            out.append({"generator": gen, "column": column, "clips": rows})
    return out
