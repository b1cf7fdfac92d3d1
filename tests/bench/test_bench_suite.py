"""Suite validation: one clear error list naming file, line and field; nothing generated before it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cli import main
from bench.suite import load_suite
from bench.testing import TONES_SUITE
from bench.yamlsource import SuiteError


def _errors(path: Path, capsys, *extra: str) -> str:
    assert main(["validate", str(path), *extra]) == 1
    return capsys.readouterr().err


def test_valid_suite_resolves_every_plugin(tones, write_suite, plugins, tmp_path):
    planned = load_suite(write_suite(TONES_SUITE), run_dir=tmp_path / "run")
    assert [g.label for g in planned.generators] == ["reference", "noise", "silence", "retrieval"]
    assert planned.dataset.params.root == (tmp_path / "data").resolve()  # relative to the suite file
    assert list(planned.embedders) == ["test-bands"]
    assert planned.context.cache_dir == (tmp_path / "run" / "cache").resolve()


def test_matrix_expands_into_labelled_grid(tones, write_suite, plugins):
    text = TONES_SUITE.replace("  - {name: reference}\n", """\
  - name: noise
    label: "noise-{amplitude_dbfs}-{channels}"
    params: {sample_rate: 16000}
    matrix: {amplitude_dbfs: [-30, -10], channels: [1, 2]}
  - name: silence
    label: quiet
    matrix: {channels: [1, 2]}
""").replace("  - {name: noise, params: {sample_rate: 16000}}\n", "").replace(
        "  - {name: silence, params: {sample_rate: 16000}}\n", "")
    planned = load_suite(write_suite(text))
    labels = [g.label for g in planned.generators]
    assert labels[:4] == ["noise--30-1", "noise--30-2", "noise--10-1", "noise--10-2"]
    assert labels[4:6] == ["quiet[channels=1]", "quiet[channels=2]"]
    assert [(g.params.amplitude_dbfs, g.params.channels) for g in planned.generators[:4]] == [
        (-30, 1), (-30, 2), (-10, 1), (-10, 2)]


def test_malformed_yaml_names_the_line(write_suite, capsys):
    path = write_suite("name: x\ndataset: {name: audio-folder\ngeneration:\n  duration_s: 1\n")
    err = _errors(path, capsys)
    assert f"{path}:" in err and "malformed YAML" in err
    assert "1 problem" in err


def test_unknown_generator_suggests(tones, write_suite, capsys, plugins):
    path = write_suite(TONES_SUITE.replace("{name: noise,", "{name: nosie,"))
    err = _errors(path, capsys)
    assert f"{path}:11: generators[1].name: unknown generator 'nosie'; did you mean 'noise'" in err


def test_bad_parameter_type_names_line_and_field(tones, write_suite, capsys, plugins):
    path = write_suite(TONES_SUITE.replace("sample_rate: 16000}}\n  - {name: silence",
                                           "sample_rate: fast}}\n  - {name: silence"))
    err = _errors(path, capsys)
    assert f"{path}:11: generators[1].params.sample_rate:" in err and "'fast'" in err
    path = write_suite(TONES_SUITE.replace("batch_size: 2", "batch_size: two\n  extra_key: 1"))
    err = _errors(path, capsys)
    assert f"{path}:8: generation.batch_size:" in err
    assert f"{path}:9: generation.extra_key: Extra inputs are not permitted" in err


def test_bad_matrix_value_points_at_the_matrix(tones, write_suite, capsys, plugins):
    path = write_suite(TONES_SUITE.replace("{name: noise, params: {sample_rate: 16000}}",
                                           "{name: noise, matrix: {channels: [1, zero]}}"))
    err = _errors(path, capsys)
    assert f"{path}:11: generators[1].matrix.channels:" in err


def test_missing_data_folder(write_suite, capsys, plugins):
    path = write_suite(TONES_SUITE)  # no tones written
    err = _errors(path, capsys)
    assert "dataset.name: audio-folder: data folder" in err and "does not exist" in err
    assert "retrieval (retrieval): training set: data folder" in err


def test_missing_weights_stop_the_run_before_generation(tones, write_suite, capsys, plugins, tmp_path):
    path = write_suite(TONES_SUITE.replace("  - {name: reference}\n",
                                           "  - {name: reference}\n  - {name: needs-weights, params: "
                                           "{weights: w/model.safetensors}}\n"))
    err = _errors(path, capsys)
    assert "generators[1].name: needs-weights (needs-weights): weights file" in err
    assert str(tmp_path / "w" / "model.safetensors") in err
    run = tmp_path / "run"
    assert main(["run", str(path), "--out", str(run)]) == 1
    assert "needs-weights" in capsys.readouterr().err
    assert not (run / "cache" / "clips").exists()
    # --only leaves the unselected generator's weights unchecked
    assert main(["run", str(path), "--out", str(run), "--only", "noise", "--no-progress"]) == 0


def test_several_problems_come_in_one_list(tones, write_suite, capsys, plugins):
    path = write_suite(TONES_SUITE.replace("{name: reference}", "{name: referense}").replace(
        "name: test-distance", "name: test-distanse"))
    err = _errors(path, capsys)
    assert "2 problem(s)" in err and "did you mean 'reference'" in err
    assert "did you mean 'test-distance'" in err


def test_yaml_is_loaded_safely(write_suite, tmp_path, capsys):
    marker = tmp_path / "pwned"
    path = write_suite(f"name: !!python/object/apply:os.system ['touch {marker}']\n")
    err = _errors(path, capsys)
    assert "malformed YAML" in err and "python/object/apply" in err
    assert not marker.exists()


@pytest.mark.parametrize("value", ["../outside.html", "/tmp/abs.html", "a/../../x.html", "~/x.html"])
def test_output_paths_cannot_leave_the_run_directory(tones, write_suite, capsys, plugins, value):
    path = write_suite(TONES_SUITE + f"report: {{html: '{value}'}}\n")
    err = _errors(path, capsys)
    assert "report.html:" in err and "inside the run directory" in err


def test_labels_must_be_unique(tones, write_suite, capsys, plugins):
    path = write_suite(TONES_SUITE.replace("{name: silence, params: {sample_rate: 16000}}",
                                           "{name: silence, label: noise}"))
    assert "label 'noise' is used twice" in _errors(path, capsys)


def test_top_level_must_be_a_mapping(write_suite):
    with pytest.raises(SuiteError, match="YAML mapping at the top level"):
        load_suite(write_suite("- just\n- a list\n"))


SUITES = sorted((Path(__file__).resolve().parents[2] / "suites").glob("*.yaml"))


@pytest.mark.parametrize("suite", SUITES, ids=[p.name for p in SUITES])
def test_shipped_suites_are_valid(suite, tmp_path):
    """Schema, plug-in names and params of every suite in suites/ (data and weights not required)."""
    planned = load_suite(suite, run_dir=tmp_path / "run", check=False)
    assert planned.generators
