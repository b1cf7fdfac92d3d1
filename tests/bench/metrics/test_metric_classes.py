"""Stateful metrics: shards merge to one pass, intervals are seeded, bad input is flagged or raises."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from bench.api import AudioClip, MetricItem, Prompt
from bench.metrics import BUILTIN_METRICS
from bench.metrics import functional as F
from bench.metrics.chroma import ChromaCosineSimilarity
from bench.metrics.clap_score import ClapScore
from bench.metrics.fad import FrechetAudioDistance
from bench.metrics.kl import KLDivergence
from bench.metrics.memorization import Memorization

RNG = np.random.default_rng(0)


def _clip(pid, seed=0, wav=None, tokens=None, sr=16000):
    wav = wav if wav is not None else (0.1 * RNG.standard_normal((1, 800))).astype(np.float32)
    return AudioClip(wav=wav, sample_rate=sr, prompt_id=pid, seed=seed, tokens=tokens)


def _item(i, reference=True, text=None, **kw):
    p = Prompt(id=f"p{i}", text=text or f"prompt {i}")
    return MetricItem(prompt=p, generated=_clip(p.id, **kw), reference=_clip(p.id) if reference else None)


def _fad_data(n_items, shift, d=8, seed=1):
    rng = np.random.default_rng(seed)
    return [(_item(i), {"vggish": {"generated": rng.standard_normal((10, d)) + shift,
                                   "reference": rng.standard_normal((10, d))}}) for i in range(n_items)]


def _run(metric, data):
    for item, feats in data:
        metric.update(item, feats)
    return metric


def test_every_builtin_metric_imports():
    for name, target in BUILTIN_METRICS.items():
        mod, attr = target.split(":")
        cls = getattr(importlib.import_module(mod), attr)
        assert cls().infos(), name


def test_fad_equals_direct_computation_and_shards_merge():
    data = _fad_data(40, shift=0.5)
    one = _run(FrechetAudioDistance(), data).compute()["fad_vggish"]
    gen = np.concatenate([f["vggish"]["generated"] for _, f in data])
    ref = np.concatenate([f["vggish"]["reference"] for _, f in data])
    expected = F.frechet_distance(*F.gaussian_fit(ref), *F.gaussian_fit(gen))
    assert one.value == pytest.approx(expected, rel=1e-10)
    shards = [_run(FrechetAudioDistance(), data[i::3]) for i in range(3)]
    merged = FrechetAudioDistance()
    for s in reversed(shards):
        merged.merge(s)
    res = merged.compute()
    assert res["fad_vggish"].value == pytest.approx(one.value, rel=1e-10)
    assert res["fad_vggish"].ci_low == pytest.approx(one.ci_low, rel=1e-9)
    assert res["fad_vggish"].ci_high == pytest.approx(one.ci_high, rel=1e-9)
    assert res["fad_inf_vggish"].value == pytest.approx(
        _run(FrechetAudioDistance(), data).compute()["fad_inf_vggish"].value, rel=1e-9)
    assert one.ci_low <= one.value <= one.ci_high and one.n == 40


def test_fad_orders_self_below_shifted_and_is_seeded():
    same = _run(FrechetAudioDistance(), _fad_data(30, 0.0)).compute()["fad_vggish"].value
    shifted = _run(FrechetAudioDistance(), _fad_data(30, 1.0)).compute()["fad_vggish"]
    assert same < 0.5 < shifted.value
    again = _run(FrechetAudioDistance(), _fad_data(30, 1.0)).compute()["fad_vggish"]
    other = _run(FrechetAudioDistance(FrechetAudioDistance.Params(seed=3)), _fad_data(30, 1.0)).compute()
    assert (again.ci_low, again.ci_high) == (shifted.ci_low, shifted.ci_high)
    assert (other["fad_vggish"].ci_low, other["fad_vggish"].ci_high) != (shifted.ci_low, shifted.ci_high)


def test_fad_flags_silent_and_raises_on_nan_embeddings():
    data = _fad_data(5, 0.3)
    m = _run(FrechetAudioDistance(), data)
    silent = _item(99, wav=np.zeros((1, 800), np.float32))
    m.update(silent, data[0][1])
    res = m.compute()["fad_vggish"]
    assert res.extra["n_flagged"] == 1 and res.extra["flagged"] == {"generated silent": ["p99#0"]}
    assert res.n == 5
    strict = FrechetAudioDistance(FrechetAudioDistance.Params(on_bad_audio="raise"))
    with pytest.raises(ValueError, match="p99#0.*silent"):
        strict.update(silent, data[0][1])
    nan_audio = _item(7, wav=np.full((1, 800), np.nan, np.float32))
    with pytest.raises(ValueError, match="nonfinite"):
        strict.update(nan_audio, data[0][1])
    bad = {"vggish": {"generated": np.full((3, 8), np.nan), "reference": np.zeros((3, 8))}}
    with pytest.raises(ValueError, match="NaN"):
        FrechetAudioDistance().update(_item(1), bad)
    with pytest.raises(ValueError, match="dim"):
        _run(FrechetAudioDistance(), data + _fad_data(1, 0.0, d=4))


def _kl_data(n, same, seed=2):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        ref = rng.standard_normal((2, 527)) * 2
        gen = ref + 0.01 * rng.standard_normal((2, 527)) if same else rng.standard_normal((3, 527)) * 2
        out.append((_item(i), {"passt": {"generated": gen, "reference": ref}}))
    return out


def test_kl_class_values_merge_and_ordering():
    data = _kl_data(20, same=False)
    one = _run(KLDivergence(), data).compute()
    expected = np.mean([float(F.kl_divergence(F.clip_label_distribution(f["passt"]["reference"]),
                                              F.clip_label_distribution(f["passt"]["generated"])))
                        for _, f in data])
    assert one["kl"].value == pytest.approx(expected, rel=1e-12)
    assert set(one) == {"kl", "kl_reverse", "kl_symmetric"}
    assert one["kl_symmetric"].value == pytest.approx(one["kl"].value + one["kl_reverse"].value)
    merged = _run(KLDivergence(), data[:7])
    merged.merge(_run(KLDivergence(), data[7:]))
    two = merged.compute()
    for k in one:
        assert two[k].value == pytest.approx(one[k].value, rel=1e-12)
        assert (two[k].ci_low, two[k].ci_high) == pytest.approx((one[k].ci_low, one[k].ci_high), rel=1e-12)
        assert one[k].ci_low <= one[k].value <= one[k].ci_high
    close = _run(KLDivergence(), _kl_data(20, same=True)).compute()["kl"].value
    assert close < one["kl"].value
    proto = KLDivergence().infos()[0].protocol
    assert "reference || generated" in proto["direction"] and proto["eps"] == 1e-6


def test_paired_metrics_reject_missing_reference():
    item = _item(0, reference=False)
    for metric in (KLDivergence(), ChromaCosineSimilarity(), Memorization()):
        with pytest.raises(ValueError, match="same N|paired"):
            metric.update(item, {"passt": {"generated": np.zeros((1, 527))}})


def test_clap_score_class_uses_text_encoder_and_flags_silence():
    rng = np.random.default_rng(3)
    table = {f"prompt {i}": rng.standard_normal(16) for i in range(6)}
    m = ClapScore()
    m.set_text_encoder(lambda texts: np.stack([table[t] for t in texts]))
    audio = {i: table[f"prompt {i}"] + 0.5 * rng.standard_normal(16) for i in range(6)}
    for i in range(6):
        m.update(_item(i, reference=False), {"clap": {"generated": audio[i][None]}})
    m.update(_item(6, reference=False, text="prompt 0", wav=np.zeros((1, 80), np.float32)),
             {"clap": {"generated": audio[0][None]}})
    res = m.compute()["clap_score"]
    texts = np.stack([table[f"prompt {i}"] for i in range(6)])
    expected = F.clap_score(texts, np.stack(list(audio.values())))
    assert res.value == pytest.approx(expected, rel=1e-12) and res.n == 6 and res.extra["n_flagged"] == 1
    shuffled = ClapScore()
    shuffled.set_text_encoder(lambda texts: np.stack([table[t] for t in texts]))
    for i in range(6):
        shuffled.update(_item(i, reference=False), {"clap": {"generated": audio[(i + 1) % 6][None]}})
    assert shuffled.compute()["clap_score"].value < res.value


def _melody(notes_hz, sr=32000, note_s=0.5):
    t = np.arange(int(sr * note_s)) / sr
    return np.concatenate([0.5 * np.sin(2 * np.pi * f * t) for f in notes_hz]).astype(np.float32)[None]


def test_chroma_class_orders_and_resamples(tmp_path):
    import soundfile as sf

    rng = np.random.default_rng(4)
    notes = 220.0 * 2 ** (rng.integers(0, 12, 12) / 12)
    mel = _melody(notes)
    rand = _melody(220.0 * 2 ** (rng.integers(0, 12, 12) / 12))
    path = tmp_path / "melody.wav"
    sf.write(path, mel[0], 32000)
    good, bad = ChromaCosineSimilarity(), ChromaCosineSimilarity()
    prompt = Prompt(id="m", text="x", melody_path=path)
    mel16 = _melody(notes, sr=16000)  # same melody at another rate, resampled inside
    good.update(MetricItem(prompt, AudioClip(mel16, 16000, "m", 0)), {})
    bad.update(MetricItem(prompt, AudioClip(rand, 32000, "m", 0)), {})
    assert good.compute()["chroma_cosine"].value > 0.9 > 0.5 > bad.compute()["chroma_cosine"].value
    # the prompt's melody wins over the full-mix reference the runner passes along
    first = ChromaCosineSimilarity()
    full_mix = AudioClip(rand, 32000, "m", 0)
    first.update(MetricItem(prompt, AudioClip(mel16, 16000, "m", 0), reference=full_mix), {})
    assert first.compute()["chroma_cosine"].value > 0.9


def test_memorization_class_tokens_and_embeddings():
    rng = np.random.default_rng(5)
    orig = rng.integers(0, 2048, (4, 260))
    m = Memorization()
    for i, gen in enumerate([orig, rng.integers(0, 2048, (4, 260))]):
        p = Prompt(id=f"t{i}", text="x")
        m.update(MetricItem(p, _clip(p.id, tokens=gen), _clip(p.id, tokens=orig)), {})
    res = m.compute()
    assert res["exact_match_rate"].value == 0.5 and res["partial_match_rate"].value == 0.5
    assert "embedding_copy_rate" not in res
    e = Memorization()
    x = rng.standard_normal((4, 8))
    e.update(_item(0), {"vggish": {"generated": x, "reference": x}})
    e.update(_item(1), {"vggish": {"generated": x, "reference": -x}})
    assert e.compute()["embedding_copy_rate"].value == 0.5
