"""hf-musicgen on a tiny random transformers checkpoint saved locally: check, generate, invariance."""

from __future__ import annotations

import numpy as np
import pytest

from baselines.hf_musicgen import HFMusicGen
from bench.api import Context, Prompt
from bench.testing import save_tiny_hf_musicgen


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_hf_musicgen(tmp_path_factory.mktemp("tiny_hf"))


def test_check_names_what_is_missing(tmp_path):
    [msg] = HFMusicGen(HFMusicGen.Params(model=str(tmp_path / "absent"))).check()
    assert "absent" in msg and "does not exist" in msg
    (tmp_path / "empty").mkdir()
    problems = HFMusicGen(HFMusicGen.Params(model=str(tmp_path / "empty"))).check()
    assert any("config.json" in p for p in problems) and any("no weights" in p for p in problems)
    assert any("tokenizer" in p for p in problems)
    [hub] = HFMusicGen(HFMusicGen.Params(model="nobody/no-such-model")).check()
    assert "local Hugging Face cache" in hub


@pytest.mark.slow
def test_generates_batch_invariant_clips(tiny_dir, tmp_path):
    g = HFMusicGen(HFMusicGen.Params(model=str(tiny_dir), top_k=4), Context(cache_dir=tmp_path))
    assert g.check() == []
    g.load("cpu")
    prompts = [Prompt("a", "calm piano"), Prompt("b", "loud rock guitar")]
    clips = g.generate(prompts, seed=0, duration_s=0.2)
    assert [c.wav.shape for c in clips] == [(1, 1600), (1, 1600)] and clips[0].sample_rate == 8000
    assert all(np.isfinite(c.wav).all() for c in clips)
    [alone] = g.generate(prompts[1:], seed=0, duration_s=0.2)
    np.testing.assert_array_equal(alone.wav, clips[1].wav)
    [other_seed] = g.generate(prompts[1:], seed=1, duration_s=0.2)
    assert not np.array_equal(other_seed.wav, clips[1].wav)
    fp = g.fingerprint()
    (tiny_dir / "model.safetensors").write_bytes((tiny_dir / "model.safetensors").read_bytes() + b"")
    assert g.fingerprint() == fp  # same bytes, same digest
    assert (tmp_path / "digests.json").is_file()
