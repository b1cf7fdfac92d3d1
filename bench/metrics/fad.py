"""Frechet Audio Distance from streamed sums, with a Poisson bootstrap interval and FAD-inf.

State (float64, merges by addition; ``D`` is fixed by the first update):
- ``{ref,gen}.n``, ``.sum`` ``[D]``, ``.outer`` ``[D, D]``: frame count and sums of the embedding
  frames of every reference / generated clip (never the embeddings themselves);
- ``{ref,gen}.boot_*``: the same sums per bootstrap replicate, each clip weighted by its Poisson(1)
  weight (a function of seed and clip id only);
- ``sub.*``: generated sums restricted to nested random clip subsets kept with probability
  ``fad_inf_fractions[k]``; FAD of each subset against the full reference, fitted against
  ``1 / frames`` (fadtk's FAD-inf, with clips instead of single frames as the sampling unit).

Interval: resampling both sets inflates FAD (a resampled Gaussian fit is further from the other set),
so the plain percentile interval of the replicates can lie wholly above the estimate (seen: 4.5 with
[56, 595] for the reference control at n = 30). The interval reported is the percentile interval
shifted by the bootstrap estimate of that bias, ``mean(replicates) - estimate``, and clipped at 0.

The reference set is every item's reference clip as the runner passes it (a prompt seen with several
seeds contributes its reference once per item). Memory: about ``(2 B + S + 2) D^2 * 8`` bytes, 7 MB
for VGGish (D = 128) with the defaults. Per-song FAD (``per_song``, fadtk's
``score_individual``: the Gaussian of one clip's frames alone against the reference Gaussian,
``functional.per_sample_fad``) needs the whole reference set, so each clip's generated frames are kept
(float32, a few kB per clip) and scored in ``late_values`` once the states are merged; a clip with
fewer than 2 frames gets no value.

``reference_stats``: a ``bench stats`` file whose sums stand for the reference set (its embedder
protocol must match the embedder in use; ``bench.stats``). The reference is then fixed: the bootstrap
interval resamples generated clips only, and the record's protocol says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from bench.api import MetricInfo, MetricItem, MetricResult
from bench.metrics.base import BaseMetric, EmbedderParams, item_key
from bench.metrics.functional.bootstrap import bias_corrected_interval, poisson_weights, subset_members
from bench.metrics.functional.frechet import (
    fad_inf_fit,
    frechet_details,
    gaussian_from_sums,
    gaussian_sums,
    per_sample_fad,
)


class FADParams(EmbedderParams):
    embedder: str = "vggish"
    #: a ``bench stats`` file: its sums stand for the reference set (reference clips are then unused)
    reference_stats: Path | None = None
    #: per-song FAD (fadtk's per-song score) of each generated clip in the per-sample table
    per_song: bool = True
    n_bootstrap: int = 50
    fad_inf_fractions: tuple[float, ...] = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


class FrechetAudioDistance(BaseMetric):
    """FAD between the reference and generated sets on one embedder's frame embeddings."""

    Params = FADParams

    def __init__(self, params: FADParams | None = None) -> None:
        super().__init__(params)
        self.dim: int | None = None
        self._songs: dict[tuple[str, int], np.ndarray] = {}  # generated frames per item, for per-song FAD
        self._stats: Any = None  # bench.stats.EmbedderStats when reference_stats is set

    def check(self) -> list[str]:
        from bench.stats import stats_problems

        path = self.params.reference_stats
        return [] if path is None else stats_problems(path, self.params.embedder)

    def bind_embedder(self, name: str, protocol: Mapping[str, Any]) -> None:
        """Also refuses a statistics file made with another protocol of this embedder."""
        super().bind_embedder(name, protocol)
        if self.params.reference_stats is not None and name == self.params.embedder:
            from bench.stats import bind_reference_stats

            self._stats = bind_reference_stats(self.params.reference_stats, name, protocol)

    def _init_dim(self, dim: int) -> None:
        if self.dim is None and "gen.sum" in self.state:  # shaped by a merge
            self.dim = self.state["gen.sum"].shape[0]
        if self.dim is not None:
            if dim != self.dim:
                raise ValueError(f"FAD: embedding dim {dim} differs from the first item's {self.dim}")
            return
        self.dim = dim
        b, s = self.params.n_bootstrap, len(self.params.fad_inf_fractions)
        for side in ("ref", "gen"):
            self.add_state(f"{side}.n")
            self.add_state(f"{side}.sum", (dim,))
            self.add_state(f"{side}.outer", (dim, dim))
            self.add_state(f"{side}.boot_n", (b,))
            self.add_state(f"{side}.boot_sum", (b, dim))
            self.add_state(f"{side}.boot_outer", (b, dim, dim))
        self.add_state("sub.n", (s,))
        self.add_state("sub.sum", (s, dim))
        self.add_state("sub.outer", (s, dim, dim))
        self.add_state("n_items")

    def _add(self, side: str, key: str, frames: np.ndarray) -> None:
        frames = np.asarray(frames)
        if frames.ndim != 2 or frames.shape[0] == 0:
            raise ValueError(f"FAD: {side} embeddings of {key!r} must be [F >= 1, D]; got {frames.shape}")
        if not np.all(np.isfinite(frames)):
            raise ValueError(f"FAD: {side} embeddings of {key!r} contain NaN or inf")
        self._init_dim(frames.shape[1])
        n, s, o = gaussian_sums(frames)
        self.state[f"{side}.n"] += n
        self.state[f"{side}.sum"] += s
        self.state[f"{side}.outer"] += o
        if self.params.n_bootstrap:
            w = poisson_weights(self.params.seed, key, self.params.n_bootstrap, stream=side)
            self.state[f"{side}.boot_n"] += w * n
            self.state[f"{side}.boot_sum"] += w[:, None] * s
            boot_outer = self.state[f"{side}.boot_outer"]
            for b in np.flatnonzero(w):  # in place; about 37 % of Poisson(1) weights are 0
                boot_outer[b] += w[b] * o
        if side == "gen":
            m = subset_members(self.params.seed, key, np.asarray(self.params.fad_inf_fractions))
            self.state["sub.n"] += m * n
            self.state["sub.sum"] += m[:, None] * s
            for k in np.flatnonzero(m):
                self.state["sub.outer"][k] += o

    def update(self, item: MetricItem, features: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        if not self.accept(item, check_reference=True):
            return
        key = item_key(item)
        generated = self.features_of(features, item)["generated"]
        self._add("gen", key, generated)
        if self.params.per_song:
            self._songs[(item.prompt.id, item.generated.seed)] = np.asarray(generated, np.float32)
        reference = features[self.params.embedder].get("reference")
        if reference is not None and self.params.reference_stats is None:
            self._add("ref", item.prompt.id + "#ref#" + key, reference)
        self.state["n_items"] += 1.0

    def infos(self) -> list[MetricInfo]:
        proto = {**self.base_protocol(), "statistic": "Frechet distance of Gaussian fits (unbiased cov)",
                 "fad_inf": "linear fit over nested random clip subsets vs 1/frames",
                 "interval": "Poisson bootstrap percentile interval shifted by the bootstrap bias "
                             "(mean replicate - estimate), clipped at 0"}
        if self.params.reference_stats is not None:
            proto["reference"] = self._reference_protocol()
        return [MetricInfo(f"fad_{self.params.embedder}", higher_is_better=False, protocol=proto),
                MetricInfo(f"fad_inf_{self.params.embedder}", higher_is_better=False, protocol=proto),
                MetricInfo(f"fad_per_song_{self.params.embedder}", higher_is_better=False,
                           protocol={**proto, "statistic": "Frechet distance of one clip's frames' Gaussian "
                                     "to the reference Gaussian (fadtk per-song score); needs >= 2 frames"})]

    def _reference_protocol(self) -> dict[str, Any]:
        from bench.files import file_digest

        path = self.params.reference_stats
        assert path is not None
        return {"statistics_file": str(path), "sha256": file_digest(path),
                "n_clips": None if self._stats is None else self._stats.n_clips,
                "bootstrap": "reference fixed (statistics file); the interval resamples generated clips only"}

    def _use_reference_stats(self) -> None:
        """Put the statistics file's sums in the reference state (every bootstrap replicate too)."""
        if self._stats is None:
            from bench.stats import read_stats

            assert self.params.reference_stats is not None
            self._stats = read_stats(self.params.reference_stats).get(self.params.embedder)
        st = self._stats
        self._init_dim(st.total.shape[0])
        self.state["ref.n"] = np.array(st.n, dtype=np.float64)
        self.state["ref.sum"] = st.total.copy()
        self.state["ref.outer"] = st.outer.copy()
        b = self.params.n_bootstrap
        self.state["ref.boot_n"] = np.full(b, st.n)
        self.state["ref.boot_sum"] = np.repeat(st.total[None], b, axis=0)
        self.state["ref.boot_outer"] = np.repeat(st.outer[None], b, axis=0)

    def late_values(self) -> dict[tuple[str, int], dict[str, float]]:
        """Per-song FAD of each clip this process updated, against the whole reference set."""
        if not self.params.per_song or not self._songs:
            return {}
        if self.params.reference_stats is not None:
            self._use_reference_stats()
        if float(self.state.get("ref.n", 0.0)) < 2:
            return {}
        mu_r, cov_r = self._fit("ref")
        column = f"fad_per_song_{self.params.embedder}"
        return {key: {column: per_sample_fad(frames.astype(np.float64), mu_r, cov_r)}
                for key, frames in self._songs.items() if len(frames) >= 2}

    def _fit(self, side: str, idx: int | None = None, prefix: str = "") -> tuple[np.ndarray, np.ndarray]:
        st = self.state
        if idx is None:
            return gaussian_from_sums(float(st[f"{side}.{prefix}n"]), st[f"{side}.{prefix}sum"],
                                      st[f"{side}.{prefix}outer"])
        return gaussian_from_sums(float(st[f"{side}.{prefix}n"][idx]), st[f"{side}.{prefix}sum"][idx],
                                  st[f"{side}.{prefix}outer"][idx])

    def compute(self) -> dict[str, MetricResult]:
        if self.params.reference_stats is not None:
            self._use_reference_stats()
        if self.dim is None and "gen.n" in self.state:
            self.dim = self.state["gen.sum"].shape[0]
        if self.dim is None or float(self.state["gen.n"]) < 2 or float(self.state["ref.n"]) < 2:
            raise ValueError("FAD needs at least 2 embedding frames in both the reference and the "
                             f"generated set ({int(self.state['n_flagged'])} clips flagged)")
        mu_r, cov_r = self._fit("ref")
        mu_g, cov_g = self._fit("gen")
        det = frechet_details(mu_r, cov_r, mu_g, cov_g)
        lo = hi = None
        if self.params.n_bootstrap:
            reps = []
            for b in range(self.params.n_bootstrap):
                if min(self.state["ref.boot_n"][b], self.state["gen.boot_n"][b]) < 2:
                    continue
                reps.append(frechet_distance_of(self._fit("ref", b, "boot_"), self._fit("gen", b, "boot_")))
            if reps:  # tiny sets can leave every replicate with < 2 frames: no interval then
                lo, hi = bias_corrected_interval(det.value, np.asarray(reps), self.params.confidence)
        n = int(self.state["n_items"])
        extra = {**self.extra(), "regularised": det.regularised, "eps": det.eps,
                 "rank_deficient": det.rank_deficient, "mean_term": det.mean_term,
                 "trace_term": det.trace_term, "frames_reference": int(self.state["ref.n"]),
                 "frames_generated": int(self.state["gen.n"])}
        out = {f"fad_{self.params.embedder}": MetricResult(det.value, n, lo, hi, extra)}
        ns, fads = [], []
        for k in range(len(self.params.fad_inf_fractions)):
            if self.state["sub.n"][k] >= 2 and (not ns or self.state["sub.n"][k] not in ns):
                ns.append(float(self.state["sub.n"][k]))
                fads.append(frechet_distance_of(self._fit("sub", k, ""), (mu_r, cov_r)))
        if len(ns) >= 2:
            inf = fad_inf_fit(ns, fads)
            out[f"fad_inf_{self.params.embedder}"] = MetricResult(
                inf.value, n, extra={"slope": inf.slope, "r2": inf.r2, "frames": list(inf.ns),
                                     "fads": list(inf.fads)})
        return out


def frechet_distance_of(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    return frechet_details(a[0], a[1], b[0], b[1]).value
