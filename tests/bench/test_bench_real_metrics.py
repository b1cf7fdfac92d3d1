"""The runner with the real metrics: FAD (over the test embedder) against an independent scipy
computation on the same audio, and chroma cosine, on a tones suite."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg

from baselines.controls import NoiseGenerator
from bench.api import AudioClip, Generator, Params
from bench.audio import read_audio, resample, to_mono
from bench.cli import main
from bench.datasets.audio_folder import AudioFolder
from bench.metrics.memorization import Memorization
from bench.testing import BandEmbedder

SUITE = """
name: real-metrics
dataset: {name: audio-folder, params: {root: data, split: test}}
generation: {duration_s: 1.0, seeds: [0], batch_size: 5, loudness_lufs: null}
generators:
  - {name: reference}
  - {name: noise, params: {sample_rate: 16000}}
metrics:
  - {name: fad, params: {embedder: test-bands, n_bootstrap: 10}}
  - {name: chroma_cosine, params: {n_bootstrap: 10}}
report: {html: null}
"""


def _frechet(x: np.ndarray, y: np.ndarray) -> float:
    mu_x, mu_y = x.mean(0), y.mean(0)
    cov_x, cov_y = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(cov_x @ cov_y).real
    return float(((mu_x - mu_y) ** 2).sum() + np.trace(cov_x + cov_y - 2 * covmean))


@pytest.mark.slow
def test_fad_and_chroma_through_the_runner(tones, write_suite, plugins, tmp_path):
    run = tmp_path / "run"
    assert main(["run", str(write_suite(SUITE)), "--out", str(run), "--no-progress"]) == 0
    results = json.loads((run / "results.json").read_text())
    records = {(r["generator"], r["metric"]): r for r in results["records"]}
    fad_ref, fad_noise = records[("reference", "fad_test-bands")], records[("noise", "fad_test-bands")]
    assert fad_ref["n"] == 5 and fad_ref["higher_is_better"] is False
    assert abs(fad_ref["value"]) < 1e-6  # the dataset's own audio against itself
    assert fad_ref["protocol"]["embedders"]["test-bands"]["sample_rate"] == 8000

    # independent: embed the same audio with the embedder directly, Frechet distance with scipy
    emb = BandEmbedder()
    prompts = AudioFolder(AudioFolder.Params(root=tones, split="test")).prompts()
    ref = np.concatenate([emb.embed(resample(to_mono(read_audio(p.reference_path)[0][:, :16000]),
                                             16000, 8000)) for p in prompts])
    clips = NoiseGenerator(NoiseGenerator.Params(sample_rate=16000)).generate(prompts, seed=0, duration_s=1.0)
    gen = np.concatenate([emb.embed(resample(to_mono(c.wav), 16000, 8000)) for c in clips])
    expected = _frechet(gen.astype(np.float64), ref.astype(np.float64))
    assert fad_noise["value"] == pytest.approx(expected, rel=1e-6)
    assert fad_noise["ci_low"] is not None and fad_noise["ci_low"] <= fad_noise["ci_high"]

    chroma_ref, chroma_noise = records[("reference", "chroma_cosine")], records[("noise", "chroma_cosine")]
    assert chroma_ref["value"] == pytest.approx(1.0) and chroma_noise["value"] < 0.5


class TokenCopy(Generator):
    """Returns the reference audio (``copy_reference: true``) or noise, with tokens from ``encode_reference``:
    a toy codec that quantises every 64th sample."""

    class Params(Params):
        copy_reference: bool = True

    def load(self, device: str = "cpu") -> None:
        pass

    def fingerprint(self) -> str:
        return f"token-copy-{self.params.copy_reference}"

    def encode_reference(self, wav: np.ndarray, sample_rate: int) -> np.ndarray:
        return np.round(wav[:1, ::64] * 20).astype(np.int64)

    def generate(self, prompts, seed, duration_s):
        out = []
        for p in prompts:
            wav, sr = read_audio(p.reference_path)
            wav = wav[:, :round(duration_s * sr)]
            if not self.params.copy_reference:
                noise = np.random.default_rng([seed, len(p.id)]).standard_normal(wav.shape)
                wav = (noise * 0.1).astype(np.float32)
            out.append(AudioClip(wav, sr, p.id, seed, tokens=self.encode_reference(wav, sr)))
        return out


class TokenMemorization(Memorization):
    needs_reference_tokens = True


TOKENS_SUITE = """
name: memorization
dataset: {name: audio-folder, params: {root: data, split: test}}
generation: {duration_s: 1.0, seeds: [0], loudness_lufs: null}
generators:
  - {name: token-copy, label: copy}
  - {name: token-copy, label: fresh, params: {copy_reference: false}}
metrics: [{name: memorization-tokens, params: {embedder: test-bands}}]
report: {html: null}
"""


def test_reference_tokens_reach_token_memorization(tones, write_suite, plugins, tmp_path):
    from bench.registry import GENERATORS, METRICS

    GENERATORS.register("token-copy", TokenCopy)
    METRICS.register("memorization-tokens", TokenMemorization)
    try:
        run = tmp_path / "run"
        assert main(["run", str(write_suite(TOKENS_SUITE)), "--out", str(run), "--no-progress"]) == 0
    finally:
        GENERATORS.unregister("token-copy")
        METRICS.unregister("memorization-tokens")
    results = json.loads((run / "results.json").read_text())
    records = {(r["generator"], r["metric"]): r for r in results["records"]}
    assert records[("copy", "exact_match_rate")]["value"] == 1.0
    assert records[("fresh", "exact_match_rate")]["value"] == 0.0
    assert records[("copy", "exact_match_rate")]["n"] == 5
    assert len(list((run / "cache" / "tokens").glob("*/*.npz"))) == 10  # cached per generator and clip
