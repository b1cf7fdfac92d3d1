"""Parity with audiocraft 1.3.0 itself on folders it exported (``fixtures/audiocraft``, written by
``fixtures/audiocraft/make_reference.py``): its hydra configs composed a tiny MusicGen, a tiny
MusicGen-Melody and a tiny stereo MusicGen (8 interleaved codebooks of the mono codec, as the released
stereo fine-tunes), all with ``dataset.segment_duration: 1``; ``export_lm`` / ``export_encodec`` wrote
the released layout; its T5 is found as ``t5-small`` in a Hugging Face cache; ``reference.json`` holds
the codes its ``MusicGen.generate`` / ``generate_with_chroma`` returned (greedy) and, for the text and
stereo cases, a summary of the audio its EnCodec decoded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from musicgen import MusicGen
from tests.musicgen.fixtures.audiocraft.make_reference import melody_wavs

FIXTURE = Path(__file__).parent / "fixtures" / "audiocraft"
REFERENCE = json.loads((FIXTURE / "reference.json").read_text())


@pytest.fixture
def folders(tmp_path, monkeypatch):
    """The exported folders as a user has them (codec file beside each LM file), T5 in the HF cache."""
    monkeypatch.setenv("HF_HUB_CACHE", str(FIXTURE / "hub"))
    out = {}
    for kind in ("text", "melody", "stereo"):
        folder = tmp_path / kind
        folder.mkdir()
        shutil.copy(FIXTURE / kind / "state_dict.bin", folder)
        shutil.copy(FIXTURE / "compression_state_dict.bin", folder)
        out[kind] = folder
    return out


def _params(model: MusicGen, case: dict) -> None:
    model.set_generation_params(duration_s=case["duration"], extend_stride_s=case.get("extend_stride", 0.5),
                                use_sampling=False, cfg_coef=case["cfg_coef"],
                                two_step_cfg=case["two_step_cfg"])


@pytest.mark.parametrize("kind, name", [("text", "one_window"), ("text", "extended"),
                                        ("stereo", "one_window")])
def test_text_codes_and_audio_equal_audiocraft(folders, kind, name):
    case = REFERENCE["cases"][kind][name]
    model = MusicGen.from_pretrained(str(folders[kind]))
    assert model.max_duration_s == REFERENCE["segment_duration"]  # xp.cfg dataset.segment_duration
    _params(model, case)
    wav, tokens = model.generate(REFERENCE["texts"], return_tokens=True)
    assert tokens.tolist() == case["codes"]
    # the exported EnCodec decodes those codes to audiocraft's audio
    assert list(wav.shape) == case["audio_shape"]
    torch.testing.assert_close(wav[:, 0, :64], torch.tensor(case["audio_head"]), atol=1e-4, rtol=0)
    torch.testing.assert_close(wav.abs().sum(dim=(1, 2)), torch.tensor(case["audio_abs_sum"]), rtol=1e-4,
                               atol=0)


@pytest.mark.parametrize("name", ["batched_cfg", "two_step_cfg", "extended"])
def test_melody_codes_equal_audiocraft(folders, name):
    case = REFERENCE["cases"]["melody"][name]
    model = MusicGen.from_pretrained(str(folders["melody"]))
    _params(model, case)
    tokens = model.generate_with_chroma(REFERENCE["texts"], melody_wavs(), 32000, return_tokens=True)[1]
    assert tokens.tolist() == case["codes"]


def test_settings_survive_a_native_save(folders, tmp_path):
    model = MusicGen.from_pretrained(str(folders["melody"]))
    assert (model.max_duration_s, model.melody.chroma_length, model.two_step_cfg_coef) == (1.0, 8, 3.0)
    model.save_pretrained(str(tmp_path / "native"))
    again = MusicGen.from_pretrained(str(tmp_path / "native"))
    assert (again.max_duration_s, again.melody.chroma_length, again.two_step_cfg_coef) == (1.0, 8, 3.0)
    case = REFERENCE["cases"]["melody"]["two_step_cfg"]
    _params(again, case)
    tokens = again.generate_with_chroma(REFERENCE["texts"], melody_wavs(), 32000, return_tokens=True)[1]
    assert tokens.tolist() == case["codes"]


def test_torch_multihead_attention_layout_loads_alike(folders):
    """A model trained with ``memory_efficient: false`` (torch's MultiheadAttention) names its weights
    ``self_attn.mha.*`` / ``cross_attention.mha.*``; audiocraft loads either layout, so do we."""
    path = folders["text"] / "state_dict.bin"
    pkg = torch.load(path, weights_only=True)
    renamed = {k.replace(".self_attn.", ".self_attn.mha.").replace(".cross_attention.",
                                                                   ".cross_attention.mha."): v
               for k, v in pkg["best_state"].items()}
    assert any(".cross_attention.mha.in_proj_weight" in k for k in renamed)
    torch.save({**pkg, "best_state": renamed}, path)
    case = REFERENCE["cases"]["text"]["one_window"]
    model = MusicGen.from_pretrained(str(folders["text"]))
    _params(model, case)
    assert model.generate(REFERENCE["texts"], return_tokens=True)[1].tolist() == case["codes"]
