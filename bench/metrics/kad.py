"""Kernel Audio Distance on any registered embedder, with a bootstrap interval and a sample-size study.

Value: ``bench.metrics.functional.kernel_audio_distance`` (kadtk's conventions: 100 x unbiased MMD²,
Gaussian kernel, bandwidth = median distance between distinct pairs of the reference frames unless
``bandwidth`` is given; it can be negative). Frames of every clip are the rows (as kadtk, which
concatenates every frame embedding of a set). The bandwidth used is recorded in the protocol.

State. An unbiased MMD² cannot be computed from sums that add, so this metric's state is the
embeddings themselves: ``gathered["gen"][item key]`` and ``gathered["ref"][prompt id]``, float64
``[F, D]``, one entry per clip. ``merge`` (shards) and ``bench.distributed.World.reduce_metric``
(torchrun ranks, through ``all_gather_object``) take the union of the entries; ``compute`` orders
them by key, so the value does not depend on how the items were split. The additive counters
(``n_items``, ``n_flagged``) stay in ``state`` as in every metric. Memory: 8 * D bytes per frame.

The reference set holds each prompt's reference clip once (deduplicated by prompt id), unlike FAD's
streamed sums which count it once per item: a duplicated row would add ``k = 1`` pairs to the within
set term. A prompt whose reference arrives twice with different embeddings is an error.

Interval: Poisson bootstrap as FAD's (each clip weighted by Poisson(1) weights that depend only on the
seed and the clip's key, ``stream`` "gen" / "ref"), through the weighted U-statistic of
``functional.kernel``; the percentile interval of the replicates shifted by their bias (mean
replicate - estimate), not clipped (KAD may be negative). Replicates are kept in the record's
``details`` (``extra["replicates"]``), and so are *paired* ones (``extra["paired_replicates"]``: one
weight per prompt id for its reference and generated clips, as FAD's), which analyses comparing
generators on one prompt set use (``bench.sanity``).

Sample size (``sample_size_draws > 0``): FAD and KAD of nested random subsets of the generated clips
against the whole reference set, several draws, with FAD-inf's fit (``functional.sample_size``), in
``extra["sample_size"]`` (a record's ``details["sample_size"]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import Field

from bench.api import MetricInfo, MetricItem, MetricResult
from bench.metrics.base import BaseMetric, EmbedderParams, item_key
from bench.metrics.functional.bootstrap import percentile_interval, poisson_weights
from bench.metrics.functional.kernel import DEFAULT_BLOCK, kernel_sums, median_pair_distance
from bench.metrics.functional.sample_size import sample_size_curve

SIDES = ("ref", "gen")


class KADParams(EmbedderParams):
    embedder: str = "vggish"
    bandwidth: float | None = Field(default=None, gt=0, description="fixed kernel σ; None = median rule")
    block: int = Field(default=DEFAULT_BLOCK, ge=1, description="rows per block (memory O(block²))")
    n_bootstrap: int = Field(default=50, ge=0)
    sample_size_fractions: tuple[float, ...] = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
    sample_size_draws: int = Field(default=5, ge=0, description="0 = no sample-size study")


class KernelAudioDistance(BaseMetric):
    """KAD between the reference and generated sets on one embedder's frame embeddings."""

    Params = KADParams

    def __init__(self, params: KADParams | None = None) -> None:
        super().__init__(params)
        self.add_state("n_items")
        self.gathered: dict[str, dict[str, np.ndarray]] = {side: {} for side in SIDES}

    # -- state -----------------------------------------------------------------------------------
    def _check_new(self, side: str, key: str, frames: np.ndarray) -> bool:
        """False when ``key`` is already held with the same frames (a reference seen again); raises
        when it is held with other frames or is a generated clip seen twice."""
        old = self.gathered[side].get(key)
        if old is None:
            return True
        if side == "gen" or old.shape != frames.shape or not np.allclose(old, frames, rtol=1e-6, atol=1e-9):
            what = "generated clip" if side == "gen" else "reference of prompt"
            raise ValueError(f"KAD: {what} {key!r} was added twice with different embeddings")
        return False

    def _put(self, side: str, key: str, frames: np.ndarray) -> None:
        if self._check_new(side, key, frames):
            self.gathered[side][key] = frames

    def add_gathered(self, other: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        """Union with another shard's or rank's ``gathered`` tables."""
        for side in SIDES:
            for key, frames in other.get(side, {}).items():
                self._put(side, key, np.asarray(frames, dtype=np.float64))

    def merge(self, other: Any) -> None:
        super().merge(other)
        self.add_gathered(other.gathered)

    @staticmethod
    def _frames(side: str, key: str, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames, dtype=np.float64)
        if frames.ndim != 2 or frames.shape[0] == 0:
            raise ValueError(f"KAD: {side} embeddings of {key!r} must be [F >= 1, D]; got {frames.shape}")
        if not np.all(np.isfinite(frames)):
            raise ValueError(f"KAD: {side} embeddings of {key!r} contain NaN or inf")
        return frames

    def update(self, item: MetricItem, features: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        if not self.accept(item, check_reference=True):
            return
        key = item_key(item)
        gen = self._frames("generated", key, self.features_of(features, item)["generated"])
        ref = features[self.params.embedder].get("reference")
        ref = None if ref is None else self._frames("reference", key, ref)
        self._check_new("gen", key, gen)  # both checked before either is kept
        if ref is not None:
            self._put("ref", item.prompt.id, ref)
        self._put("gen", key, gen)
        self.state["n_items"] += 1.0

    # -- values ----------------------------------------------------------------------------------
    def _stack(self, side: str) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Keys (sorted), frames ``[F, D]`` and each frame's clip index ``[F]``."""
        keys = sorted(self.gathered[side])
        clips = [self.gathered[side][k] for k in keys]
        dims = {c.shape[1] for c in clips}
        if len(dims) > 1:
            raise ValueError(f"KAD: {side} embeddings have different dims {sorted(dims)}")
        owner = np.concatenate([np.full(len(c), i) for i, c in enumerate(clips)])
        return keys, np.concatenate(clips), owner

    def _weights(self, side: str, keys: list[str], owner: np.ndarray, paired: bool = False) -> np.ndarray:
        """Per-frame replicate weights ``[B, F]``: each clip's Poisson(1) weights, from its own key
        (``stream`` = side) or, ``paired``, from its prompt id (one weight per prompt for both sets)."""
        p = self.params

        def key(k: str) -> str:
            if paired:
                return k.rsplit("#", 1)[0] if side == "gen" else k  # gen keys are "prompt#seed"
            return k if side == "gen" else f"{k}#ref"

        stream = "paired" if paired else side
        per_clip = np.stack([poisson_weights(p.seed, key(k), p.n_bootstrap, stream=stream) for k in keys],
                            axis=1)  # [B, clips]
        return per_clip[:, owner]

    def _replicates(self, ref: np.ndarray, gen: np.ndarray, sigma: float, weights: tuple) -> np.ndarray:
        """KAD per replicate ``[B]`` (NaN where a weighted set has no pair)."""
        sums = kernel_sums(ref, gen, sigma, self.params.block, *weights)
        ok = (sums.norm_xx > 0) & (sums.norm_yy > 0) & (sums.norm_xy > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(ok, sums.kad(), np.nan)

    def compute(self) -> dict[str, MetricResult]:
        name = f"kad_{self.params.embedder}"
        n = int(self.state["n_items"])
        if len(self.gathered["gen"]) < 1 or len(self.gathered["ref"]) < 1:
            raise ValueError(f"KAD needs generated and reference clips; got {len(self.gathered['gen'])} "
                             f"generated and {len(self.gathered['ref'])} reference clips "
                             f"({int(self.state['n_flagged'])} flagged)")
        ref_keys, ref, ref_owner = self._stack("ref")
        gen_keys, gen, gen_owner = self._stack("gen")
        if len(ref) < 2 or len(gen) < 2:
            raise ValueError(f"KAD needs at least 2 frames per set; got {len(ref)} reference and {len(gen)} "
                             f"generated frames")
        if ref.shape[1] != gen.shape[1]:
            raise ValueError(f"KAD: reference dim {ref.shape[1]} differs from generated dim {gen.shape[1]}")
        p = self.params
        sigma = p.bandwidth if p.bandwidth is not None else median_pair_distance(ref, p.block)
        if sigma <= 0:
            raise ValueError("KAD: every reference frame is identical (median pair distance 0); "
                             "set a fixed bandwidth")
        value = float(kernel_sums(ref, gen, sigma, p.block).kad()[0])
        lo = hi = None
        reps, paired = np.zeros(0), np.zeros(0)
        if p.n_bootstrap:
            reps = self._replicates(ref, gen, sigma, (self._weights("ref", ref_keys, ref_owner),
                                                      self._weights("gen", gen_keys, gen_owner)))
            paired = self._replicates(ref, gen, sigma, (self._weights("ref", ref_keys, ref_owner, True),
                                                        self._weights("gen", gen_keys, gen_owner, True)))
            ok = np.isfinite(reps)
            if ok.any():
                q_lo, q_hi = percentile_interval(reps[ok], p.confidence)
                bias = float(np.mean(reps[ok])) - value
                lo, hi = q_lo - bias, q_hi - bias
        details: dict[str, Any] = {"bandwidth": sigma, "frames_reference": len(ref),
                                   "frames_generated": len(gen), "clips_reference": len(ref_keys),
                                   "replicates": [float(v) if np.isfinite(v) else None for v in reps],
                                   "paired_replicates": [float(v) if np.isfinite(v) else None
                                                         for v in paired]}
        if p.sample_size_draws and len(gen_keys) >= 2:
            curve = sample_size_curve(ref, [self.gathered["gen"][k] for k in gen_keys],
                                      p.sample_size_fractions, p.sample_size_draws, sigma, p.seed, p.block)
            details["sample_size"] = curve.as_dict()
        protocol = {"bandwidth": sigma, "bandwidth_rule": "fixed" if p.bandwidth is not None else
                    "median distance between distinct pairs of the reference frames (lower middle)"}
        extra = {**self.extra(), **details, "protocol": protocol}
        return {name: MetricResult(value, n, lo, hi, extra)}

    def infos(self) -> list[MetricInfo]:
        proto = {**self.base_protocol(), "statistic": "100 x unbiased MMD² (i != j within sets, all m*n "
                 "cross pairs, no clamp), Gaussian kernel exp(-d²/(2σ²)), float64, blocked",
                 "rows": "frame embeddings of every clip; reference: each prompt's reference once",
                 "state": "the embeddings themselves (gathered across shards and ranks, not summed)",
                 "interval": "Poisson bootstrap over clips (weighted U-statistic), percentile interval "
                             "shifted by the bootstrap bias, not clipped"}
        return [MetricInfo(f"kad_{self.params.embedder}", higher_is_better=False, protocol=proto)]
