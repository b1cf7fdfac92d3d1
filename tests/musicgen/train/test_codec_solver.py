"""Codec solver: losses fall on synthcaps crops, and an interrupted run resumes bit-identically."""

from __future__ import annotations

import json

import pytest
import torch

from musicgen.train.datasets import AudioDataset
from musicgen.train.recipes import CodecSolverConfig

codec_module = pytest.importorskip("musicgen.models.codec")
from musicgen.train.codec_solver import CodecSolver  # noqa: E402  (needs the codec)


def _codec(seed: int = 0):
    torch.manual_seed(seed)
    return codec_module.CompressionModel(codec_module.tiny_config())


def _solver(corpus, run_dir, seed=0, **cfg):
    config = CodecSolverConfig(**{**dict(steps=12, batch_size=2, segment_s=0.25, lr=1e-3, log_every=2,
                                         checkpoint_every=4, valid_batches=1), **cfg})
    kw = dict(duration_s=config.segment_s, sample_rate=8000)
    return CodecSolver(_codec(seed), AudioDataset(corpus, "train", **kw), config, run_dir,
                       valid=AudioDataset(corpus, "valid", **kw))


def test_codec_losses_fall(tiny_corpus, tmp_path):
    solver = _solver(tiny_corpus, tmp_path / "run", steps=24)
    solver.train(progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["split"] == "train"]
    first, last = train[0], train[-1]
    assert last["mel"] < 0.8 * first["mel"], (first, last)
    assert {"l1", "mel", "commitment", "audio_s_per_s", "loss"} <= set(last)
    valid = [r for r in records if r["split"] == "valid"]
    assert valid and {"l1", "mel"} <= set(valid[-1])
    folder = solver.export(tmp_path / "export")
    again = codec_module.CompressionModel.from_pretrained(folder)
    wav = torch.randn(1, 1, 800) * 0.1
    assert torch.equal(again.encode(wav), solver.codec.eval().encode(wav))


def test_interrupted_codec_run_resumes_exactly(tiny_corpus, tmp_path):
    straight = _solver(tiny_corpus, tmp_path / "a")
    straight.train(progress=False)
    first = _solver(tiny_corpus, tmp_path / "b")
    first.train(until_step=6, progress=False)  # checkpoint at 4; steps 5-6 are lost
    del first
    torch.manual_seed(1234)
    second = _solver(tiny_corpus, tmp_path / "b", seed=5)
    assert second.resume() and second.step == 4
    second.train(progress=False)
    want, got = straight.codec.state_dict(), second.codec.state_dict()
    assert want.keys() == got.keys()
    for name in want:
        assert torch.equal(want[name], got[name]), name
