"""Metric sanity: does each metric move monotonically with the strength of a graded degradation?

Input: the records of a run whose generators carry ``params.degradation`` and ``params.severity``
(the ``degrade`` generator, ``baselines/degrade.py``; ``suites/sanity.yaml``). The clean clips are the
records with ``degradation: none``. For every (metric, protocol) and every degradation:

- the points are the clean record (strength rank 0) and the degradation's levels ordered by
  ``severity`` (ranks 1..k; ``severity`` grows with strength whatever the level's unit);
- ``rho``: Spearman's correlation between strength rank and score. A metric that worsens with the
  degradation has ``rho = +1`` when lower is better (FAD, KAD, KL) and ``-1`` when higher is better
  (CLAP score, chroma cosine): ``expected`` is that sign;
- interval: a bootstrap over prompts. Each metric keeps Poisson-bootstrap replicates in the record's
  ``details``: ``paired_replicates`` where the metric compares two sets (FAD, KAD: a prompt's
  reference and generated clips share one weight), else ``replicates`` (per-clip means: KL, CLAP,
  chroma, where each item already pairs a clip with its reference). Replicate ``b`` weights each
  prompt the same way for every generator (the weights depend on seed and prompt id only), so the
  Spearman correlation of replicate ``b`` across the levels is one draw of the whole experiment on a
  resampled prompt set. (FAD's and KAD's own intervals resample the two sets independently; used
  here, that noise would swamp the small differences between mild levels.) The percentile interval of
  those correlations is reported (``confidence``, 95 % by default). Records without replicates
  (FAD-inf) get no interval;
- verdict: ``flat`` when the scores do not change at all (range below 1e-12 of their magnitude);
  otherwise, with an interval, ``right way`` / ``wrong way`` when the interval excludes 0 on the
  expected / other side and ``does not move`` when it includes 0; without one, ``right way`` /
  ``wrong way`` when ``|rho| >= 0.8`` (our threshold, stated in the report) and ``does not move``
  otherwise;
- the curve for the plot: ``(score - clean) / |strongest - clean|``, signed so that up means worse
  (0 = clean, +1 = strongest level when the metric worsens, -1 when it improves). A metric whose
  strongest level equals the clean score is drawn flat at 0 and marked.

``sample_size_rows``: each KAD record's ``details["sample_size"]`` (FAD and KAD against the number of
clips, several draws, FAD-inf's fit; ``bench.metrics.functional.sample_size``) and each FAD-inf
record's fit, for the report's "Sample size" part.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.metrics.functional.rank_correlation import spearman_rows
from bench.run_results import Record

CLEAN = "none"
#: |rho| needed for a verdict when a metric has no bootstrap replicates
RHO_THRESHOLD = 0.8
FLAT_RTOL = 1e-12


@dataclass
class Monotonicity:
    """One metric (under one protocol) against one degradation."""

    metric: str
    digest: str
    degradation: str
    higher_is_better: bool
    levels: list[Any]  # "clean" then the levels, mild to strong
    values: list[float]
    rho: float | None  # None when the scores are all equal
    ci_low: float | None = None
    ci_high: float | None = None
    n_replicates: int = 0
    verdict: str = ""
    normalised: list[float] = field(default_factory=list)

    @property
    def expected(self) -> int:
        return -1 if self.higher_is_better else 1


def _spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman's rho of level ``x`` and scores ``y``; None when the scores are all equal."""
    rho = spearman_rows(np.asarray(x, dtype=np.float64)[None], np.asarray(y, dtype=np.float64)[None])[0]
    return None if np.isnan(rho) else float(rho)


def is_flat(values: list[float]) -> bool:
    scale = max(abs(v) for v in values)
    return max(values) - min(values) <= FLAT_RTOL * max(scale, 1e-300)


def _verdict(m: Monotonicity) -> str:
    if m.rho is None or is_flat(m.values):
        return "flat"
    if m.ci_low is not None and m.ci_high is not None:
        if m.ci_low > 0 or m.ci_high < 0:
            return "right way" if (m.ci_low > 0) == (m.expected > 0) else "wrong way"
        return "does not move"
    if abs(m.rho) >= RHO_THRESHOLD:
        return "right way" if np.sign(m.rho) == m.expected else "wrong way"
    return "does not move"


def _normalised(values: list[float], higher_is_better: bool) -> list[float]:
    sign = -1.0 if higher_is_better else 1.0
    span = abs(values[-1] - values[0])
    if span <= FLAT_RTOL * max(max(abs(v) for v in values), 1e-300):
        return [0.0] * len(values)
    return [sign * (v - values[0]) / span for v in values]


def _replicates(records: list[Record]) -> np.ndarray | None:
    """``[B, points]`` replicate values (NaN where a replicate was empty), or None when some record
    has none or their counts differ."""
    reps = [r.details.get("paired_replicates", r.details.get("replicates")) for r in records]
    if any(not isinstance(x, list) or not x for x in reps) or len({len(x) for x in reps}) != 1:
        return None
    return np.array([[np.nan if v is None else float(v) for v in x] for x in reps], dtype=np.float64).T


def monotonicity(records: list[Record], confidence: float = 0.95) -> list[Monotonicity]:
    """One ``Monotonicity`` per (metric, protocol, degradation) found in ``records`` (see module doc)."""
    groups: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in records:
        if "degradation" in r.params and "severity" in r.params:
            groups[(r.metric, r.digest)].append(r)
    out = []
    for (metric, digest), recs in groups.items():
        clean = [r for r in recs if r.params["degradation"] == CLEAN]
        if len(clean) != 1:
            continue  # no clean reference (or several) under this protocol: nothing to anchor
        by_deg: dict[str, list[Record]] = defaultdict(list)
        for r in recs:
            if r.params["degradation"] != CLEAN:
                by_deg[str(r.params["degradation"])].append(r)
        for deg, levels in by_deg.items():
            levels.sort(key=lambda r: float(r.params["severity"]))
            points = clean + levels
            values = [float(r.value) for r in points]
            if not all(math.isfinite(v) for v in values):
                continue
            strength = np.arange(len(points), dtype=np.float64)
            m = Monotonicity(metric, digest, deg, points[0].higher_is_better,
                             ["clean"] + [r.params.get("level") for r in levels], values,
                             _spearman(strength, np.asarray(values)))
            reps = _replicates(points)
            if reps is not None and m.rho is not None:
                rhos = [_spearman(strength, row) for row in reps if np.all(np.isfinite(row))]
                rhos = [0.0 if x is None else x for x in rhos]
                if len(rhos) >= 10:
                    alpha = (1.0 - confidence) / 2.0
                    m.ci_low, m.ci_high = (float(q) for q in np.quantile(rhos, [alpha, 1 - alpha]))
                    m.n_replicates = len(rhos)
            m.verdict = _verdict(m)
            m.normalised = _normalised(values, m.higher_is_better)
            out.append(m)
    return out


@dataclass
class SampleSizeRow:
    """FAD / KAD against the number of clips for one generator (from its KAD record)."""

    generator: str
    embedder_metric: str
    n_clips: list[int]
    frames: np.ndarray  # [draws, sizes]
    fad: np.ndarray  # [draws, sizes]
    kad: np.ndarray
    fit: dict[str, Any]


def sample_size_rows(records: list[Record]) -> list[SampleSizeRow]:
    out = []
    for r in records:
        curve = r.details.get("sample_size")
        if not isinstance(curve, dict) or "fad" not in curve:
            continue
        out.append(SampleSizeRow(r.generator, r.metric, list(curve["n_clips"]),
                                 np.asarray(curve["frames"], dtype=np.float64),
                                 np.asarray(curve["fad"], dtype=np.float64),
                                 np.asarray(curve["kad"], dtype=np.float64),
                                 dict(curve.get("fad_inf_fit", {}))))
    return out


def fad_inf_fits(records: list[Record]) -> list[tuple[Record, dict[str, Any]]]:
    """Every FAD-inf record with its fit (intercept = value, slope, R², points; ``note`` when below
    zero)."""
    return [(r, {"intercept": r.value, "x": "1 / frames", **r.details}) for r in records
            if r.metric.startswith("fad_inf") and isinstance(r.details.get("slope"), int | float)]


def monotonicity_markdown(records: list[Record]) -> str:
    """The monotonicity table as markdown: a row per metric (and protocol, when a metric has several),
    a column per degradation, each cell ``rho [ci_low, ci_high] verdict``. Empty when there is none."""
    mono = monotonicity(records)
    if not mono:
        return ""
    degs = list(dict.fromkeys(m.degradation for m in mono))
    rows = list(dict.fromkeys((m.metric, m.digest) for m in mono))
    names = [metric for metric, _ in rows]
    cells = {(m.metric, m.digest, m.degradation): m for m in mono}
    hib = {(m.metric, m.digest): m.higher_is_better for m in mono}
    lines = ["| metric | " + " | ".join(degs) + " |", "|---|" + "---|" * len(degs)]
    for metric, digest in rows:
        out = []
        for d in degs:
            m = cells.get((metric, digest, d))
            if m is None:
                out.append("–")
                continue
            rho = "–" if m.rho is None else f"{m.rho:+.2f}"
            ci = f" [{m.ci_low:+.2f}, {m.ci_high:+.2f}]" if m.ci_low is not None else ""
            out.append(f"{rho}{ci} {m.verdict}")
        label = metric if names.count(metric) == 1 else f"{metric} ({digest})"
        arrow = "↑" if hib[(metric, digest)] else "↓"
        lines.append(f"| {label} {arrow} | " + " | ".join(out) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    from bench.run_results import ResultsError, load_results

    if len(sys.argv) != 2:
        print("usage: python -m bench.sanity RUN_DIR   (prints the monotonicity table as markdown)")
        raise SystemExit(2)
    try:
        table = monotonicity_markdown(load_results(sys.argv[1]).records)
    except ResultsError as err:
        print(f"bench.sanity: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    print(table or "(no degradation records with a clean reference in this run)")
