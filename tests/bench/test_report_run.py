"""The report and the regression check on a real ``bench run`` (the harness's tone suite with the
control generators and its test metric). Skipped until the runner and ``bench.testing`` are present."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

import bench.testing as testing
from bench.cli import main
from tests.bench.html_tree import parse
from tests.bench.report_fixture import assert_leaderboard_matches


@pytest.fixture()
def tone_run(tmp_path: Path):
    testing.register()
    try:
        testing.write_tone_dataset(tmp_path / "data")
        suite = tmp_path / "suite.yaml"
        suite.write_text(textwrap.dedent(testing.TONES_SUITE).lstrip())
        yield suite, tmp_path / "run"
    finally:
        testing.unregister()


def test_report_of_a_real_run_matches_its_results(tone_run, capsys):
    suite, run = tone_run
    assert main(["run", str(suite), "--out", str(run), "--no-progress"]) == 0
    assert main(["report", str(run), "--out", str(run / "again.html")]) == 0
    results = json.loads((run / "results.json").read_text())
    n_clips = sum(1 for _ in (run / "samples.csv").read_text().splitlines()) - 1
    for html_name in ("report.html", "again.html"):
        html = run / html_name
        dom = parse(html.read_text())
        assert_leaderboard_matches(dom, results)
        data = html.with_name(f"{html.stem}_files").joinpath("grid.js").read_text()
        grid = json.loads(data.split("=", 1)[1].rstrip().rstrip(";"))
        clips = [clip for row in grid["rows"] for cell in row[4] for clip in cell]
        assert n_clips > 0 and len(clips) == n_clips
        for src in [clip[1] for clip in clips] + [row[2] for row in grid["rows"] if row[2]]:
            assert (run / src).is_file(), src
        assert all(clip[3] for clip in clips)  # every clip has its thumbnail
        assert "sine tone" in grid["rows"][0][1]
    # a rerun (all cached) compares equal to a baseline written from the first run
    baseline = run.parent / "baseline.json"
    assert main(["compare", str(run), str(baseline), "--write-baseline"]) == 0
    assert main(["run", str(suite), "--out", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["compare", str(run), str(baseline)]) == 0
    assert "WORSE" not in capsys.readouterr().out
