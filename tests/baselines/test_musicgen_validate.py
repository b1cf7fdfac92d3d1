"""``bench validate`` on MusicGen checkpoints and weight files as users have them: the suite's
``text_encoder`` param, an audiocraft folder whose T5 is missing (every place looked at is named),
placeholder (empty) and foreign weight files, a released-style codec reference that is not cached;
one line per file with one plain instruction, never a hub command for a file path."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from baselines.musicgen import MusicGenGenerator
from bench.api import Context, Prompt
from bench.cli import main
from tests.musicgen.audiocraft_fixture import save_t5, write_audiocraft_folder


def test_suite_text_encoder_param_and_places_named(hf_model, hub_cache, tmp_path):
    model, hf_folder = hf_model
    ac = write_audiocraft_folder(model, hf_folder, tmp_path / "models" / "ac", t5=False)
    plain = MusicGenGenerator(MusicGenGenerator.Params(checkpoint="models/ac"), Context(base_dir=tmp_path))
    [problem] = plain.check()
    for place in (ac / "t5", ac / "text_encoder", hub_cache / "models--t5-base",
                  hub_cache / "models--google-t5--t5-base"):
        assert str(place) in problem
    save_t5(model, tmp_path / "encoders" / "t5")
    g = MusicGenGenerator(MusicGenGenerator.Params(checkpoint="models/ac", text_encoder="encoders/t5",
                                                   use_sampling=False),
                          Context(base_dir=tmp_path, cache_dir=tmp_path / "cache"))
    assert g.check() == []
    [clip] = g.generate([Prompt("a", "calm piano")], seed=0, duration_s=0.1)
    assert clip.tokens is not None and np.isfinite(clip.wav).all()
    other = MusicGenGenerator(MusicGenGenerator.Params(checkpoint="models/ac", text_encoder="encoders/t5-b"),
                              Context(base_dir=tmp_path, cache_dir=tmp_path / "cache"))
    assert "text_encoder='encoders/t5-b'" in other.check()[0]
    with pytest.raises(ValueError, match="text_encoder says where"):
        MusicGenGenerator.Params(recipe="lm-small-synthcaps", text_encoder="x")


def test_placeholders_and_references_fail_with_one_instruction(hf_model, hub_cache, tmp_path):
    model, hf_folder = hf_model
    ac = write_audiocraft_folder(model, hf_folder, tmp_path / "ac")
    g = MusicGenGenerator(MusicGenGenerator.Params(checkpoint=str(ac)))
    assert g.check() == []
    (ac / "state_dict.bin").write_bytes(b"")
    [line] = g.check()
    assert "state_dict.bin is empty" in line and "Copy the audiocraft checkpoint folder" in line
    import torch

    torch.save({"best_state": {"something.else": torch.zeros(1)}}, ac / "state_dict.bin")
    assert "emb" in g.check()[0] and "not the expected checkpoint" in g.check()[0]
    write_audiocraft_folder(model, hf_folder, ac)
    torch.save({"pretrained": "facebook/encodec_32khz"}, ac / "compression_state_dict.bin")
    [line] = g.check()
    assert "'facebook/encodec_32khz'" in line and "huggingface-cli download facebook/encodec_32khz" in line
    (hf_folder / "model.safetensors").rename(hf_folder / "moved")
    try:
        transformers_layout = MusicGenGenerator(MusicGenGenerator.Params(checkpoint=str(hf_folder)))
        assert "no weights" in transformers_layout.check()[0]
        (hf_folder / "model.safetensors").write_bytes(b"\x08")
        assert "not a safetensors file" in transformers_layout.check()[0]
    finally:
        (hf_folder / "moved").replace(hf_folder / "model.safetensors")


def test_validate_names_each_weight_file_plainly(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "music_audioset_epoch_15_esc_90.14.pt").touch()  # a placeholder
    suite = tmp_path / "suite.yaml"
    suite.write_text(textwrap.dedent("""\
        name: w
        dataset: {name: synthcaps, params: {split: test, num_clips: 3, duration_s: 1.0, sample_rate: 32000}}
        generation: {duration_s: 1.0, seeds: [0]}
        generators:
          - {name: reference}
        metrics:
          - {name: fad, params: {embedder: vggish}}
          - {name: kl, params: {embedder: passt}}
          - {name: clap_score, params: {checkpoint: weights/music_audioset_epoch_15_esc_90.14.pt}}
        embedders:
          vggish: {weights: weights/vggish-10086976.pth}
          passt: {checkpoint: weights/passt.pt}
          clap: {checkpoint: weights/music_audioset_epoch_15_esc_90.14.pt}
        """))
    assert main(["validate", str(suite)]) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "weights/" in line]
    assert len(lines) == 3, err
    assert all("huggingface-cli" not in line and ".." not in line for line in lines)
    missing = "vggish-10086976.pth' does not exist. Download vggish-10086976.pth from"
    assert any(missing in line for line in lines)
    assert any("passt.pt' does not exist. Download" in line for line in lines)
    assert any("esc_90.14.pt is empty (0 bytes)" in line and line.endswith("and pass its path.")
               for line in lines)
