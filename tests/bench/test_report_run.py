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
from tests.bench.report_fixture import assert_summary_matches


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
    for html_name in ("report.html", "again.html"):
        dom = parse((run / html_name).read_text())
        assert_summary_matches(dom, results["records"])
        audios = dom.find_all("audio")
        n_clips = sum(1 for _ in (run / "samples.csv").read_text().splitlines()) - 1
        assert n_clips > 0 and len([a for a in audios if "_reference" not in a.attrs["src"]]) == n_clips
        for a in audios:
            assert (run / a.attrs["src"]).is_file()
        assert "sine tone" in dom.find_all("td", "prompt")[0].text()
    # a rerun (all cached) compares equal to a baseline written from the first run
    baseline = run.parent / "baseline.json"
    assert main(["compare", str(run), str(baseline), "--write-baseline"]) == 0
    assert main(["run", str(suite), "--out", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["compare", str(run), str(baseline)]) == 0
    assert "WORSE" not in capsys.readouterr().out
