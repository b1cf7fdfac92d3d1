"""Hostile or mistaken suite files: each fails validation at once with one line naming file, line and
field (issue 22: billion laughs, duplicate keys, oversized suites, .inf, label formats, repeated seeds)."""

from __future__ import annotations

import time

import pytest

import bench.suite_limits
from bench.cli import main
from bench.testing import TONES_SUITE


def _errors(path, capsys) -> str:
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


LAUGHS = "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 9 if p else ['lol'] * 9)}]\n"
                 for p, c in zip([None, *"abcdefgh"], "abcdefghi"))


def test_billion_laughs_is_refused_quickly(write_suite, capsys):
    path = write_suite(LAUGHS)
    assert len(path.read_bytes()) < 500  # 9**9 strings once expanded
    t0 = time.perf_counter()
    err = _errors(path, capsys)
    assert time.perf_counter() - t0 < 5
    assert f"{path}:6: f: expands to more than 100000 YAML nodes (aliases counted each time they are " \
           "used); a suite is a short file" in err


def test_recursive_alias_and_deep_nesting_are_refused(write_suite, capsys):
    err = _errors(write_suite("a: &a [*a]\n"), capsys)
    assert "a[0]: a recursive alias (a node that contains itself)" in err
    err = _errors(write_suite("a: " + "[" * 70 + "]" * 70 + "\n"), capsys)
    assert "nested deeper than 64 levels" in err
    err = _errors(write_suite("a: " + "[" * 5000 + "]" * 5000 + "\n"), capsys)
    assert "malformed YAML: nested too deeply" in err


def test_duplicate_keys_are_errors(tones, write_suite, capsys, plugins):
    text = TONES_SUITE.replace("  seeds: [0]\n", "  seeds: [0]\n  seeds: [1]\n")
    path = write_suite(text)
    err = _errors(path, capsys)
    assert f"{path}:8: generation.seeds: key 'seeds' is given twice (first at line 7); remove one" in err


def test_values_yaml_cannot_construct_are_one_line(write_suite, capsys):
    err = _errors(write_suite("name: x\ncreated: 2020-13-45\n"), capsys)
    assert "malformed YAML: a value cannot be read (month must be in 1..12)" in err


def test_oversized_suite_is_refused_unread(tones, write_suite, capsys, plugins):
    prompts = "\n".join(f"# prompt {i}: " + "x" * 100 for i in range(12_000))  # ~1.4 MB
    path = write_suite(TONES_SUITE + prompts)
    err = _errors(path, capsys)
    assert f"{path}: suite file is 1.4 MB; a suite may be at most 1024 KiB" in err


def test_too_many_seeds_and_generators(tones, write_suite, capsys, plugins):
    seeds = ", ".join(str(i) for i in range(1001))
    err = _errors(write_suite(TONES_SUITE.replace("seeds: [0]", f"seeds: [{seeds}]")), capsys)
    assert "generation.seeds: List should have at most 1000 items after validation, not 1001" in err
    matrix = "    matrix: {a: [" + ", ".join(map(str, range(40))) + "], b: [" + \
        ", ".join(map(str, range(40))) + "]}\n"
    text = TONES_SUITE.replace("  - {name: reference}\n", "  - name: reference\n" + matrix)
    err = _errors(write_suite(text), capsys)
    assert "generators[0].matrix: Value error, the matrix expands to 1600 generators; at most 1000" in err


def test_validate_says_how_big_the_run_is_and_caps_it(tones, write_suite, capsys, plugins, monkeypatch):
    path = write_suite(TONES_SUITE.replace("seeds: [0]", "seeds: [0, 1, 2]"))
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "plan: 5 prompt(s) x 4 generator(s) x 3 seed(s) = 60 clip(s) of 1 s" in out
    monkeypatch.setattr(bench.suite_limits, "MAX_CLIPS", 50)
    err = _errors(path, capsys)
    assert "= 60 clip(s) of 1 s: more than 50 clips; lower dataset.limit, the seeds or the generators" in err
    assert main(["run", str(path), "--out", str(path.parent / "run"), "--no-progress"]) == 1
    assert "more than 50 clips" in capsys.readouterr().err
    assert not (path.parent / "run" / "cache").exists()  # nothing generated


@pytest.mark.parametrize("value, message", [
    (".inf", "generation.duration_s: Input should be a finite number"),
    (".nan", "generation.duration_s: Input should be a finite number"),
    ("1e9", "generation.duration_s: Input should be less than or equal to 3600"),
])
def test_duration_must_be_finite_and_bounded(tones, write_suite, capsys, plugins, value, message):
    err = _errors(write_suite(TONES_SUITE.replace("duration_s: 1.0", f"duration_s: {value}")), capsys)
    assert message in err


def test_repeated_seeds_are_an_error(tones, write_suite, capsys, plugins):
    path = write_suite(TONES_SUITE.replace("seeds: [0]", "seeds: [0, 3, 0]"))
    err = _errors(path, capsys)
    assert (f"{path}:7: generation.seeds: Value error, seed(s) [0] listed more than once; each seed is one "
            "clip per prompt, a repeated seed would count the same clip twice") in err


@pytest.mark.parametrize("label, message", [
    ("{name.foo}", "label placeholder {name.foo} is not a plain parameter name"),
    ("{name.__class__}", "label placeholder {name.__class__} is not a plain parameter name"),
    ("{sample_rate[0]}", "label placeholder {sample_rate[0]} is not a plain parameter name"),
    ("{name!r}", "label placeholder {name!r} is not a plain parameter name"),
    ("{}", "label placeholder {} is not a plain parameter name"),
    ("x}", "is not a valid template (Single '}' encountered in format string)"),
    ("{nope}", "label '{nope}' names an unknown parameter ('nope')"),
])
def test_label_templates_take_plain_names_only(tones, write_suite, capsys, plugins, label, message):
    text = TONES_SUITE.replace("  - {name: noise, params: {sample_rate: 16000}}",
                               f"  - {{name: noise, label: '{label}', params: {{sample_rate: 16000}}}}")
    err = _errors(write_suite(text), capsys)
    assert message in err and "generators[1].label" in err


def test_plain_label_templates_still_work(tones, write_suite, capsys, plugins):
    text = TONES_SUITE.replace("  - {name: noise, params: {sample_rate: 16000}}",
                               "  - {name: noise, label: '{name}-{sample_rate}-{{x}}', "
                               "params: {sample_rate: 16000}}")
    assert main(["validate", str(write_suite(text))]) == 0
    assert "noise-16000-{x}" in capsys.readouterr().out


def test_validate_builds_nothing_to_count_prompts(write_suite, capsys, plugins, tmp_path):
    text = """
    name: synth
    dataset: {name: synthcaps, params: {split: test, num_clips: 12, duration_s: 1.0, sample_rate: 16000}}
    generation: {duration_s: 1.0, seeds: [0, 1]}
    generators: [{name: noise, params: {sample_rate: 16000}}]
    metrics: [{name: test-distance}]
    """
    assert main(["validate", str(write_suite(text)), "--out", str(tmp_path / "run")]) == 0
    assert "plan: ? prompt(s) x 1 generator(s) x 2 seed(s) = ? clip(s) of 1 s" in capsys.readouterr().out
    assert not (tmp_path / "run").exists()  # synthcaps was not synthesized to count its prompts
