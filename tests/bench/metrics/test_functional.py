"""Pure metric functions against independent computations (scipy, torch, librosa, numpy loops)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from bench.metrics import functional as F
from bench.metrics.functional.bootstrap import poisson_weights, subset_members


def _scipy_frechet(mu1, s1, mu2, s2):
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = np.real(covmean)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def _gauss(rng, n, d, shift=0.0, scale=1.0):
    a = rng.standard_normal((d, d)) * 0.3
    return rng.standard_normal((n, d)) @ (np.eye(d) * scale + a) + shift


@pytest.mark.parametrize("d", [4, 32, 128])
def test_frechet_matches_scipy_sqrtm(d):
    rng = np.random.default_rng(d)
    x, y = _gauss(rng, 4 * d + 50, d), _gauss(rng, 4 * d + 80, d, shift=0.3, scale=1.2)
    mu1, s1 = np.mean(x, 0), np.cov(x, rowvar=False)
    mu2, s2 = np.mean(y, 0), np.cov(y, rowvar=False)
    ours = F.frechet_distance(mu1, s1, mu2, s2)
    ref = _scipy_frechet(mu1, s1, mu2, s2)
    assert ours == pytest.approx(ref, rel=1e-6)
    det = F.frechet_details(mu1, s1, mu2, s2)
    assert not det.regularised and not det.rank_deficient


def test_frechet_identical_is_zero_and_symmetric():
    rng = np.random.default_rng(0)
    x = _gauss(rng, 300, 16)
    mu, s = F.gaussian_fit(x)
    assert abs(F.frechet_distance(mu, s, mu, s)) < 1e-9
    y = _gauss(rng, 300, 16, shift=1.0)
    mu2, s2 = F.gaussian_fit(y)
    assert F.frechet_distance(mu, s, mu2, s2) == pytest.approx(F.frechet_distance(mu2, s2, mu, s), rel=1e-10)


def test_frechet_rank_deficient_is_flagged_and_is_the_limit():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((10, 32)), rng.standard_normal((12, 32)) + 0.5  # fewer frames than dims
    mu1, s1 = F.gaussian_fit(x)
    mu2, s2 = F.gaussian_fit(y)
    det = F.frechet_details(mu1, s1, mu2, s2)
    assert det.rank_deficient and np.isfinite(det.value)
    eye = np.eye(32)
    limit = _scipy_frechet(mu1, s1 + 1e-7 * eye, mu2, s2 + 1e-7 * eye)
    assert det.value == pytest.approx(limit, rel=1e-4)


def test_frechet_regularises_non_psd_and_reports_it():
    mu = np.zeros(3)
    bad = np.diag([1.0, 1.0, -0.5])  # not a covariance
    det = F.frechet_details(mu, bad, mu, np.eye(3))
    assert det.regularised and det.eps > 0


def test_frechet_bad_input_errors():
    with pytest.raises(ValueError, match="covariance shape"):
        F.frechet_distance(np.zeros(3), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="NaN"):
        F.frechet_distance(np.full(2, np.nan), np.eye(2), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="at least 2"):
        F.gaussian_fit(np.zeros((1, 4)))


def test_streamed_sums_equal_direct_fit():
    rng = np.random.default_rng(2)
    x = _gauss(rng, 500, 8, shift=3.0)
    parts = [F.gaussian_sums(c) for c in np.array_split(x, 7)]
    n = sum(p[0] for p in parts)
    s = sum(p[1] for p in parts)
    o = sum(p[2] for p in parts)
    mu, cov = F.gaussian_from_sums(n, s, o)
    np.testing.assert_allclose(mu, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(cov, np.cov(x, rowvar=False), rtol=1e-9, atol=1e-12)


def test_fad_inf_recovers_intercept_of_exact_line():
    ns = [100.0, 200.0, 400.0, 800.0]
    fit = F.fad_inf_fit(ns, [2.0 + 50.0 / n for n in ns])
    assert fit.value == pytest.approx(2.0) and fit.slope == pytest.approx(50.0)
    assert fit.r2 == pytest.approx(1.0)
    with pytest.raises(ValueError, match="distinct"):
        F.fad_inf_fit([100.0, 100.0], [1.0, 1.0])


def test_fad_inf_from_embeddings_is_below_plain_fad_for_same_distribution():
    rng = np.random.default_rng(3)
    ref = rng.standard_normal((4000, 8))
    gen = rng.standard_normal((2000, 8))
    mu_r, cov_r = F.gaussian_fit(ref)
    plain = F.frechet_distance(*F.gaussian_fit(gen), mu_r, cov_r)
    inf = F.fad_inf_from_embeddings(gen, mu_r, cov_r, [200, 400, 800, 1600, 2000], seed=0)
    assert inf.slope > 0 and abs(inf.value) < plain


def test_per_sample_fad_orders_outlier_clip():
    rng = np.random.default_rng(4)
    ref = rng.standard_normal((2000, 4))
    mu, cov = F.gaussian_fit(ref)
    good = F.per_sample_fad(rng.standard_normal((200, 4)), mu, cov)
    bad = F.per_sample_fad(rng.standard_normal((200, 4)) + 2.0, mu, cov)
    assert good < 0.2 < bad


def test_bootstrap_is_seeded_and_contains_mean():
    v = np.random.default_rng(5).standard_normal(200)
    a = F.bootstrap_ci(v, seed=1, n_replicates=300)
    assert a == F.bootstrap_ci(v, seed=1, n_replicates=300)
    assert a != F.bootstrap_ci(v, seed=2, n_replicates=300)
    assert a[0] < v.mean() < a[1]
    np.testing.assert_array_equal(poisson_weights(0, "x", 8), poisson_weights(0, "x", 8))
    assert not np.array_equal(poisson_weights(0, "x", 64), poisson_weights(0, "y", 64))
    m = subset_members(0, "clip", np.array([0.2, 0.5, 1.0]))
    assert np.all(np.diff(m) >= 0) and m[-1] == 1.0  # nested subsets


def test_kl_matches_torch_kldivloss_protocol():
    rng = np.random.default_rng(6)
    ref_logits, gen_logits = rng.standard_normal((3, 527)) * 3, rng.standard_normal((2, 527)) * 3
    p_ref, p_gen = F.clip_label_distribution(ref_logits), F.clip_label_distribution(gen_logits)
    # audiocraft: KLDivLoss(reduction='none')(log(preds + eps), targets).sum(-1), preds = generated
    t_ref = torch.softmax(torch.tensor(ref_logits), -1).mean(0)
    t_gen = torch.softmax(torch.tensor(gen_logits), -1).mean(0)
    expected = torch.nn.KLDivLoss(reduction="none")(torch.log(t_gen + 1e-6), t_ref).sum(-1).item()
    out = F.kl_all_directions(p_ref, p_gen)
    assert float(out["kl"]) == pytest.approx(expected, rel=1e-10)
    rev = torch.nn.KLDivLoss(reduction="none")(torch.log(t_ref + 1e-6), t_gen).sum(-1).item()
    assert float(out["kl_reverse"]) == pytest.approx(rev, rel=1e-10)
    assert float(out["kl_symmetric"]) == pytest.approx(expected + rev)
    self_kl = float(F.kl_divergence(p_ref, p_ref))  # only the eps term remains: ~ -C * eps
    assert -527 * 1e-6 <= self_kl < 0
    with pytest.raises(ValueError, match="shapes differ"):
        F.kl_divergence(p_ref, p_gen[:10])


def test_clap_score_is_mean_cosine_and_checks_pairs():
    rng = np.random.default_rng(7)
    t, a = rng.standard_normal((5, 16)), rng.standard_normal((5, 16))
    expected = torch.nn.functional.cosine_similarity(torch.tensor(t), torch.tensor(a), dim=-1).mean().item()
    assert F.clap_score(t, a) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="pair"):
        F.clap_score(t, a[:4])


def _melody(notes_hz, sr=32000, note_s=0.5):
    t = np.arange(int(sr * note_s)) / sr
    return np.concatenate([0.5 * np.sin(2 * np.pi * f * t) for f in notes_hz]).astype(np.float32)


def test_chromagram_matches_librosa_stft_path():
    import librosa

    x = _melody([261.63, 329.63, 392.0, 523.25])
    ours = F.chromagram(x, argmax=False)
    spec = torch.stft(torch.tensor(x, dtype=torch.float64), n_fft=16384, hop_length=4096,
                      window=torch.hann_window(16384, dtype=torch.float64), center=True,
                      pad_mode="reflect", return_complex=True).abs().pow(2).numpy()
    raw = librosa.filters.chroma(sr=32000, n_fft=16384, tuning=0.0, n_chroma=12) @ spec
    ref = (raw / np.maximum(raw.max(0, keepdims=True), 1e-6)).T
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-9)
    # a sustained A (440 Hz) lands on chroma bin 9 (C = 0)
    assert np.all(F.chromagram(_melody([440.0], note_s=2.0)).argmax(-1) == 9)


def test_chroma_cosine_orders_same_over_random_melody():
    rng = np.random.default_rng(8)
    notes = 220.0 * 2 ** (rng.integers(0, 12, 16) / 12)
    other = 220.0 * 2 ** (rng.integers(0, 12, 16) / 12)
    mel = _melody(notes)
    assert F.chroma_cosine_similarity([mel], [mel]) == pytest.approx(1.0)
    assert F.chroma_cosine_similarity([mel], [_melody(other)]) < 0.5
    with pytest.raises(ValueError, match="pairs"):
        F.chroma_cosine_similarity([mel], [])


def test_token_match_rates():
    rng = np.random.default_rng(9)
    orig = rng.integers(0, 2048, (4, 300))
    same = orig.copy()
    near = orig.copy()
    near[0, :40] = (near[0, :40] + 1) % 2048  # 84 % match
    far = rng.integers(0, 2048, (4, 300))
    rates = F.token_match_rates([(same, orig), (near, orig), (far, orig)])
    assert rates == {"exact_match_rate": pytest.approx(1 / 3), "partial_match_rate": pytest.approx(2 / 3)}
    with pytest.raises(ValueError, match="250"):
        F.token_match_fraction(orig[:, :100], orig)


def test_nearest_neighbour_rate():
    rng = np.random.default_rng(10)
    train = rng.standard_normal((20, 8))
    gen = train[[3, 5, 7]] + 0.01 * rng.standard_normal((3, 8))
    assert F.nearest_neighbour_rate(gen, train, np.array([3, 5, 7])) == 1.0
    assert F.nearest_neighbour_rate(gen, train, np.array([3, 5, 8])) == pytest.approx(2 / 3)


def test_audio_flags():
    assert F.audio_flags(np.zeros((1, 100))) == ["silent"]
    assert F.audio_flags(np.array([0.1, np.nan])) == ["nonfinite"]
    assert F.audio_flags(np.array([0.1, -0.2])) == []


def test_bias_corrected_interval_recentres_on_the_estimate():
    from bench.metrics.functional.bootstrap import bias_corrected_interval, percentile_interval

    reps = np.linspace(50.0, 600.0, 101)  # replicates all far above the estimate, as FAD's can be
    lo, hi = bias_corrected_interval(4.5, reps)
    plo, phi = percentile_interval(reps)
    assert lo <= 4.5 <= hi
    assert hi - lo <= phi - plo  # the clip at 0 can only narrow it
    assert lo == 0.0 and hi == pytest.approx(phi - (reps.mean() - 4.5))
