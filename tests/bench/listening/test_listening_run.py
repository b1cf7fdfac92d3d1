"""The loop on a real ``bench run`` directory: run the tones suite, write a test, simulate raters,
render the report; no generator label reaches the page."""

from __future__ import annotations

import re

from bench.cli import main as bench_main
from bench.listening.design import load_keys
from bench.testing import TONES_SUITE
from tests.bench.html_tree import parse


def test_listen_simulate_report_on_a_real_run(tones, write_suite, plugins, tmp_path, capsys):
    run = tmp_path / "run"
    assert bench_main(["run", str(write_suite(TONES_SUITE)), "--out", str(run), "--no-progress"]) == 0
    out = tmp_path / "page"
    assert bench_main(["listen", str(run), "--out", str(out), "--items", "4", "--raters-seed", "3"]) == 0
    (key,) = load_keys(run).values()
    assert key.systems == ["reference", "noise", "silence", "retrieval"] and len(key.items) == 4
    page = (out / "index.html").read_text()
    for label in ("noise", "silence", "retrieval", "test-distance", "tones"):
        assert not re.search(rf"\b{label}\b", page, re.I), label
    assert all(re.fullmatch(r"[0-9a-f]{16}\.wav", p.name) for p in (out / "audio").iterdir())
    assert bench_main(["ratings", "simulate", str(run), "--raters", "5", "--noise", "5"]) == 0
    assert bench_main(["report", str(run)]) == 0
    dom = parse((run / "report.html").read_text())
    (section,) = [s for s in dom.find_all("section") if s.attrs.get("id") == "listening"]
    assert "Simulated ratings" in section.text()
    rows = {
        tr.find_all("td")[0].text().strip(): tr
        for tr in section.find_all("table", "listening-scores")[0].find_all("tbody")[0].find_all("tr")
    }
    assert set(rows) == set(key.systems)
    (system_level,) = [t for t in section.find_all("table", "agreement") if t.attrs["data-level"] == "system"]
    rho = [float(td.attrs["data-value"]) for td in system_level.find_all("td", "rho")]
    assert len(rho) == 2 and all(
        r > 0 for r in rho
    )  # raters follow test_distance (lower is better): oriented
