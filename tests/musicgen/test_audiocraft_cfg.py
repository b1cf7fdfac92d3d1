"""``xp.cfg`` fields that change generation are read (``dataset.segment_duration``, the guidance
coefficient, the chroma settings, the pattern) and values we do not reproduce are refused by name."""

from __future__ import annotations

import pytest

from musicgen.checkpoints.audiocraft_cfg import audiocraft_settings


def test_released_defaults_and_references():
    s = audiocraft_settings({}, 4, melody=True)
    assert (s.segment_duration_s, s.cfg_coef) == (30.0, 3.0)
    assert (s.chroma_sample_rate, s.chroma_n_fft) == (32000, 16384)
    cfg = {"sample_rate": 16000, "dataset": {"segment_duration": 10},
           "classifier_free_guidance": {"inference_coef": 4.5},
           "conditioners": {"self_wav": {"chroma_stem": {"sample_rate": "${sample_rate}", "radix2_exp": 12,
                                                          "match_len_on_eval": True}}}}
    s = audiocraft_settings(cfg, 4, melody=True)
    assert (s.segment_duration_s, s.cfg_coef) == (10.0, 4.5)
    assert (s.chroma_sample_rate, s.chroma_n_fft) == (16000, 4096)


@pytest.mark.parametrize("cfg, field", [
    ({"dataset": {"segment_duration": 0}}, "dataset.segment_duration"),
    ({"codebooks_pattern": {"modeling": "parallel"}}, "codebooks_pattern 'parallel'"),
    ({"codebooks_pattern": {"delay": {"delays": [0, 0, 0, 0]}}}, "delays [0, 0, 0, 0]"),
    ({"conditioners": {"self_wav": {"chroma_stem": {"n_chroma": 24}}}}, "n_chroma: 24"),
    ({"conditioners": {"description": {"t5": {"normalize_text": True}}}}, "normalize_text"),
])
def test_unsupported_values_are_named(cfg, field):
    import re

    with pytest.raises((ValueError, NotImplementedError), match=re.escape(field)):
        audiocraft_settings(cfg, 4, melody=True)
    assert audiocraft_settings({"codebooks_pattern": {"delay": {"delays": [0, 0, 1, 1, 2, 2, 3, 3]}}}, 8,
                               melody=False).segment_duration_s == 30.0
    # audiocraft's get_pretrained forces match_len_on_eval=True for melody models: accepted either way
    stem = {"conditioners": {"self_wav": {"chroma_stem": {"match_len_on_eval": False}}}}
    assert audiocraft_settings(stem, 4, melody=True).segment_duration_s == 30.0
