"""How FAD and KAD move with the number of evaluated clips, on one pair of sets.

``sample_size_curve`` draws nested random subsets of the evaluated clips (``draws`` random orders;
subset ``n`` of a draw is the first ``n`` clips of its order, so the subsets of one draw are nested)
and scores each subset against the *whole* reference set: FAD (Gaussian fits, unbiased covariance)
and KAD (at one fixed bandwidth, so only N changes). FAD is biased upwards at small N (its estimate
of the evaluated covariance is noisy and the trace term cannot cancel the noise); KAD is unbiased, so
its mean over draws stays flat up to noise when rows are independent. Rows here are frame embeddings and
the sampling unit is the clip: frames of one clip are alike, and the share of same-clip pairs in the
within-set term falls as 1/N, so KAD drifts with N as well (most visibly when the sets are close).
``fad_inf`` is fadtk's extrapolation: the least-squares
line of FAD against ``1 / frames`` over every (subset, draw) point; its intercept is FAD-inf.

Why FAD-inf can be negative: the fitted line extrapolates to ``1 / frames = 0``. When the evaluated and
reference sets are close (FAD at full N is mostly its finite-sample bias) the line's intercept can
fall below zero, a value no Frechet distance can take; it says "indistinguishable from the reference
at this N", not "better than the reference". A low R² says the 1/N model does not describe the points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.metrics.functional.frechet import fad_inf_fit, frechet_distance, gaussian_fit
from bench.metrics.functional.kernel import DEFAULT_BLOCK, kernel_audio_distance

NEGATIVE_FAD_INF_NOTE = (
    "FAD-inf < 0: the line of FAD against 1/frames crosses zero before 1/frames = 0. The sets are "
    "indistinguishable at this N (FAD here is mostly finite-sample bias); a negative FAD-inf does not "
    "mean better than the reference. Read it as ~0 and look at R² and the points.")


@dataclass(frozen=True)
class SampleSizeCurve:
    """Scores ``[draws, sizes]`` against subset sizes (clips and frames); FAD-inf fit over all points."""

    n_clips: tuple[int, ...]
    frames: tuple[tuple[int, ...], ...]  # [draws][sizes]
    fad: tuple[tuple[float, ...], ...]
    kad: tuple[tuple[float, ...], ...]
    fad_inf: float | None  # None: fewer than two distinct frame counts
    fad_inf_slope: float | None
    fad_inf_r2: float | None
    bandwidth: float

    def as_dict(self) -> dict:
        out = {k: getattr(self, k) for k in ("n_clips", "frames", "fad", "kad", "bandwidth")}
        out["fad_inf_fit"] = {"intercept": self.fad_inf, "slope": self.fad_inf_slope, "r2": self.fad_inf_r2,
                              "x": "1 / frames"}
        if self.fad_inf is not None and self.fad_inf < 0:
            out["fad_inf_note"] = NEGATIVE_FAD_INF_NOTE
        return {k: [list(r) if isinstance(r, tuple) else r for r in v] if isinstance(v, tuple) else v
                for k, v in out.items()}


def subset_sizes(n_clips: int, fractions: Sequence[float]) -> list[int]:
    """Distinct clip counts ``round(f * n_clips)`` (at least 2, at most ``n_clips``), ascending."""
    return sorted({min(n_clips, max(2, round(f * n_clips))) for f in fractions})


def sample_size_curve(reference: np.ndarray, clips: Sequence[np.ndarray], fractions: Sequence[float],
                      draws: int, bandwidth: float, seed: int = 0,
                      block: int = DEFAULT_BLOCK) -> SampleSizeCurve:
    """FAD and KAD of nested subsets of ``clips`` (each ``[F_i, D]``) against ``reference`` ``[M, D]``.

    ``fractions`` of the clip count give the sizes (``subset_sizes``); ``draws`` random orders
    (seeded by ``seed``). KAD uses the fixed ``bandwidth``."""
    if len(clips) < 2 or draws < 1:
        raise ValueError(f"a sample-size curve needs >= 2 evaluated clips and >= 1 draw; got "
                         f"{len(clips)} clips, {draws} draws")
    ref = np.asarray(reference, dtype=np.float64)
    mu_r, cov_r = gaussian_fit(ref)
    sizes = subset_sizes(len(clips), fractions)
    rng = np.random.default_rng(seed)
    frames, fads, kads = [], [], []
    for _ in range(draws):
        order = rng.permutation(len(clips))
        f_row, fad_row, kad_row = [], [], []
        for n in sizes:
            sub = np.concatenate([np.asarray(clips[i], dtype=np.float64) for i in order[:n]])
            mu, cov = gaussian_fit(sub)
            f_row.append(len(sub))
            fad_row.append(frechet_distance(mu, cov, mu_r, cov_r))
            kad_row.append(kernel_audio_distance(ref, sub, bandwidth=bandwidth, block=block))
        frames.append(tuple(f_row))
        fads.append(tuple(fad_row))
        kads.append(tuple(kad_row))
    flat_n = [f for row in frames for f in row]
    flat_fad = [v for row in fads for v in row]
    inf = slope = r2 = None
    if len(set(flat_n)) >= 2:
        fit = fad_inf_fit(flat_n, flat_fad)
        inf, slope, r2 = fit.value, fit.slope, fit.r2
    return SampleSizeCurve(tuple(sizes), tuple(frames), tuple(fads), tuple(kads), inf, slope, r2,
                           float(bandwidth))
