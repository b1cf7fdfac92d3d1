"""The ``musicgen`` adapter over our pipeline: checkpoint templates, check(), batch-invariant clips
with tokens (the default ``rowwise`` kernel), the ``kernel`` parameter from a suite."""

from __future__ import annotations

import numpy as np
import pytest

from baselines.musicgen import MusicGenGenerator
from bench.api import Context, Prompt


def test_checkpoint_template_and_check(tmp_path):
    g = MusicGenGenerator(MusicGenGenerator.Params(checkpoint=str(tmp_path / "{size}-{pattern}"),
                                                   size="small", pattern="delay"))
    assert g.checkpoint == str(tmp_path / "small-delay")
    [problem] = g.check()
    assert "small-delay" in problem and "does not exist" in problem
    (tmp_path / "models" / "small-delay").mkdir(parents=True)
    near_suite = MusicGenGenerator(MusicGenGenerator.Params(checkpoint="models/{size}-delay", size="small"),
                                   Context(base_dir=tmp_path))
    assert near_suite.checkpoint == str(tmp_path / "models" / "small-delay")  # relative to the suite
    hub_id = MusicGenGenerator(MusicGenGenerator.Params(checkpoint="facebook/musicgen-small"),
                               Context(base_dir=tmp_path))
    assert hub_id.checkpoint == "facebook/musicgen-small"  # not a local path: left for the HF cache
    bad = MusicGenGenerator(MusicGenGenerator.Params(checkpoint="m/{sise}"))
    with pytest.raises(ValueError, match="unknown parameter 'sise'"):
        bad.checkpoint  # noqa: B018


@pytest.mark.slow
def test_generates_clips_with_tokens_independent_of_the_batch(tmp_path):
    from musicgen.testing import tiny_musicgen

    folder = tmp_path / "tiny"
    tiny_musicgen(seed=0).save_pretrained(str(folder))
    g = MusicGenGenerator(MusicGenGenerator.Params(checkpoint=str(folder), top_k=8),
                          Context(cache_dir=tmp_path / "cache"))
    assert g.check() == []
    g.load("cpu")
    prompts = [Prompt("a", "calm piano"), Prompt("b", "loud rock guitar")]
    clips = g.generate(prompts, seed=0, duration_s=0.2)
    sr = clips[0].sample_rate
    assert [c.wav.shape[-1] for c in clips] == [round(0.2 * sr)] * 2
    assert clips[0].tokens is not None and clips[0].tokens.ndim == 2
    [alone] = g.generate(prompts[1:], seed=0, duration_s=0.2)
    np.testing.assert_array_equal(alone.tokens, clips[1].tokens)
    np.testing.assert_allclose(alone.wav, clips[1].wav, atol=1e-5)
    assert g.fingerprint() == g.fingerprint()
    ref = g.encode_reference(clips[0].wav, sr)
    assert ref.shape[0] == clips[0].tokens.shape[0] and ref.dtype == np.int64
