"""``musicgen train RECIPE.yaml`` end to end on a tiny recipe; a bad recipe fails with the key named."""

from __future__ import annotations

import json

import pytest
import yaml

from musicgen.cli import main as musicgen_main


def _needs(*modules: str) -> None:
    for name in ("musicgen.models.codec", "musicgen.models.lm", *modules):
        pytest.importorskip(name)


def _recipe(tmp_path, conditioner: str, steps: int = 6) -> dict:
    return {
        "kind": "lm", "run_dir": str(tmp_path / "run"),
        "data": {"kind": "synthcaps", "root": str(tmp_path / "sc"), "num_clips": 6, "duration_s": 2.0},
        "codec": {"preset": "tiny", "seed": 0},
        "model": {"preset": "tiny", "overrides": {"max_positions": 128}},
        "conditioner": {"kind": conditioner, "dim": 16},
        "train": {"steps": steps, "batch_size": 2, "segment_frames": 40, "warmup_steps": 2, "log_every": 1,
                  "checkpoint_every": 3, "valid_batches": 1},
    }


def test_train_command_resumes_and_logs(tmp_path, capsys):
    _needs()
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(_recipe(tmp_path, "none")))
    assert musicgen_main(["train", str(path), "--steps", "4", "--no-progress"]) == 0
    metrics = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics if m["split"] == "train"] == [1, 2, 3, 4]
    assert (tmp_path / "run" / "checkpoints" / "step_00000003").is_dir()
    assert (tmp_path / "sc" / ".tokens").is_dir()
    pytest.importorskip("musicgen.models.musicgen")
    assert musicgen_main(["train", str(path), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "resumed" in err and "step 3" in err
    metrics = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics if m["split"] == "train"][-3:] == [4, 5, 6]
    assert any(m["split"] == "valid" for m in metrics)
    assert (tmp_path / "run" / "model").is_dir()


def test_train_command_with_text_conditioner_exports_a_loadable_model(tmp_path):
    _needs("musicgen.models.conditioners", "musicgen.models.musicgen")
    from musicgen.models.musicgen import MusicGen

    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(_recipe(tmp_path, "lut", steps=3)))
    assert musicgen_main(["train", str(path), "--no-progress"]) == 0
    model = MusicGen.from_pretrained(str(tmp_path / "run" / "model"))
    model.set_generation_params(duration_s=0.1)
    wav = model.generate(["a calm ambient piece in A minor"], seed=0)
    assert wav.shape[0] == 1 and wav.shape[-1] > 0


def test_bad_recipe_exits_2_and_names_key_and_file(tmp_path, capsys):
    bad = _recipe(tmp_path, "none")
    bad["train"]["learning_rate"] = 0.1
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    assert musicgen_main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "unknown key 'train.learning_rate'" in err


def test_codec_recipe_trains_and_exports(tmp_path):
    _needs()
    from musicgen.models.codec import CompressionModel

    recipe = {"kind": "codec", "run_dir": str(tmp_path / "run"),
              "data": {"kind": "synthcaps", "root": str(tmp_path / "sc"), "num_clips": 4, "duration_s": 1.0},
              "model": {"preset": "tiny", "overrides": {"n_filters": 4}},
              "train": {"steps": 2, "batch_size": 2, "segment_s": 0.25, "log_every": 1, "valid_batches": 1}}
    path = tmp_path / "codec.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert musicgen_main(["train", str(path), "--no-progress"]) == 0
    codec = CompressionModel.from_pretrained(tmp_path / "run" / "model")
    assert codec.sample_rate == 8000 and codec.config.n_filters == 4
    metrics = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["split"] for m in metrics] == ["train", "train", "valid"]


def test_recipe_on_the_builtin_codec_exports_a_folder_that_references_it(tmp_path):
    """``codec: {path: builtin:codec-small}`` (the shipped recipes' codec): the export records the
    reference as text instead of copying the codec, and loads back with that codec."""
    _needs("musicgen.models.conditioners", "musicgen.models.musicgen")
    from musicgen.models.musicgen import MusicGen

    recipe = _recipe(tmp_path, "lut", steps=2)
    recipe["codec"] = {"path": "builtin:codec-small"}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert musicgen_main(["train", str(path), "--no-progress"]) == 0
    folder = tmp_path / "run" / "model"
    assert json.loads((folder / "musicgen.json").read_text())["codec"] == "builtin:codec-small"
    assert not (folder / "codec").exists()
    model = MusicGen.from_pretrained(str(folder))
    assert model.sample_rate == 16000 and model.codec.num_codebooks == 4
