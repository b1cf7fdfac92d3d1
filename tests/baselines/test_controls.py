"""Control generators: reference returns the dataset's audio, noise/silence are what they say,
retrieval returns the nearest training caption's audio (TF-IDF recomputed independently here)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from baselines.controls import NoiseGenerator, ReferenceGenerator, SilenceGenerator
from baselines.retrieval import RetrievalGenerator, TfidfIndex, tokenize
from bench.api import Context, Prompt
from bench.audio import read_audio
from bench.datasets.audio_folder import AudioFolder


def _prompts(tones, split="test"):
    return AudioFolder(AudioFolder.Params(root=tones, split=split)).prompts()


def test_reference_returns_the_dataset_audio_cropped(tones):
    prompts = _prompts(tones)
    [clip] = ReferenceGenerator().generate(prompts[:1], seed=0, duration_s=1.0)
    wav, sr = read_audio(prompts[0].reference_path)
    assert clip.sample_rate == sr == 16000
    np.testing.assert_array_equal(clip.wav, wav[:, :16000])
    at_8k = ReferenceGenerator(ReferenceGenerator.Params(sample_rate=8000))
    [resampled] = at_8k.generate(prompts[:1], 0, 1.0)
    assert resampled.wav.shape == (1, 8000)
    with pytest.raises(ValueError, match="has no reference audio"):
        ReferenceGenerator().generate([Prompt("x", "text only")], 0, 1.0)


def test_noise_is_batch_independent_and_seeded():
    g = NoiseGenerator(NoiseGenerator.Params(sample_rate=8000, amplitude_dbfs=-20))
    ps = [Prompt(f"p{i}", "t") for i in range(3)]
    together = g.generate(ps, seed=1, duration_s=0.5)
    alone = g.generate(ps[2:], seed=1, duration_s=0.5)
    np.testing.assert_array_equal(together[2].wav, alone[0].wav)
    assert not np.array_equal(together[0].wav, together[1].wav)
    assert not np.array_equal(g.generate(ps[:1], seed=2, duration_s=0.5)[0].wav, together[0].wav)
    rms = math.sqrt(float(np.mean(together[0].wav.astype(np.float64) ** 2)))
    assert abs(20 * math.log10(rms) - (-20)) < 0.2
    louder = NoiseGenerator(NoiseGenerator.Params(sample_rate=8000, amplitude_dbfs=-10))
    assert g.fingerprint() != louder.fingerprint()


def test_silence_is_zero():
    [clip] = SilenceGenerator(SilenceGenerator.Params(channels=2)).generate([Prompt("a", "b")], 0, 0.25)
    assert clip.wav.shape == (2, 8000) and not clip.wav.any()


def test_tfidf_matches_an_independent_computation():
    texts = ["calm piano melody", "loud rock guitar", "calm acoustic guitar", "piano piano jazz"]
    index = TfidfIndex(texts)
    query = "calm guitar"
    n = len(texts)
    docs = [tokenize(t) for t in texts]
    vocab = sorted({w for d in docs for w in d})
    idf = {w: math.log((1 + n) / (1 + sum(w in d for d in docs))) + 1 for w in vocab}

    def vec(tokens):
        v = np.array([tokens.count(w) * idf[w] for w in vocab])
        return v / (np.linalg.norm(v) or 1)

    expected = np.array([vec(d) @ vec(tokenize(query)) for d in docs])
    np.testing.assert_allclose(index.scores(query), expected, atol=1e-12)
    assert int(np.argmax(index.scores(query))) == 2
    np.testing.assert_allclose(index.scores("calm guitar", "overlap"), [1 / 4, 1 / 4, 2 / 3, 0])


def test_retrieval_returns_the_nearest_training_clip(tones, tmp_path):
    def open_dataset(name, params):
        assert name == "audio-folder"
        return AudioFolder(AudioFolder.Params(**params))

    train = {"name": "audio-folder", "params": {"root": str(tones), "split": "train"}}
    g = RetrievalGenerator(RetrievalGenerator.Params(train=train), Context(open_dataset=open_dataset))
    assert g.check() == []
    g.load()
    prompt = Prompt("q", "a pure sine tone at 430 hertz, high pitch")
    [clip] = g.generate([prompt], seed=0, duration_s=1.0)
    assert clip.meta["retrieved_id"] == "tone_3"
    wav, _ = read_audio(tones / "train" / "tone_3.wav")
    np.testing.assert_array_equal(clip.wav, wav[:, :16000])
    # a prompt may not retrieve itself: the same id in the training set is excluded
    [own] = g.generate([Prompt("tone_3", prompt.text)], seed=0, duration_s=1.0)
    assert own.meta["retrieved_id"] != "tone_3"
