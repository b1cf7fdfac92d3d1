from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import cli
from bench.compare import CompareError, Tolerance, parse_tolerance
from tests.bench.report_fixture import FAD_PROTOCOL, make_run, record


def _run(tmp_path: Path, name: str, fad: float, clap: float, fad_protocol: dict | None = None,
         extra: list[dict] | None = None) -> Path:
    recs = [record("g", "fad", fad, False, fad_protocol or FAD_PROTOCOL),
            record("g", "clap", clap, True, {"backbone": "clap"})] + (extra or [])
    return make_run(tmp_path / name, records=recs, with_samples=False)


@pytest.fixture()
def baseline(tmp_path: Path) -> Path:
    run = _run(tmp_path, "base", fad=2.0, clap=0.30)
    path = tmp_path / "baseline.json"
    assert cli.main(["compare", str(run), str(path), "--write-baseline", "--tolerance", "5%",
                     "--tolerance", "clap=0.01"]) == 0
    return path


def _compare(tmp_path, baseline, fad, clap, *extra_args, **kw) -> int:
    run = _run(tmp_path, f"cur-{fad}-{clap}", fad, clap, **kw)
    return cli.main(["compare", str(run), str(baseline), *extra_args])


def test_baseline_file_format(baseline):
    data = json.loads(baseline.read_text())
    assert data["format"] == "musicgen-bench-baseline" and data["version"] == 1
    assert data["tolerance"] == {"abs": 0.0, "rel": 0.05}
    assert data["metric_tolerances"] == {"clap": {"abs": 0.01, "rel": 0.0}}
    assert {(e["generator"], e["metric"], e["value"]) for e in data["entries"]} == {("g", "fad", 2.0),
                                                                                  ("g", "clap", 0.30)}


def test_within_tolerance_passes(tmp_path, baseline, capsys):
    # fad 2.0 -> 2.09 is worse by 0.09 < 5% of 2.0; clap 0.30 -> 0.295 worse by 0.005 < 0.01
    assert _compare(tmp_path, baseline, 2.09, 0.295) == 0
    out = capsys.readouterr().out
    assert "worse" in out and "WORSE" not in out and "ok:" in out


def test_worse_beyond_tolerance_fails(tmp_path, baseline, capsys):
    assert _compare(tmp_path, baseline, 2.2, 0.30) == 1  # fad (lower is better) up by 10%
    out = capsys.readouterr().out
    assert "WORSE" in out and "g/fad" in out.splitlines()[-1]
    assert _compare(tmp_path, baseline, 2.0, 0.28) == 1  # clap (higher is better) down by 0.02


def test_improvement_passes_whatever_its_size(tmp_path, baseline, capsys):
    assert _compare(tmp_path, baseline, 0.5, 0.9) == 0
    assert capsys.readouterr().out.count("improved") == 2


def test_cli_tolerance_overrides_baseline(tmp_path, baseline):
    assert _compare(tmp_path, baseline, 2.2, 0.30, "--tolerance", "fad=0.25") == 0
    assert _compare(tmp_path, baseline, 2.2, 0.30, "--tolerance", "fad=0.15") == 1
    # a default on the command line does not beat the file's per-metric clap tolerance
    assert _compare(tmp_path, baseline, 2.0, 0.28, "--tolerance", "50%") == 1


def test_protocol_mismatch_is_refused(tmp_path, baseline, capsys):
    code = _compare(tmp_path, baseline, 2.0, 0.30, fad_protocol={**FAD_PROTOCOL, "n_ref": 5})
    assert code == 2
    err = capsys.readouterr().err
    assert "different protocols" in err and "g/fad" in err and "n_ref: 4 -> 5" in err


def test_missing_metric_is_an_error(tmp_path, baseline, capsys):
    run = make_run(tmp_path / "partial", records=[record("g", "fad", 2.0, False, FAD_PROTOCOL)],
                   with_samples=False)
    assert cli.main(["compare", str(run), str(baseline)]) == 2
    assert "missing from the run: g/clap" in capsys.readouterr().err


def test_new_metric_is_listed_not_checked(tmp_path, baseline, capsys):
    extra = [record("h", "fad", 99.0, False, FAD_PROTOCOL)]
    assert _compare(tmp_path, baseline, 2.0, 0.3, extra=extra) == 0
    assert "not in the baseline (not checked): h/fad" in capsys.readouterr().out


def test_nan_fails(tmp_path, baseline):
    assert _compare(tmp_path, baseline, float("nan"), 0.3) == 1


def test_bad_inputs(tmp_path, baseline, capsys):
    run = _run(tmp_path, "x", 2.0, 0.3)
    assert cli.main(["compare", str(run), str(tmp_path / "none.json")]) == 2
    assert "no baseline file" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text(json.dumps({"format": "other"}))
    assert cli.main(["compare", str(run), str(tmp_path / "bad.json")]) == 2
    assert "not a baseline file" in capsys.readouterr().err
    assert cli.main(["compare", str(run), str(baseline), "--tolerance", "fad=lots"]) == 2
    assert "neither a number nor a percentage" in capsys.readouterr().err


def test_parse_tolerance():
    assert parse_tolerance("5%") == (None, Tolerance(0.0, 0.05))
    assert parse_tolerance("fad=0.5,2%") == ("fad", Tolerance(0.5, 0.02))
    assert Tolerance(0.1, 0.05).allowed(10.0) == 0.5 and Tolerance(0.1, 0.05).allowed(1.0) == 0.1
    with pytest.raises(CompareError):
        parse_tolerance("fad=")
    with pytest.raises(CompareError):
        parse_tolerance("-1")


def test_direction_change_and_malformed_entry_are_refused(tmp_path, baseline, capsys):
    data = json.loads(baseline.read_text())
    data["entries"][0]["higher_is_better"] = not data["entries"][0]["higher_is_better"]
    flipped = tmp_path / "flipped.json"
    flipped.write_text(json.dumps(data))
    assert cli.main(["compare", str(_run(tmp_path, "y", 2.0, 0.3)), str(flipped)]) == 2
    assert "direction changed" in capsys.readouterr().err
    del data["entries"][0]["value"]
    flipped.write_text(json.dumps(data))
    assert cli.main(["compare", str(_run(tmp_path, "z", 2.0, 0.3)), str(flipped)]) == 2
    assert "entries[0]: malformed entry" in capsys.readouterr().err
