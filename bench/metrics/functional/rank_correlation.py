"""Rank correlations of many pairs of rows at once (bootstrap replicates): Spearman's rho and
Kendall's tau-b, NaN where a row is constant. Used by the listening test's metric-human agreement and
by the metric-sanity monotonicity table."""

from __future__ import annotations

import numpy as np

#: rows per block of Kendall's pairwise sign arrays (memory [block, n, n])
_CHUNK = 100


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row pair of ``x``, ``y`` ``[B, n]`` (average ranks for ties; NaN
    where a row is constant)."""
    from scipy.stats import rankdata

    rx, ry = rankdata(x, axis=-1), rankdata(y, axis=-1)
    rx -= rx.mean(-1, keepdims=True)
    ry -= ry.mean(-1, keepdims=True)
    den = np.sqrt((rx * rx).sum(-1) * (ry * ry).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (rx * ry).sum(-1) / np.where(den > 0, den, 1.0), np.nan)


def kendall_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall's tau-b of each row pair of ``x``, ``y`` ``[B, n]`` (NaN where a row is constant)."""
    out = np.empty(x.shape[0])
    for start in range(0, x.shape[0], _CHUNK):
        xs, ys = x[start : start + _CHUNK], y[start : start + _CHUNK]
        sx = np.sign(xs[:, :, None] - xs[:, None, :])
        sy = np.sign(ys[:, :, None] - ys[:, None, :])
        num = (sx * sy).sum((1, 2))
        den = np.sqrt(np.abs(sx).sum((1, 2)) * np.abs(sy).sum((1, 2)))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + _CHUNK] = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return out
