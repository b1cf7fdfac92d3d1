"""The runner with the real metrics: FAD (over the test embedder) against an independent scipy
computation on the same audio, and chroma cosine, on a tones suite."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg

from baselines.controls import NoiseGenerator
from bench.audio import read_audio, resample, to_mono
from bench.cli import main
from bench.datasets.audio_folder import AudioFolder
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
