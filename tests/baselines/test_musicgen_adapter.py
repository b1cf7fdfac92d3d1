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
    assert g._model.generation_params["kernel"] == "rowwise"  # the default reaches the model
    [alone] = g.generate(prompts[1:], seed=0, duration_s=0.2)
    np.testing.assert_array_equal(alone.tokens, clips[1].tokens)
    np.testing.assert_allclose(alone.wav, clips[1].wav, atol=1e-5)
    assert g.fingerprint() == g.fingerprint()
    ref = g.encode_reference(clips[0].wav, sr)
    assert ref.shape[0] == clips[0].tokens.shape[0] and ref.dtype == np.int64


SUITE = """name: kernels
dataset: {{name: synthcaps, params: {{split: test, num_clips: 6, duration_s: 1.0, sample_rate: 8000}}}}
generation: {{duration_s: 1.0, seeds: [0]}}
generators:
  - {{name: musicgen, label: default, params: {{checkpoint: "builtin:musicgen-synthcaps-small"}}}}
  - name: musicgen
    label: fast
    params: {{checkpoint: "builtin:musicgen-synthcaps-small", kernel: {kernel}}}
metrics: [{{name: chroma_cosine}}]
"""


def test_kernel_is_a_suite_parameter_and_defaults_to_a_batch_independent_one(tmp_path):
    from bench.suite import load_suite
    from bench.yamlsource import SuiteError
    from musicgen.modules.fast_linear import LINEAR_KERNELS

    suite = tmp_path / "kernels.yaml"
    suite.write_text(SUITE.format(kernel="auto"))
    planned = load_suite(suite, check=False)
    assert [g.params.kernel for g in planned.generators] == ["rowwise", "auto"]
    assert "rowwise" in LINEAR_KERNELS  # F.linear one batch row at a time: batch-invariant
    suite.write_text(SUITE.format(kernel="fastest"))
    with pytest.raises(SuiteError, match=r"kernels.yaml:8: .*kernel.*unknown kernel 'fastest'"):
        load_suite(suite, check=False)
