"""The report at scale and over every shipped suite.

- Every output of every metric of every suite under suites/ gets its leaderboard column: records are
  made for each generator x each ``MetricInfo`` the suite's metrics declare (as the runner would
  record them: the metric's protocol, the dataset and embedder names), rendered, and read back.
- Size: a synthetic 5,000-prompt run's HTML stays under 5 MB (the grid's data is a sidecar; it is
  bounded too), and a run five times the demo's (150 prompts, 4 systems, audio, thumbnails) stays under 1 MB
  of HTML plus grid data. Render time is measured by ``benchmarks/report_render.py``, not here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.report import write_report
from bench.suite import load_suite
from tests.bench.html_tree import parse
from tests.bench.report_bulk import make_bulk_run
from tests.bench.report_fixture import assert_leaderboard_matches, make_run, record

SUITES = sorted((Path(__file__).resolve().parents[2] / "suites").glob("*.yaml"))
MB = 1024 * 1024


def _suite_results(path: Path, tmp_path: Path) -> dict:
    planned = load_suite(path, run_dir=tmp_path / "run", check=False)
    rng = np.random.default_rng(0)
    records = []
    for mp in planned.metrics:
        metric = planned.make(mp)
        for info in metric.infos():
            protocol = {**dict(info.protocol), "metric": mp.name, "unit": info.unit,
                        "dataset": {"dataset": planned.dataset.name},
                        "embedders": {name: {} for name in metric.embedder_names()}}
            for g in planned.generators:
                records.append(record(g.label, info.name, float(rng.uniform(0, 1)), info.higher_is_better,
                                      protocol, g.params.model_dump(mode="json")))
    meta = {"generators": {g.label: {"name": g.name} for g in planned.generators}}
    return {"suite": planned.suite.name, "metadata": meta, "records": records}


@pytest.mark.parametrize("path", SUITES, ids=[p.stem for p in SUITES])
def test_every_metric_of_every_shipped_suite_is_in_the_leaderboard(path, tmp_path):
    results = _suite_results(path, tmp_path)
    run = make_run(tmp_path, records=results["records"], with_samples=False)
    (run / "results.json").write_text(json.dumps(results))
    dom = parse(write_report(run).read_text())
    assert_leaderboard_matches(dom, results)
    shown = {c.attrs["data-metric"] for c in dom.find_all(None, "lb-cell")}
    assert shown == {r["metric"] for r in results["records"]}
    if path.stem == "musiccaps":  # the paper's protocol: the model card's numbers sit beside ours
        pubs = {tr.attrs["data-generator"]: [s.text() for s in tr.find_all("span", "pub")]
                for tr in dom.find_all("tr", "system")}
        assert pubs["musicgen-small"] == ["4.88", "1.42", "0.27"]  # FAD, KLD, CLAP of the card
        assert pubs["riffusion"] == [] and pubs["reference"] == []


@pytest.mark.slow
def test_a_5000_prompt_run_stays_under_5_mb(tmp_path):
    run = make_bulk_run(tmp_path, n_prompts=5000)
    path = write_report(run)
    html = path.stat().st_size
    data = path.with_name("report_files").joinpath("grid.js").stat().st_size
    assert html < 5 * MB and data < 5 * MB, (html, data)
    assert html < 0.5 * MB  # the page itself does not grow with the prompts: the grid's data is a sidecar
    assert "5000 prompts × 5 systems" in path.read_text()


@pytest.mark.slow
def test_a_demo_sized_report_stays_under_1_mb(tmp_path):
    # five times the demo's 30 prompts, with its 4 systems, audio and thumbnails
    run = make_bulk_run(tmp_path, n_prompts=150, systems=("musicgen-builtin", "retrieval"), audio=True)
    path = write_report(run)
    data = path.with_name("report_files").joinpath("grid.js")
    grid = json.loads(data.read_text().split("=", 1)[1].rstrip().rstrip(";"))
    assert grid["thumbnails"]["made"] == 150 * 5  # every clip and reference has its thumbnail
    assert path.stat().st_size + data.stat().st_size < 1 * MB
