"""Frechet distance between Gaussians, Gaussian fits from streamed sums, FAD-inf and per-sample FAD.

All arithmetic is float64. The matrix square root goes through symmetric eigendecompositions:
``tr sqrt(A B) = tr sqrt(A^1/2 B A^1/2)`` and ``A^1/2 B A^1/2`` is symmetric positive semi-definite,
so ``eigh`` gives its eigenvalues without the complex round-off ``scipy.linalg.sqrtm`` can produce.

A Gaussian is fitted from sufficient statistics (``count``, ``sum`` ``[D]``, ``sum of outer
products`` ``[D, D]``) that merge by addition; the covariance is the unbiased one (``n - 1``), as
fadtk and torchmetrics use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: eigenvalues below ``-NEGATIVE_EIG_TOL * max eigenvalue`` mean the matrix is not a covariance
NEGATIVE_EIG_TOL = 1e-8
#: relative eigenvalue under which a covariance is reported rank deficient
RANK_TOL = 1e-12


@dataclass(frozen=True)
class FrechetDetails:
    """The distance and how it was obtained.

    ``regularised``: ``eps * I`` was added to both covariances because a plain computation failed
    (an eigendecomposition did not converge, a covariance was not positive semi-definite beyond
    round-off, or the result was not finite). ``rank_deficient``: a covariance had (relative)
    eigenvalues under ``RANK_TOL`` (e.g. fewer frames than dimensions); the value is still the exact
    limit of the regularised one as ``eps -> 0`` because the eigen route needs no inverse.
    """

    value: float
    regularised: bool
    eps: float
    rank_deficient: bool
    mean_term: float
    trace_term: float


def _sym(a: np.ndarray) -> np.ndarray:
    return 0.5 * (a + a.T)


def _check_gaussian(mu: np.ndarray, cov: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    mu = np.asarray(mu, dtype=np.float64).reshape(-1)
    cov = np.atleast_2d(np.asarray(cov, dtype=np.float64))
    if cov.shape != (mu.size, mu.size):
        raise ValueError(f"{name}: covariance shape {cov.shape} does not match mean of dim {mu.size}")
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(cov))):
        raise ValueError(f"{name}: mean or covariance contains NaN or inf")
    return mu, _sym(cov)


def _trace_sqrt_product(cov_a: np.ndarray, cov_b: np.ndarray) -> tuple[float, float]:
    """``tr sqrt(A B)`` and the most negative relative eigenvalue met (for PSD checks)."""
    wa, va = np.linalg.eigh(cov_a)
    wb = np.linalg.eigvalsh(cov_b)
    sa = (va * np.sqrt(np.clip(wa, 0.0, None))) @ va.T
    m = _sym(sa @ cov_b @ sa)
    wm = np.linalg.eigvalsh(m)
    scale = max(float(np.max(np.abs(wa))), float(np.max(np.abs(wb))), 1e-300)
    worst = min(float(wa.min()), float(wb.min())) / scale
    return float(np.sum(np.sqrt(np.clip(wm, 0.0, None)))), worst


def frechet_details(mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray,
                    eps: float = 1e-6) -> FrechetDetails:
    """Frechet distance ``|mu_a - mu_b|^2 + tr(A) + tr(B) - 2 tr sqrt(A B)`` with diagnostics.

    ``mu_*``: ``[D]``; ``cov_*``: ``[D, D]``. ``eps`` is only used when a plain computation fails
    (then ``regularised`` is True and the value is that of ``A + eps I``, ``B + eps I``).
    """
    mu_a, cov_a = _check_gaussian(mu_a, cov_a, "gaussian a")
    mu_b, cov_b = _check_gaussian(mu_b, cov_b, "gaussian b")
    if mu_a.shape != mu_b.shape:
        raise ValueError(f"dimension mismatch: {mu_a.size} vs {mu_b.size}")
    diff = mu_a - mu_b
    mean_term = float(diff @ diff)
    regularised = False
    try:
        tr_sqrt, worst = _trace_sqrt_product(cov_a, cov_b)
        ok = np.isfinite(tr_sqrt) and worst >= -NEGATIVE_EIG_TOL
    except np.linalg.LinAlgError:
        ok, worst = False, -np.inf
    if not ok:
        regularised = True
        eye = np.eye(mu_a.size)
        cov_a, cov_b = cov_a + eps * eye, cov_b + eps * eye
        tr_sqrt, _ = _trace_sqrt_product(cov_a, cov_b)
        if not np.isfinite(tr_sqrt):
            raise FloatingPointError(f"Frechet distance is not finite even with eps={eps}")
    trace_term = float(np.trace(cov_a) + np.trace(cov_b) - 2.0 * tr_sqrt)
    value = mean_term + trace_term
    return FrechetDetails(value=float(value), regularised=regularised, eps=eps if regularised else 0.0,
                          rank_deficient=bool(worst < RANK_TOL), mean_term=mean_term,
                          trace_term=trace_term)


def frechet_distance(mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray) -> float:
    """Frechet distance between ``N(mu_a, cov_a)`` and ``N(mu_b, cov_b)`` (float64; see
    ``frechet_details`` for whether regularisation was needed)."""
    return frechet_details(mu_a, cov_a, mu_b, cov_b).value


def gaussian_sums(x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Sufficient statistics of frames ``x`` ``[F, D]``: ``(count, sum [D], sum of x x^T [D, D])``."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be [F, D]; got shape {x.shape}")
    return float(x.shape[0]), x.sum(axis=0), x.T @ x


def gaussian_from_sums(count: float, total: np.ndarray, outer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[D]`` and unbiased covariance ``[D, D]`` from streamed sums (needs ``count >= 2``)."""
    if count < 2:
        raise ValueError(f"a Gaussian fit needs at least 2 embedding frames; got {count:g}")
    mu = total / count
    cov = (outer - count * np.outer(mu, mu)) / (count - 1.0)
    return mu, _sym(cov)


def gaussian_fit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of frames ``x`` ``[F, D]`` (float64)."""
    return gaussian_from_sums(*gaussian_sums(x))


@dataclass(frozen=True)
class FadInf:
    """Linear fit ``FAD(n) = slope / n + value`` over subset sizes; ``value`` is FAD-inf."""

    value: float
    slope: float
    r2: float
    ns: tuple[float, ...]
    fads: tuple[float, ...]


def fad_inf_fit(ns: Sequence[float], fads: Sequence[float]) -> FadInf:
    """Least-squares line of FAD against ``1 / n``; the intercept extrapolates to infinitely many
    frames (fadtk's FAD-inf). Needs at least two distinct ``n``."""
    n = np.asarray(ns, dtype=np.float64)
    y = np.asarray(fads, dtype=np.float64)
    if n.size != y.size or np.unique(n).size < 2:
        raise ValueError(f"FAD-inf needs >= 2 distinct subset sizes; got {n.tolist()}")
    x = 1.0 / n
    slope, intercept = np.polyfit(x, y, 1)
    pred = slope * x + intercept
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum((y - pred) ** 2)) / ss_tot if ss_tot > 0 else 1.0
    return FadInf(float(intercept), float(slope), r2, tuple(n.tolist()), tuple(y.tolist()))


def fad_inf_from_embeddings(x_eval: np.ndarray, mu_ref: np.ndarray, cov_ref: np.ndarray,
                            ns: Sequence[int], seed: int = 0) -> FadInf:
    """fadtk's procedure on in-memory frames: for each ``n`` draw ``n`` frames of ``x_eval``
    ``[F, D]`` without replacement, compute FAD to the reference Gaussian, fit against ``1 / n``."""
    rng = np.random.default_rng(seed)
    fads = []
    for n in ns:
        if n > len(x_eval) or n < 2:
            raise ValueError(f"subset size {n} outside [2, {len(x_eval)}]")
        idx = rng.choice(len(x_eval), size=int(n), replace=False)
        mu, cov = gaussian_fit(x_eval[idx])
        fads.append(frechet_distance(mu, cov, mu_ref, cov_ref))
    return fad_inf_fit([float(n) for n in ns], fads)


def per_sample_fad(x_clip: np.ndarray, mu_ref: np.ndarray, cov_ref: np.ndarray) -> float:
    """FAD of one clip's frames ``[F, D]`` (F >= 2) against the reference Gaussian (fadtk's
    per-song score)."""
    mu, cov = gaussian_fit(x_clip)
    return frechet_distance(mu, cov, mu_ref, cov_ref)
