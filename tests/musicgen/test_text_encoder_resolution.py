"""The T5 encoder of an audiocraft checkpoint is found under every spelling a user's cache can hold
(``t5-base`` as audiocraft asks for it -> ``models--t5-base``; ``google-t5/t5-base``; ``google/flan-t5-*``
as ``xp.cfg`` may name it), in a local folder, or where ``text_encoder=PATH`` says; a miss names every
place looked at."""

from __future__ import annotations

import shutil

import pytest
import torch

from musicgen import MusicGen
from musicgen.checkpoints.files import MissingCheckpointFile, resolve_local
from musicgen.checkpoints.text_encoder import find_text_encoder, text_encoder_name
from tests.musicgen.audiocraft_fixture import cache_snapshot, save_t5, write_audiocraft_folder

TEXT = ["calm piano"]


def _tokens(model: MusicGen) -> torch.Tensor:
    model.set_generation_params(duration_s=6 / model.frame_rate, use_sampling=False)
    return model.generate(TEXT, return_tokens=True)[1]


@pytest.mark.parametrize("cached_as, asked_as", [("t5-base", "t5-base"), ("t5-base", "google-t5/t5-base"),
                                                 ("google-t5/t5-base", "t5-base"),
                                                 ("google/flan-t5-base", "google/flan-t5-base")])
def test_every_cache_spelling_resolves(hf_model, hub_cache, cached_as, asked_as):
    snap = save_t5(hf_model[0], cache_snapshot(hub_cache, cached_as))
    assert resolve_local(asked_as) == snap
    assert find_text_encoder(None, asked_as) == snap


def test_audiocraft_folder_finds_the_t5_its_config_names_in_the_cache(hf_model, hub_cache, tmp_path):
    model, hf_folder = hf_model
    plain = write_audiocraft_folder(model, hf_folder, tmp_path / "a")
    reference = _tokens(MusicGen.from_pretrained(str(plain)))
    for name, cached_as in (("t5-base", "t5-base"), ("google/flan-t5-base", "google/flan-t5-base")):
        cfg = ("transformer_lm:\n  num_heads: 4\nconditioners:\n  description:\n    model: t5\n"
               f"    t5:\n      name: {name}\n")
        ac = write_audiocraft_folder(model, hf_folder, tmp_path / name.replace("/", "_"), cfg, t5=False)
        with pytest.raises(MissingCheckpointFile) as err:
            MusicGen.from_pretrained(str(ac))
        save_t5(model, cache_snapshot(hub_cache, cached_as))
        assert torch.equal(_tokens(MusicGen.from_pretrained(str(ac))), reference)
        shutil.rmtree(hub_cache / ("models--" + cached_as.replace("/", "--")))
    assert "google/flan-t5-base" in str(err.value)


def test_explicit_text_encoder_path_wins_and_is_the_only_place_used(hf_model, tmp_path):
    model, hf_folder = hf_model
    ac = write_audiocraft_folder(model, hf_folder, tmp_path / "ac", t5=False)
    t5 = save_t5(model, tmp_path / "elsewhere" / "my-t5")
    loaded = MusicGen.from_pretrained(str(ac), text_encoder=str(t5))
    assert loaded.text_conditioner.name_or_path == str(t5)
    with pytest.raises(MissingCheckpointFile, match=r"text_encoder='.*nowhere'.*does not exist"):
        MusicGen.from_pretrained(str(ac), text_encoder=str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="only audiocraft checkpoints"):
        MusicGen.from_pretrained(str(hf_folder), text_encoder=str(t5))


def test_a_miss_names_every_place_looked_at(hf_model, hub_cache, tmp_path):
    model, hf_folder = hf_model
    ac = write_audiocraft_folder(model, hf_folder, tmp_path / "ac", t5=False)
    (ac / "t5").mkdir()
    (ac / "t5" / "config.json").write_text("{}")  # an incomplete copy
    with pytest.raises(MissingCheckpointFile) as err:
        MusicGen.from_pretrained(str(ac))
    msg = str(err.value)
    for place in (ac / "t5", ac / "text_encoder", ac / "t5-base", hub_cache / "models--t5-base",
                  hub_cache / "models--google-t5--t5-base"):
        assert str(place) in msg
    assert "has no weights" in msg and "text_encoder=PATH" in msg
    assert "huggingface-cli download t5-base" in msg


def test_text_encoder_name_from_xp_cfg():
    assert text_encoder_name({}) == "t5-base"
    assert text_encoder_name({"conditioners": {"description": {"model": "t5", "t5": {"name": "t5-large"}}}}) \
        == "t5-large"
    with pytest.raises(ValueError, match="conditioners.description.model is 'lut'"):
        text_encoder_name({"conditioners": {"description": {"model": "lut"}}})


def test_file_paths_are_not_taken_for_hub_ids(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for path in ("weights/vggish-10086976.pth", "clap.pt", "ckpt/model.safetensors"):
        with pytest.raises(MissingCheckpointFile) as err:
            resolve_local(path)
        assert "huggingface-cli" not in str(err.value) and path in str(err.value)
    (tmp_path / "models").mkdir()
    with pytest.raises(MissingCheckpointFile) as err:
        resolve_local("models/small-delay")  # its folder exists: a path, not a repo
    assert "huggingface-cli" not in str(err.value)
