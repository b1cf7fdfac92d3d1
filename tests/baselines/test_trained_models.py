"""Train-or-reuse in the ``musicgen`` generator: a tiny recipe trains once, the second use reuses it."""

from __future__ import annotations

import json

import pytest
import yaml
from pydantic import ValidationError

from baselines.musicgen import MusicGenGenerator
from baselines.trained_models import SIZES, merge_overrides, place_recipe, recipe_digest, resolve_recipe
from bench.api import Context, Prompt


def _tiny_recipe(tmp_path) -> str:
    recipe = {
        "kind": "lm", "run_dir": "ignored",
        "data": {"kind": "synthcaps", "root": "ignored", "num_clips": 6, "duration_s": 2.0},
        "codec": {"preset": "tiny", "seed": 0},
        "model": {"preset": "tiny", "overrides": {"max_positions": 128}},
        "conditioner": {"kind": "lut", "dim": 16},
        "train": {"steps": 3, "batch_size": 2, "segment_frames": 40, "warmup_steps": 1, "log_every": 1,
                  "valid_batches": 1},
    }
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(recipe))
    return "tiny.yaml"


def _generator(tmp_path, **params) -> MusicGenGenerator:
    ctx = Context(cache_dir=tmp_path / "run" / "cache", base_dir=tmp_path)
    return MusicGenGenerator(MusicGenGenerator.Params(**params), ctx)


@pytest.mark.slow
def test_second_use_reuses_the_trained_model_without_training(tmp_path, monkeypatch):
    name = _tiny_recipe(tmp_path)
    first = _generator(tmp_path, recipe=name, pattern="parallel")
    assert first.check() == []
    folder = first._folder()
    root = folder.parent
    assert folder.is_dir() and (root / "done.json").is_file()
    steps = [json.loads(x)["step"] for x in (root / "run" / "metrics.jsonl").read_text().splitlines()
             if json.loads(x)["split"] == "train"]
    assert steps == [1, 2, 3]
    done = json.loads((root / "done.json").read_text())
    assert done["step"] == 3 and done["recipe"]["pattern"] == {"name": "parallel"}
    assert root.name == done["digest"] == recipe_digest(resolve_recipe(name, tmp_path, pattern="parallel"))
    log_before = (root / "run" / "metrics.jsonl").stat().st_mtime_ns

    import musicgen.train.run as run_module

    def no_training(*args, **kwargs):
        raise AssertionError("the second use trained again")

    monkeypatch.setattr(run_module, "run_recipe", no_training)
    second = _generator(tmp_path, recipe=name, pattern="parallel")
    assert second._folder() == folder
    assert second.fingerprint() == first.fingerprint()
    assert (root / "run" / "metrics.jsonl").stat().st_mtime_ns == log_before
    clips = second.generate([Prompt("p0", "an upbeat techno groove in A minor")], seed=0, duration_s=0.2)
    assert clips[0].wav.shape[-1] > 0 and clips[0].tokens is not None

    # another pattern is another model: it would train (and here, with training disabled, it fails)
    other = _generator(tmp_path, recipe=name, pattern="delay")
    with pytest.raises(AssertionError, match="trained again"):
        other._folder()


def test_digest_follows_what_is_trained_not_where_it_is_written(tmp_path):
    name = _tiny_recipe(tmp_path)
    base = resolve_recipe(name, tmp_path)
    moved = merge_overrides(base, {"run_dir": "elsewhere", "export": "x", "data": {"root": "y"}})
    assert recipe_digest(moved) == recipe_digest(base)
    longer = resolve_recipe(name, tmp_path, overrides={"train": {"steps": 4}})
    assert longer["train"]["batch_size"] == 2  # nested merge keeps the rest of the section
    assert recipe_digest(longer) != recipe_digest(base)
    sized = resolve_recipe(name, tmp_path, size="large")
    assert sized["model"]["overrides"] == {"max_positions": 128, **SIZES["large"]}
    digest, placed, folder = place_recipe(base, tmp_path / "cache")
    assert folder == tmp_path / "cache" / "models" / digest
    assert placed["run_dir"] == str(folder / "run")
    assert placed["data"]["root"].startswith(str(tmp_path / "cache" / "data" / "synthcaps-"))
    # every model of one corpus shares it (and its token cache)
    assert place_recipe(sized, tmp_path / "cache")[1]["data"]["root"] == placed["data"]["root"]


def test_bad_recipe_params_are_reported_by_check(tmp_path):
    name = _tiny_recipe(tmp_path)
    assert "unknown size 'huge'" in _generator(tmp_path, recipe=name, size="huge").check()[0]
    assert "unknown pattern 'zigzag'" in _generator(tmp_path, recipe=name, pattern="zigzag").check()[0]
    bad = _generator(tmp_path, recipe=name, overrides={"train": {"stepz": 3}}).check()
    assert len(bad) == 1 and "train.stepz" in bad[0] and name in bad[0]
    assert "no recipe file" in _generator(tmp_path, recipe="nope").check()[0]
    with pytest.raises(ValidationError, match="exactly one of checkpoint"):
        MusicGenGenerator.Params(checkpoint="x", recipe=name)
    with pytest.raises(ValidationError, match="exactly one of checkpoint"):
        MusicGenGenerator.Params()


def test_fingerprint_covers_a_referenced_codec(tmp_path):
    """A native folder that references its codec (``"codec": PATH`` in musicgen.json) changes
    fingerprint when that codec's weights change, though the folder itself did not."""
    from musicgen.checkpoints.musicgen_formats import save_musicgen
    from musicgen.testing import tiny_musicgen

    model = tiny_musicgen(seed=0)
    codec_dir = tmp_path / "codec"
    model.codec.save_pretrained(str(codec_dir))

    save_musicgen(model, tmp_path / "mg", codec_ref=str(codec_dir))
    gen = _generator(tmp_path, checkpoint=str(tmp_path / "mg"))
    before = gen.fingerprint()
    assert gen.fingerprint() == before
    weights = next(p for p in codec_dir.rglob("*.safetensors"))
    weights.write_bytes(weights.read_bytes() + b"\0")  # another file: another digest
    assert _generator(tmp_path, checkpoint=str(tmp_path / "mg")).fingerprint() != before


def test_stereo_pattern_trains_on_stereo_tokens_and_generates_stereo(tmp_path):
    """``codec.stereo`` runs the codec on L and R (2K codebooks, mono clips read as dual mono); a
    stereo pattern without it is a reported problem, not a model trained on the wrong layout."""
    name = _tiny_recipe(tmp_path)
    mono = _generator(tmp_path, recipe=name, pattern="stereo_delay").check()
    assert len(mono) == 1 and "codec.stereo: true" in mono[0] and "stereo_delay" in mono[0]
    gen = _generator(tmp_path, recipe=name, pattern="stereo_partial_delay",
                     overrides={"codec": {"stereo": True}, "train": {"steps": 2}})
    assert gen.check() == []
    folder = gen._folder()
    config = json.loads((folder / "musicgen.json").read_text())
    assert config["stereo"] is True and config["pattern"] == "stereo_partial_delay"
    index = json.loads(next((folder.parents[2] / "data").rglob("index.json")).read_text())
    assert index["num_codebooks"] == 8  # tiny codec: 4 per channel, interleaved L/R
    clips = gen.generate([Prompt("p0", "a calm ambient piece in A minor")], seed=0, duration_s=0.2)
    assert clips[0].wav.shape[0] == 2 and clips[0].tokens.shape[0] == 8
