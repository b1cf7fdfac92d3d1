"""Seeded bootstrap that works on streamed, mergeable state.

A metric cannot keep every item to resample later (state is sums that merge by addition), so it uses
the Poisson bootstrap: replicate ``b`` gives each item a weight ``w_b ~ Poisson(1)`` and accumulates
weighted sums. The weights are a pure function of ``(seed, item key)``, so the same item gets the
same weights in whatever shard, order or rank it is seen, and merged shards equal one pass. For
large N this is equivalent to the multinomial bootstrap (Hanley & MacGibbon 2006; Chamandy et al.
2012). Confidence intervals are percentile intervals of the replicate values.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np


def item_rng(seed: int, key: str, stream: str = "") -> np.random.Generator:
    """A generator seeded by ``(seed, key, stream)`` only (blake2b), independent of order."""
    digest = hashlib.blake2b(f"{seed}\x1f{stream}\x1f{key}".encode(), digest_size=16).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


def poisson_weights(seed: int, key: str, n_replicates: int, stream: str = "") -> np.ndarray:
    """Poisson(1) bootstrap weights ``[n_replicates]`` float64 for one item."""
    return item_rng(seed, key, stream).poisson(1.0, n_replicates).astype(np.float64)


def subset_members(seed: int, key: str, fractions: np.ndarray, stream: str = "subset") -> np.ndarray:
    """1.0 where the item belongs to the nested random subset ``k`` (kept with probability
    ``fractions[k]``), else 0.0. One uniform draw per item makes the subsets nested."""
    u = item_rng(seed, key, stream).random()
    return (u < np.asarray(fractions)).astype(np.float64)


def percentile_interval(replicates: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap replicate values ``[B]`` (non-finite values are an error)."""
    r = np.asarray(replicates, dtype=np.float64)
    if r.size == 0:
        raise ValueError("no bootstrap replicates")
    if not np.all(np.isfinite(r)):
        raise FloatingPointError("a bootstrap replicate is not finite")
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(r, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def bias_corrected_interval(estimate: float, replicates: np.ndarray,
                            confidence: float = 0.95) -> tuple[float, float]:
    """Percentile interval of ``replicates`` shifted by the bootstrap bias ``mean(replicates) -
    estimate``, clipped at 0 (for non-negative statistics such as FAD)."""
    lo, hi = percentile_interval(replicates, confidence)
    bias = float(np.mean(np.asarray(replicates, dtype=np.float64))) - float(estimate)
    return max(0.0, lo - bias), max(0.0, hi - bias)


def bootstrap_ci(values: np.ndarray, statistic: Callable[[np.ndarray], float] = np.mean,
                 n_replicates: int = 1000, confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Classic seeded bootstrap (resampling items with replacement) of ``statistic`` over
    ``values`` ``[N, ...]``, for in-memory use and as a check of the Poisson variant."""
    v = np.asarray(values)
    if len(v) == 0:
        raise ValueError("bootstrap of an empty set")
    rng = np.random.default_rng(seed)
    reps = np.array([statistic(v[rng.integers(0, len(v), len(v))]) for _ in range(n_replicates)])
    return percentile_interval(reps, confidence)


def weighted_mean_replicates(weighted_sums: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Replicate means ``sum_b / weight_b`` ``[B]``; replicates that drew no item are dropped."""
    keep = weights > 0
    return weighted_sums[keep] / weights[keep]
