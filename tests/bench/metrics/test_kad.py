"""Kernel Audio Distance: the pure function against a direct O(N²) computation, its statistical
behaviour against FAD's, blocking, the exact median, and the metric class across shards and ranks."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from bench.api import AudioClip, MetricItem, Prompt
from bench.distributed import World
from bench.metrics.functional import (
    frechet_distance,
    gaussian_fit,
    kernel_audio_distance,
    median_pair_distance,
)
from bench.metrics.functional import kernel as kernel_mod
from bench.metrics.functional.kernel import kernel_sums
from bench.metrics.kad import KernelAudioDistance


def direct_kad(x: np.ndarray, y: np.ndarray, sigma: float | None = None) -> float:
    """Written from the definition: pairs enumerated one by one, float64."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if sigma is None:
        d = sorted(float(np.sqrt(np.sum((x[i] - x[j]) ** 2)))
                   for i, j in itertools.combinations(range(len(x)), 2))
        sigma = d[(len(d) - 1) // 2]

    def k(a, b):
        return np.exp(-np.sum((a - b) ** 2) / (2 * sigma ** 2))

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return 100.0 * (xx + yy - 2 * xy)


def test_kad_equals_direct_computation():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((23, 5))
    y = rng.standard_normal((17, 5)) * 1.3 + 0.4
    assert kernel_audio_distance(x, y) == pytest.approx(direct_kad(x, y), rel=1e-12, abs=1e-12)
    assert kernel_audio_distance(x, y, bandwidth=0.7) == pytest.approx(direct_kad(x, y, 0.7), rel=1e-12)
    # the bandwidth comes from the reference set only: swapping the sets changes it
    assert kernel_audio_distance(y, x) == pytest.approx(direct_kad(y, x), rel=1e-12)
    # one set against itself: the cross term counts the m self-pairs (k = 1), so the value is below 0
    assert kernel_audio_distance(x, x) == pytest.approx(direct_kad(x, x), rel=1e-12) and direct_kad(x, x) < 0


@pytest.mark.parametrize("n", [2, 3, 4, 9, 10])  # pair counts 1, 3, 6, 36, 45 (odd and even)
def test_median_is_torch_median_of_pdist(n):
    x = np.random.default_rng(n).standard_normal((n, 3))
    expected = torch.median(torch.pdist(torch.from_numpy(x))).item()
    assert median_pair_distance(x) == pytest.approx(expected, rel=1e-12)


def test_median_by_histogram_passes_is_exact(monkeypatch):
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.standard_normal((400, 4)), np.zeros((30, 4))])  # ties at distance 0
    expected = torch.median(torch.pdist(torch.from_numpy(x))).item()
    monkeypatch.setattr(kernel_mod, "_DIRECT_PAIRS", 50)  # force the blocked selection
    assert median_pair_distance(x, block=37) == pytest.approx(expected, rel=1e-12)


def test_blocked_and_one_shot_agree():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((301, 16)), rng.standard_normal((257, 16)) + 0.1
    one = kernel_audio_distance(x, y, block=100_000)
    for block in (1, 7, 64, 300):
        assert abs(kernel_audio_distance(x, y, block=block) - one) < 1e-10
    w = rng.poisson(1.0, (4, 301)).astype(float), rng.poisson(1.0, (4, 257)).astype(float)
    a = kernel_sums(x, y, 2.0, 13, *w).kad()
    b = kernel_sums(x, y, 2.0, 10_000, *w).kad()
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)


def test_weights_of_one_give_the_estimate_and_integer_weights_the_weighted_u_statistic():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((9, 3)), rng.standard_normal((8, 3))
    plain = kernel_sums(x, y, 1.5).kad()[0]
    ones = kernel_sums(x, y, 1.5, wx=np.ones((2, 9)), wy=np.ones((2, 8))).kad()
    np.testing.assert_allclose(ones, plain, rtol=1e-13)
    wx, wy = rng.integers(0, 3, 9).astype(float), rng.integers(1, 3, 8).astype(float)

    def k(a, b):
        return np.exp(-np.sum((a - b) ** 2) / (2 * 1.5 ** 2))

    def within(z, w):
        num = sum(w[i] * w[j] * k(z[i], z[j]) for i in range(len(z)) for j in range(len(z)) if i != j)
        return num / sum(w[i] * w[j] for i in range(len(z)) for j in range(len(z)) if i != j)

    cross = sum(wx[i] * wy[j] * k(x[i], y[j]) for i in range(9) for j in range(8)) / (wx.sum() * wy.sum())
    expected = 100 * (within(x, wx) + within(y, wy) - 2 * cross)
    assert kernel_sums(x, y, 1.5, wx=wx[None], wy=wy[None]).kad()[0] == pytest.approx(expected, rel=1e-12)


def test_kad_is_unbiased_where_fad_is_not():
    """Two samples of one distribution: KAD averages ~0 (and is sometimes negative); FAD is clearly
    positive at this N (its bias is about D²/N)."""
    rng = np.random.default_rng(4)
    kads, fads = [], []
    for _ in range(40):
        x, y = rng.standard_normal((60, 12)), rng.standard_normal((60, 12))
        kads.append(kernel_audio_distance(x, y))
        fads.append(frechet_distance(*gaussian_fit(x), *gaussian_fit(y)))
    kads, fads = np.array(kads), np.array(fads)
    stderr = kads.std(ddof=1) / np.sqrt(len(kads))
    assert abs(kads.mean()) < 3 * stderr
    assert (kads < 0).any()  # no clamp at zero
    assert fads.min() > 0 and fads.mean() > 10 * fads.std(ddof=1) / np.sqrt(len(fads))
    # and a real shift is seen by KAD well beyond that noise
    shifted = kernel_audio_distance(rng.standard_normal((60, 12)), rng.standard_normal((60, 12)) + 0.5)
    assert shifted > kads.mean() + 10 * kads.std(ddof=1)


@pytest.mark.parametrize("bad, match", [(np.zeros((3,)), r"\[N, D\]"), (np.full((3, 2), np.nan), "NaN")])
def test_bad_input_is_one_clear_error(bad, match):
    with pytest.raises(ValueError, match=match):
        kernel_audio_distance(bad, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="at least 2 rows"):
        kernel_audio_distance(np.zeros((1, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="dimension mismatch"):
        kernel_audio_distance(np.eye(3), np.eye(4))


# -- the metric class ------------------------------------------------------------------------------
def items(n: int, seed: int = 0, seeds: tuple[int, ...] = (0,)):
    """``n`` prompts x ``seeds``: (item, features) with random frame embeddings; a prompt's reference
    embedding is the same whatever the seed (it is the same clip)."""
    rng = np.random.default_rng(seed)
    refs = {f"p{i}": rng.standard_normal((int(rng.integers(2, 5)), 6)) for i in range(n)}
    out = []
    for s in seeds:
        for i in range(n):
            wav = rng.standard_normal((1, 800)).astype(np.float32)
            item = MetricItem(Prompt(f"p{i}", "x"), AudioClip(wav, 8000, f"p{i}", s),
                              AudioClip(wav, 8000, f"p{i}", -1))
            gen = rng.standard_normal((int(rng.integers(2, 5)), 6)) + 0.3
            out.append((item, {"test-bands": {"generated": gen, "reference": refs[f"p{i}"]}}))
    return out, refs


def params(**kw):
    return KernelAudioDistance.Params(embedder="test-bands", n_bootstrap=20, sample_size_draws=2, **kw)


def test_metric_value_interval_protocol_and_deduplicated_reference():
    data, refs = items(12, seeds=(0, 1))
    metric = KernelAudioDistance(params())
    for item, feats in data:
        metric.update(item, feats)
    res = metric.compute()["kad_test-bands"]
    ref = np.concatenate([refs[k] for k in sorted(refs)])  # each prompt's reference once
    gens = {f"{it.prompt.id}#{it.generated.seed}": f["test-bands"]["generated"] for it, f in data}
    gen = np.concatenate([gens[k] for k in sorted(gens)])
    assert res.value == pytest.approx(kernel_audio_distance(ref, gen), rel=1e-12)
    assert res.n == 24 and res.ci_low < res.value < res.ci_high
    assert res.extra["protocol"]["bandwidth"] == pytest.approx(median_pair_distance(ref), rel=1e-12)
    details = res.extra
    assert details["clips_reference"] == 12 and len(details["replicates"]) == 20
    curve = details["sample_size"]
    assert curve["n_clips"][-1] == 24 and len(curve["kad"]) == 2
    assert curve["kad"][0][-1] == pytest.approx(res.value, rel=1e-12)  # the full set is the estimate
    assert set(curve["fad_inf_fit"]) >= {"intercept", "slope", "r2"}
    json.dumps(details)  # goes into results.json as is


def test_two_shards_merge_to_one_pass_and_conflicts_are_errors():
    data, _ = items(10)
    whole, a, b = (KernelAudioDistance(params()) for _ in range(3))
    for i, (item, feats) in enumerate(data):
        whole.update(item, feats)
        (a if i % 3 else b).update(item, feats)
    a.merge(b)
    ra, rw = a.compute()["kad_test-bands"], whole.compute()["kad_test-bands"]
    assert (ra.value, ra.ci_low, ra.ci_high, ra.n) == (rw.value, rw.ci_low, rw.ci_high, rw.n)
    item, feats = data[0]
    again = MetricItem(item.prompt, AudioClip(item.generated.wav, 8000, "p0", 1), item.reference)
    other = {"test-bands": {**feats["test-bands"], "reference": feats["test-bands"]["reference"] + 1}}
    with pytest.raises(ValueError, match="reference of prompt 'p0' was added twice"):
        a.update(again, other)
    assert "p0#1" not in a.gathered["gen"]  # nothing of the refused item was kept
    with pytest.raises(ValueError, match="generated clip 'p.#0' was added twice"):
        a.merge(whole)


class PeerWorld(World):
    """Rank 0 of two whose rank 1 holds ``peer``: the collectives answer as gloo would."""

    def __init__(self, peer) -> None:
        super().__init__(rank=0, world_size=2, backend="test")
        self.peer = peer

    def gather(self, obj):
        return [obj, self.peer.gathered if isinstance(obj, dict) and "gen" in obj else self.peer.flagged]

    def sum_arrays(self, arrays):
        keys = sorted(set(arrays) | set(self.peer.state))
        return {k: arrays.get(k, 0.0) + self.peer.state.get(k, 0.0) for k in keys}


def test_reduce_metric_gathers_the_embeddings_of_every_rank():
    data, _ = items(9)
    whole, mine, peer = (KernelAudioDistance(params()) for _ in range(3))
    for i, (item, feats) in enumerate(data):
        whole.update(item, feats)
        (mine if i % 2 == 0 else peer).update(item, feats)
    PeerWorld(peer).reduce_metric(mine)
    a, b = mine.compute()["kad_test-bands"], whole.compute()["kad_test-bands"]
    assert (a.value, a.ci_low, a.ci_high, a.n) == (b.value, b.ci_low, b.ci_high, b.n)
    assert {k: v for k, v in a.extra.items() if k != "flagged"} == \
        {k: v for k, v in b.extra.items() if k != "flagged"}


KAD_SUITE = """
name: kad-ranks
dataset: {name: audio-folder, params: {root: data, split: test}}
generation: {duration_s: 1.0, seeds: [0, 1], batch_size: 2}
generators:
  - {name: reference}
  - {name: noise, params: {sample_rate: 16000}}
metrics:
  - {name: kad, params: {embedder: test-bands, n_bootstrap: 10, sample_size_draws: 2}}
report: {html: null}
"""


@pytest.mark.slow
def test_two_gloo_ranks_equal_one_process(tones, write_suite, plugins, tmp_path):
    from bench.runner import Runner
    from bench.suite import load_suite
    from tests.bench.test_distributed import finish, torchrun

    suite = write_suite(KAD_SUITE)
    one = Runner(load_suite(suite, run_dir=tmp_path / "one"), progress=False).run()
    code, _, err = finish(torchrun([str(suite), "--out", str(tmp_path / "two")]))
    assert code == 0, err[-3000:]
    two = json.loads((tmp_path / "two" / "results.json").read_text())
    assert two["metadata"]["world_size"] == 2 and len(one["records"]) == len(two["records"]) == 2
    for a, b in zip(one["records"], two["records"]):
        assert a["n"] == b["n"] == 10
        for k in ("value", "ci_low", "ci_high"):
            assert a[k] == pytest.approx(b[k], rel=0, abs=1e-12)
        assert a["protocol"] == b["protocol"] and a["details"] == b["details"]


def test_paired_replicates_weight_a_prompt_the_same_in_both_sets():
    data, _ = items(6, seeds=(0,))
    metric = KernelAudioDistance(params())
    for item, feats in data:
        metric.update(item, feats)
    ref_keys, _, ref_owner = metric._stack("ref")
    gen_keys, _, gen_owner = metric._stack("gen")
    assert [k.rsplit("#", 1)[0] for k in gen_keys] == ref_keys
    one = np.arange(len(ref_keys))
    wr = metric._weights("ref", ref_keys, one, paired=True)
    wg = metric._weights("gen", gen_keys, one, paired=True)
    np.testing.assert_array_equal(wr, wg)
    assert not np.array_equal(metric._weights("ref", ref_keys, one), metric._weights("gen", gen_keys, one))
    res = metric.compute()["kad_test-bands"]
    paired = res.extra["paired_replicates"]
    assert len(paired) == 20 and paired != res.extra["replicates"]
