"""Kernel Audio Distance (Chung et al. 2025, arXiv 2502.15602): an unbiased MMD² with a Gaussian kernel.

Conventions (those of the authors' toolkit ``kadtk``, ``kadtk/kad.py``; our own code):

- ``KAD = 100 * MMD²_u`` with the unbiased estimator::

      MMD²_u = sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (n (n - 1))
               - 2 * sum_{i, j} k(x_i, y_j) / (m n)

  The within-set sums leave out ``i == j`` only; the cross term averages all ``m * n`` pairs. There is
  no clamp at zero: two samples of one distribution give values around 0, some of them negative.
- Gaussian kernel ``k(a, b) = exp(-|a - b|² / (2 σ²))``. kadtk adds ``1e-8`` to ``2 σ²``; we do not
  (the difference is below 1e-8 relative for any σ of an audio embedding).
- ``σ`` (``bandwidth``) by default: the median of the Euclidean distances between distinct pairs of the
  *reference* set ``x`` (each unordered pair once, as ``torch.pdist``), and for an even number of pairs
  the lower of the two middle values (``torch.median``'s convention).
- ``x`` is the reference set, ``y`` the evaluated set; both ``[N, D]`` (frame embeddings, one row each).

Everything is float64 and computed in blocks of ``block`` rows, so memory stays O(block²) (plus the
inputs) for 10k+ rows; the result does not depend on ``block`` beyond round-off (about 1e-13). The
exact median is found the same way: a histogram pass over the pair distances narrows the rank to one
bin, whose few values are then collected and selected (``median_pair_distance``).

Weighted form (``kernel_sums`` with ``weights``): replicate ``b`` gives row ``i`` a weight ``w[b, i]``
(the Poisson bootstrap of ``bench.metrics.functional.bootstrap``, one weight per clip repeated over its
frames); the within-set term becomes ``sum_{i != j} w_i w_j k_ij / sum_{i != j} w_i w_j`` and the cross
term ``sum w_i v_j k_ij / (sum w_i sum v_j)``. All weights 1 give the estimator above.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: KAD is MMD² times this (kadtk's SCALE_FACTOR)
KAD_SCALE = 100.0
DEFAULT_BLOCK = 1024
#: below this many pairs the median is taken from all distances at once
_DIRECT_PAIRS = 2_000_000


def _as_rows(x: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name}: embeddings must be [N, D]; got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: embeddings contain NaN or inf")
    return a


def _sq_dists(a: np.ndarray, b: np.ndarray, a_sq: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances ``[len(a), len(b)]`` (clipped at 0 against round-off)."""
    d2 = a_sq[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d2, 0.0, out=d2)


def _pair_blocks(x: np.ndarray, block: int):
    """Yield ``(i0, j0, d2)`` for the blocks of distinct pairs ``i < j`` of ``x`` (upper triangle;
    in the diagonal blocks entries with ``j <= i`` are NaN)."""
    sq = np.einsum("ij,ij->i", x, x)
    n = len(x)
    for i0 in range(0, n, block):
        for j0 in range(i0, n, block):
            d2 = _sq_dists(x[i0:i0 + block], x[j0:j0 + block], sq[i0:i0 + block], sq[j0:j0 + block])
            if i0 == j0:
                d2[np.tril_indices(len(d2), 0, d2.shape[1])] = np.nan
            yield i0, j0, d2


def median_pair_distance(x: np.ndarray, block: int = DEFAULT_BLOCK) -> float:
    """Median Euclidean distance over distinct pairs of ``x`` ``[N, D]`` (N >= 2), the lower middle
    value for an even number of pairs (as ``torch.median(torch.pdist(x))``). Exact, O(block²) memory."""
    x = _as_rows(x, "median_pair_distance")
    n = len(x)
    if n < 2:
        raise ValueError(f"the median pair distance needs at least 2 rows; got {n}")
    pairs = n * (n - 1) // 2
    rank = (pairs - 1) // 2  # 0-based rank of the lower middle value
    if pairs <= _DIRECT_PAIRS:
        d2 = np.concatenate([b[np.isfinite(b)] for _, _, b in _pair_blocks(x, max(block, n))])
        return float(np.sqrt(np.partition(d2, rank)[rank]))
    lo, hi = np.inf, -np.inf  # pass 1: range of squared distances
    for _, _, d2 in _pair_blocks(x, block):
        lo, hi = min(lo, float(np.nanmin(d2))), max(hi, float(np.nanmax(d2)))
    below, closed = 0, True  # pairs known to lie under ``lo``; whether ``hi`` is in the range
    while True:  # narrow [lo, hi] to one histogram bin holding the rank, then select in it
        if hi <= lo:
            return float(np.sqrt(lo))
        edges = np.linspace(lo, hi, 4097)
        counts = np.zeros(4096, dtype=np.int64)
        for _, _, d2 in _pair_blocks(x, block):
            counts += np.histogram(_within_range(d2, lo, hi, closed), bins=edges)[0]
        cum = below + np.cumsum(counts)
        k = int(np.searchsorted(cum, rank + 1))
        below = int(cum[k - 1]) if k > 0 else below
        lo, hi, closed = float(edges[k]), float(edges[k + 1]), closed and k == len(counts) - 1
        if counts[k] <= _DIRECT_PAIRS:
            v = np.concatenate([_within_range(d2, lo, hi, closed) for _, _, d2 in _pair_blocks(x, block)])
            return float(np.sqrt(np.partition(v, rank - below)[rank - below]))


def _within_range(d2: np.ndarray, lo: float, hi: float, closed: bool) -> np.ndarray:
    """The finite entries of ``d2`` in ``[lo, hi]`` (``closed``) or ``[lo, hi)``."""
    v = d2[np.isfinite(d2)]
    return v[(v >= lo) & ((v <= hi) if closed else (v < hi))]


@dataclass(frozen=True)
class KernelSums:
    """Kernel sums of one (x, y) pair: ``xx``, ``yy`` over ``i != j``, ``xy`` over all pairs, each
    ``[B]`` (one per weight replicate; ``B = 1`` unweighted), with their normalisers."""

    xx: np.ndarray
    yy: np.ndarray
    xy: np.ndarray
    norm_xx: np.ndarray
    norm_yy: np.ndarray
    norm_xy: np.ndarray

    def kad(self) -> np.ndarray:
        """``100 * MMD²_u`` per replicate ``[B]``."""
        return KAD_SCALE * (self.xx / self.norm_xx + self.yy / self.norm_yy - 2.0 * self.xy / self.norm_xy)


def _within(x: np.ndarray, gamma: float, w: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """``sum_{i != j} w_i w_j k_ij`` ``[B]`` and ``sum_{i != j} w_i w_j`` ``[B]`` for ``w`` ``[B, N]``."""
    total = np.zeros(len(w))
    for i0, j0, d2 in _pair_blocks(x, block):
        k = np.exp(-gamma * d2)
        k[np.isnan(k)] = 0.0  # i >= j inside a diagonal block
        wi, wj = w[:, i0:i0 + k.shape[0]], w[:, j0:j0 + k.shape[1]]
        total += 2.0 * np.einsum("bi,bi->b", wi @ k, wj) if len(w) > 1 else 2.0 * (wi @ k @ wj[0])
    s = w.sum(axis=1)
    return total, s * s - np.einsum("bi,bi->b", w, w)


def kernel_sums(x: np.ndarray, y: np.ndarray, bandwidth: float, block: int = DEFAULT_BLOCK,
                wx: np.ndarray | None = None, wy: np.ndarray | None = None) -> KernelSums:
    """Blocked Gaussian-kernel sums of reference ``x`` ``[M, D]`` and evaluated ``y`` ``[N, D]`` at
    bandwidth ``σ``; ``wx`` ``[B, M]`` / ``wy`` ``[B, N]`` are optional row weights (see module doc)."""
    x, y = _as_rows(x, "reference"), _as_rows(y, "evaluated")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"dimension mismatch: reference D={x.shape[1]}, evaluated D={y.shape[1]}")
    if not (np.isfinite(bandwidth) and bandwidth > 0):
        raise ValueError(f"kernel bandwidth must be a positive number; got {bandwidth}")
    if block < 1:
        raise ValueError(f"block must be >= 1; got {block}")
    wx = np.ones((1, len(x))) if wx is None else np.atleast_2d(np.asarray(wx, dtype=np.float64))
    wy = np.ones((1, len(y))) if wy is None else np.atleast_2d(np.asarray(wy, dtype=np.float64))
    if wx.shape[1] != len(x) or wy.shape[1] != len(y) or len(wx) != len(wy):
        raise ValueError(f"weights {wx.shape}, {wy.shape} do not match rows {len(x)}, {len(y)}")
    gamma = 1.0 / (2.0 * bandwidth * bandwidth)
    xx, nxx = _within(x, gamma, wx, block)
    yy, nyy = _within(y, gamma, wy, block)
    xy = np.zeros(len(wx))
    x_sq, y_sq = np.einsum("ij,ij->i", x, x), np.einsum("ij,ij->i", y, y)
    for i0 in range(0, len(x), block):
        for j0 in range(0, len(y), block):
            k = np.exp(-gamma * _sq_dists(x[i0:i0 + block], y[j0:j0 + block], x_sq[i0:i0 + block],
                                          y_sq[j0:j0 + block]))
            wi, wj = wx[:, i0:i0 + k.shape[0]], wy[:, j0:j0 + k.shape[1]]
            xy += np.einsum("bi,bi->b", wi @ k, wj) if len(wx) > 1 else wi @ k @ wj[0]
    return KernelSums(xx, yy, xy, nxx, nyy, wx.sum(axis=1) * wy.sum(axis=1))


def kernel_audio_distance(x: np.ndarray, y: np.ndarray, bandwidth: float | None = None,
                          block: int = DEFAULT_BLOCK) -> float:
    """KAD between reference embeddings ``x`` ``[M, D]`` and evaluated embeddings ``y`` ``[N, D]``
    (M, N >= 2): ``100 * MMD²_u`` with a Gaussian kernel; ``bandwidth`` None = the median distance
    between distinct pairs of ``x`` (see the module docstring). Unitless; may be negative."""
    x, y = _as_rows(x, "reference"), _as_rows(y, "evaluated")
    if len(x) < 2 or len(y) < 2:
        raise ValueError(f"KAD needs at least 2 rows in each set; got {len(x)} and {len(y)}")
    sigma = median_pair_distance(x, block) if bandwidth is None else float(bandwidth)
    if sigma <= 0:
        raise ValueError("KAD: the median pair distance of the reference set is 0 (identical rows); "
                         "pass a fixed bandwidth")
    return float(kernel_sums(x, y, sigma, block).kad()[0])
