"""``bench compare`` and ``bench report`` on hostile inputs (issue 22): a NaN baseline never passes, a
malformed baseline or samples table is exit 2 with one line, outputs never follow a planted link."""

from __future__ import annotations

import json
import math
import stat
from pathlib import Path

import pytest

from bench import cli
from bench.compare import Baseline, Entry, compare
from bench.run_results import Record
from tests.bench.report_fixture import FAD_PROTOCOL, make_run, record


def _run(tmp_path: Path, name: str, fad: float) -> Path:
    return make_run(tmp_path / name, records=[record("g", "fad", fad, False, FAD_PROTOCOL)],
                    with_samples=False)


def _baseline(tmp_path: Path, value) -> Path:
    path = tmp_path / "base.json"
    path.write_text(json.dumps({"format": "musicgen-bench-baseline", "version": 1, "entries": [
        {"generator": "g", "metric": "fad", "value": value, "higher_is_better": False,
         "protocol": FAD_PROTOCOL}]}))
    return path


@pytest.mark.parametrize("value, shown", [(math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf")])
def test_non_finite_baseline_is_malformed(tmp_path, capsys, value, shown):
    path = _baseline(tmp_path, value)
    assert cli.main(["compare", str(_run(tmp_path, "cur", 1e9)), str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: entries[0].value: expected a finite number, got {shown}; a baseline holds measured " \
           "values" in err


def test_non_finite_baseline_value_never_compares_ok():
    rec = Record("g", "fad", 5.0, False, protocol=FAD_PROTOCOL)
    for value in (math.nan, math.inf, -math.inf):
        entry = Entry("g", "fad", value, False, rec.digest, FAD_PROTOCOL)
        [row] = compare([rec], Baseline([entry]), {})
        assert row.status == "WORSE" and row.failed


def test_write_baseline_refuses_non_finite_values(tmp_path, capsys):
    out = tmp_path / "base.json"
    assert cli.main(["compare", str(_run(tmp_path, "nan", math.nan)), str(out), "--write-baseline"]) == 2
    assert "cannot write a baseline from non-finite values (g/fad = nan)" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("text, message", [
    ('{"format": "musicgen-bench-baseline", "version": 1, "entries": 5}',
     "entries: expected a JSON list, got int"),
    ('{"format": "musicgen-bench-baseline", "version": 1, "entries": [], "metric_tolerances": []}',
     "metric_tolerances: expected a JSON object, got list"),
    ('{"format": "musicgen-bench-baseline", "version": 1, "entries": ["x"]}', "entries[0]: malformed entry"),
    (b'\xff\xfe{"format"', "not valid JSON (UnicodeDecodeError"),
    ("[" * 100_000, "not valid JSON (RecursionError"),
])
def test_malformed_baseline_exits_2(tmp_path, capsys, text, message):
    path = tmp_path / "base.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    assert cli.main(["compare", str(_run(tmp_path, "cur", 1.0)), str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def _plant(folder: Path, name: str, victim: Path) -> None:
    """Links at the output's name and at the fixed temporary names writers used to use."""
    for link in (folder / f".{name}.tmp", folder / name):
        link.symlink_to(victim)


def test_write_baseline_does_not_write_through_a_planted_link(tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    folder = tmp_path / "baselines"
    folder.mkdir()
    _plant(folder, "ci.json", victim)
    assert cli.main(["compare", str(_run(tmp_path, "cur", 1.0)), str(folder / "ci.json"),
                     "--write-baseline"]) == 0
    assert victim.read_text() == "precious"
    out = folder / "ci.json"
    assert not out.is_symlink() and json.loads(out.read_text())["entries"][0]["value"] == 1.0
    assert stat.S_IMODE(out.stat().st_mode) & 0o044 == 0o044  # readable like any output, not 0600


def test_report_does_not_write_through_a_planted_link(tmp_path, capsys):
    run = make_run(tmp_path)
    victim = tmp_path / "victim.html"
    victim.write_text("precious")
    _plant(run, "report.html", victim)
    assert cli.main(["report", str(run)]) == 0
    assert victim.read_text() == "precious"
    html = run / "report.html"
    assert not html.is_symlink() and "<html" in html.read_text()
    assert stat.S_IMODE(html.stat().st_mode) & 0o044 == 0o044


@pytest.mark.parametrize("content, message", [
    (b'generator,prompt_id,audio\n"unterminated,p1,a.wav\n', "not a readable CSV table (ParserError"),
    (b"generator,prompt_id,audio\ng,p1,\xff\xfe.wav\n", "not a readable CSV table (UnicodeDecodeError"),
    (b"", "not a readable CSV table (EmptyDataError"),
])
def test_broken_samples_table_is_one_line(tmp_path, capsys, content, message):
    run = make_run(tmp_path)
    (run / "samples.csv").write_bytes(content)
    assert cli.main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"bench report: {run / 'samples.csv'}: {message}" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_report_out_that_cannot_be_written_is_one_line(tmp_path, capsys):
    run = make_run(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert cli.main(["report", str(run), "--out", str(blocker / "report.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"bench report: cannot write {blocker / 'report.html'} ({blocker}: File exists)")


def _read_only(monkeypatch) -> None:
    """What a read-only folder does to our writers (tests may run as root, which ignores modes)."""
    import musicgen.checkpoints.files

    def refuse(dir=None, **_):
        raise PermissionError(13, "Permission denied", str(dir))
    monkeypatch.setattr(musicgen.checkpoints.files.tempfile, "mkstemp", refuse)


def test_report_into_read_only_run_is_one_line(tmp_path, capsys, monkeypatch):
    run = make_run(tmp_path)
    _read_only(monkeypatch)
    assert cli.main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    # the sidecar data folder is written before the page, so it is the first write refused
    assert err == (f"bench report: cannot write {run / 'report.html'} ({run / 'report_files'}: Permission "
                   "denied)\n")
