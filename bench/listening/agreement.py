"""Per-system scores and metric-human agreement, with bootstrap intervals.

Scores: a system's score on a scale is the mean of its ratings (kept raters, every item). Its 95 %
interval is a two-way bootstrap over raters and items: each replicate draws raters with replacement
and, independently, items with replacement; a rating counts (its rater's draws) x (its item's draws)
times. Percentile intervals (2.5 %, 97.5 %); ``n_boot`` replicates from ``seed``.

System-level agreement: for each metric of ``results.json`` (one per metric name and protocol) that
has a value for at least 3 rated systems, Spearman's rho and Kendall's tau-b between the metric and
the systems' scores. Signs are oriented: a lower-is-better metric (FAD, KL) is negated first, so a
positive correlation always means "the metric's better systems are rated higher". The interval is a
bootstrap over systems, raters and items together (the systems drawn with replacement, their scores
from the two-way replicate above), so it says how far the correlation of so few systems can be
trusted, not only how noisy the raters were. Replicates where either side is constant are dropped
(``valid`` counts the rest). A replicate's means rest on fewer distinct raters and items than the
estimate's, so they are noisier and its correlations lean toward zero: the percentile interval is
re-centred so that the replicates' median sits on the estimate (clipped to [-1, 1]); without that
a strong correlation's interval can lie wholly below the correlation itself.

Clip-level agreement: for each per-clip column of the samples table that is a metric of the run
(e.g. ``clap`` against REL), the rank correlation between the clip's value and its mean rating over
raters, with a bootstrap over raters and clips.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bench.listening.design import SYSTEM
from bench.metrics.functional.rank_correlation import kendall_rows, spearman_rows

N_BOOT = 1000
MIN_SYSTEMS = 3


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float
    n: int  # systems, clips or ratings behind the value
    valid: int = 0  # bootstrap replicates that gave a value


@dataclass(frozen=True)
class Agreement:
    metric: str
    digest: str
    higher_is_better: bool | None  # None: per-clip column with no direction known (raw sign)
    scale: str
    spearman: Estimate
    kendall: Estimate


def _interval(point: float, reps: np.ndarray, n: int, recentre: bool = False) -> Estimate:
    """Percentile interval (2.5 %, 97.5 %) of the finite replicates; ``recentre`` moves it so that the
    replicates' median sits on ``point`` (clipped to [-1, 1]; for correlations, see module docstring)."""
    reps = reps[np.isfinite(reps)]
    if not len(reps) or not np.isfinite(point):
        return Estimate(point, float("nan"), float("nan"), n, len(reps))
    low, high = np.percentile(reps, [2.5, 97.5])
    if recentre:
        shift = point - float(np.median(reps))
        low, high = max(-1.0, low + shift), min(1.0, high + shift)
    return Estimate(point, float(low), float(high), n, len(reps))


def _codes(values: pd.Series) -> tuple[np.ndarray, list[Any]]:
    codes, uniques = pd.factorize(values, sort=True)
    return codes, list(uniques)


def _draws(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """``[n_boot, n]`` counts: how often each of ``n`` units is drawn in each replicate."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)


def group_means(
    frame: pd.DataFrame,
    by: str,
    n_boot: int,
    rng: np.random.Generator,
    over: Sequence[str] = ("rater", "item"),
) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """(groups, point means ``[G]``, bootstrap means ``[n_boot, G]``) of ``frame.score`` by
    ``frame[by]``, resampling the ``over`` columns (crossed; a rating's weight is the product of
    its units' draw counts). NaN where a replicate drew no rating of a group."""
    g, groups = _codes(frame[by])
    scores = frame["score"].to_numpy(float)
    onehot = np.zeros((len(frame), len(groups)))
    onehot[np.arange(len(frame)), g] = 1.0
    point = (scores @ onehot) / onehot.sum(0)
    weights = np.ones((n_boot, len(frame)))
    for col in over:
        codes, units = _codes(frame[col])
        weights *= _draws(rng, len(units), n_boot)[:, codes]
    with np.errstate(invalid="ignore", divide="ignore"):
        reps = ((weights * scores) @ onehot) / (weights @ onehot)
    return groups, point, reps


def system_scores(
    frame: pd.DataFrame, scale: str, n_boot: int = N_BOOT, seed: int = 0
) -> dict[str, Estimate]:
    """Mean score per system (and per hidden reference / anchor) with the two-way interval."""
    part = frame[frame["scale"] == scale]
    if part.empty:
        return {}
    groups, point, reps = group_means(part, "system", n_boot, np.random.default_rng(seed))
    counts = part.groupby("system").size()
    return {str(s): _interval(float(point[i]), reps[:, i], int(counts[s])) for i, s in enumerate(groups)}


def _correlations(
    x: np.ndarray, y_point: np.ndarray, y_reps: np.ndarray, rng: np.random.Generator
) -> tuple[Estimate, Estimate]:
    """Spearman and Kendall of ``x`` ``[n]`` with ``y_point`` ``[n]``; intervals from ``y_reps``
    ``[B, n]`` with the n units drawn with replacement in each replicate."""
    n = len(x)
    idx = rng.integers(0, n, size=y_reps.shape)
    xs = x[idx]
    ys = np.take_along_axis(y_reps, idx, axis=1)
    bad = ~np.isfinite(ys).all(1)
    ys[bad] = 0.0  # dropped below
    rho, tau = spearman_rows(xs, ys), kendall_rows(xs, ys)
    rho[bad] = tau[bad] = np.nan
    return (
        _interval(float(spearman_rows(x[None], y_point[None])[0]), rho, n, recentre=True),
        _interval(float(kendall_rows(x[None], y_point[None])[0]), tau, n, recentre=True),
    )


def system_agreement(
    frame: pd.DataFrame, records: Sequence[Any], scale: str, n_boot: int = N_BOOT, seed: int = 0
) -> list[Agreement]:
    """Every metric (``bench.run_results.Record`` groups by name and protocol) against the systems'
    scores on ``scale`` (module docstring)."""
    part = frame[(frame["scale"] == scale) & (frame["kind"] == SYSTEM)]
    if part.empty:
        return []
    systems, point, reps = group_means(part, "system", n_boot, np.random.default_rng(seed))
    out = []
    groups: dict[tuple[str, str], list[Any]] = {}
    for r in records:
        groups.setdefault((r.metric, r.digest), []).append(r)
    for (metric, digest), recs in groups.items():
        value = {r.generator: r.value for r in recs if np.isfinite(r.value)}
        have = [i for i, s in enumerate(systems) if s in value]
        if len(have) < MIN_SYSTEMS:
            continue
        hib = recs[0].higher_is_better
        x = np.array([value[systems[i]] for i in have]) * (1.0 if hib else -1.0)
        rng = np.random.default_rng([seed, len(out)])
        rho, tau = _correlations(x, point[have], reps[:, have], rng)
        out.append(Agreement(metric, digest, hib, scale, rho, tau))
    return out


def clip_agreement(
    frame: pd.DataFrame,
    samples: pd.DataFrame | None,
    records: Sequence[Any],
    scale: str,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> list[Agreement]:
    """Per-clip metric columns of ``samples`` (named like a metric of ``records``) against each
    clip's mean rating on ``scale``, with a bootstrap over raters and clips."""
    part = frame[(frame["scale"] == scale) & (frame["kind"] == SYSTEM)]
    if part.empty or samples is None:
        return []
    directions = {}
    for r in records:
        directions.setdefault(r.metric, r.higher_is_better)
    columns = [c for c in samples.columns if c in directions and pd.api.types.is_numeric_dtype(samples[c])]
    if not columns:
        return []
    stimuli, point, reps = group_means(part, "stimulus", n_boot, np.random.default_rng(seed), over=("rater",))
    first = part.drop_duplicates("stimulus").set_index("stimulus")
    seeds = samples["seed"] if "seed" in samples.columns else pd.Series([None] * len(samples))
    lookup = {
        (str(g), str(p), None if s is None or s != s else int(s)): i
        for i, (g, p, s) in enumerate(zip(samples["generator"], samples["prompt_id"], seeds))
    }
    rows = [
        lookup.get(
            (
                str(first.at[s, "system"]),
                str(first.at[s, "prompt_id"]),
                None
                if first.at[s, "seed"] is None or first.at[s, "seed"] != first.at[s, "seed"]
                else int(first.at[s, "seed"]),
            )
        )
        for s in stimuli
    ]
    out = []
    for col in columns:
        have = [i for i, row in enumerate(rows) if row is not None and np.isfinite(samples[col].iloc[row])]
        if len(have) < MIN_SYSTEMS:
            continue
        hib = directions[col]
        x = samples[col].iloc[[rows[i] for i in have]].to_numpy(float) * (1.0 if hib else -1.0)
        rng = np.random.default_rng([seed, 1000 + len(out)])
        rho, tau = _correlations(x, point[have], reps[:, have], rng)
        out.append(Agreement(col, "per-clip", hib, scale, rho, tau))
    return out
