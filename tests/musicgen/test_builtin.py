"""Built-in models resolve by ``builtin:NAME`` offline, and a native folder may reference its codec."""

from __future__ import annotations

import json

import pytest
import torch

from musicgen import MusicGen
from musicgen.checkpoints.files import MissingCheckpointFile, resolve_local


def test_unknown_builtin_lists_the_known_ones():
    with pytest.raises(MissingCheckpointFile, match=r"no built-in model.*codec-small"):
        resolve_local("builtin:no-such-model")


def test_builtin_musicgen_loads_and_generates_deterministically():
    model = MusicGen.from_pretrained("builtin:musicgen-synthcaps-small")
    model.set_generation_params(duration_s=0.4)
    a, tokens = model.generate(["a calm ambient pad in C major"], seed=3, return_tokens=True)
    b = model.generate(["a calm ambient pad in C major"], seed=3)
    assert a.shape[0] == 1 and a.shape[1] == model.codec.channels
    assert tokens.shape[1] == model.lm.config.num_codebooks
    assert torch.equal(a, b)


def test_codec_reference_round_trip_and_mismatch(tmp_path):
    model = MusicGen.from_pretrained("builtin:musicgen-synthcaps-small")
    model.save_pretrained(str(tmp_path / "ref"), codec_ref="builtin:codec-small")
    assert not (tmp_path / "ref" / "codec").exists()
    assert json.loads((tmp_path / "ref" / "musicgen.json").read_text())["codec"] == "builtin:codec-small"
    again = MusicGen.from_pretrained(str(tmp_path / "ref"))
    for (name, p), (_, q) in zip(model.codec.state_dict().items(), again.codec.state_dict().items()):
        assert torch.equal(p, q), name
    with torch.no_grad():
        next(model.codec.parameters()).add_(1.0)
    with pytest.raises(ValueError, match="other weights"):
        model.save_pretrained(str(tmp_path / "bad"), codec_ref="builtin:codec-small")
