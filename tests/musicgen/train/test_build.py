"""``musicgen.train.build``: what a recipe names, built and checked before any training."""

from __future__ import annotations

import pytest

from musicgen.models.codec import StereoCompressionModel
from musicgen.models.codec_config import tiny_config
from musicgen.modules.pattern_types import DelayPattern
from musicgen.modules.patterns import get_pattern
from musicgen.train.build import build_codec, check_pattern_channels
from musicgen.train.recipes import CodecRef, RecipeError


def test_stereo_patterns_need_a_stereo_codec_by_their_channels_not_their_names():
    for pattern in ("stereo_delay", get_pattern("stereo_partial_delay", 8)):
        with pytest.raises(RecipeError, match=r"r\.yaml: pattern\.name 'stereo_.*' needs stereo tokens"):
            check_pattern_channels(pattern, 1, "r.yaml")
        check_pattern_channels(pattern, 2)
    check_pattern_channels("delay", 2)  # a mono pattern over the 2K interleaved codebooks is allowed
    check_pattern_channels(DelayPattern("stereo_named_mono", 4, [0, 1, 2, 3]), 1)
    with pytest.raises(RecipeError, match="needs stereo tokens"):
        check_pattern_channels(DelayPattern("custom", 4, [0, 0, 1, 1], channels=2), 1)


def test_build_codec_from_a_preset_is_seeded_and_can_be_stereo():
    a = build_codec(CodecRef(preset="tiny", seed=3))
    b = build_codec(CodecRef(preset="tiny", seed=3, stereo=True, num_codebooks=2))
    assert a.config == tiny_config() and not a.training
    assert isinstance(b, StereoCompressionModel) and b.channels == 2 and b.num_codebooks == 4
    assert all((p == q).all() for p, q in zip(a.parameters(), b.model.parameters()))
    with pytest.raises(RecipeError, match=r"codec\.preset must be one of \['musicgen_32khz', 'tiny'\]"):
        build_codec(CodecRef(preset="huge"))
