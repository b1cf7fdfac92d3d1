"""Metric sanity: monotonicity verdicts on records made here, the paired bootstrap interval, the
normalised curves, and the report's "Metric sanity" / "Sample size" parts."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from scipy.stats import spearmanr

from bench.report import write_report
from bench.run_results import Record, parse_record
from bench.sanity import monotonicity
from tests.bench.html_tree import parse

LEVELS = [30.0, 20.0, 10.0, 5.0, 0.0]  # SNR: mild to strong; severity = -level


def rec(metric: str, degradation: str, level: float | None, value: float, hib: bool = False,
        replicates: list[float | None] | None = None, **details) -> Record:
    severity = 0.0 if level is None else -level
    label = "clean" if degradation == "none" else f"{degradation}={level}"
    d = dict(details)
    if replicates is not None:
        d["replicates"] = replicates
    return Record(label, metric, float(value), hib, params={"degradation": degradation, "level": level,
                                                             "severity": severity},
                  ci_low=None, ci_high=None, n=30, protocol={"metric": metric}, details=d)


def family(metric: str, values: list[float], hib: bool = False, noise: float = 0.0, seed: int = 0,
           b: int = 50) -> list[Record]:
    """Clean + five noise levels with ``values`` (clean first); replicates = value + N(0, noise)."""
    rng = np.random.default_rng(seed)
    out = []
    for level, v in zip([None] + LEVELS, values):
        reps = list(v + noise * rng.standard_normal(b))
        out.append(rec(metric, "none" if level is None else "white_noise", level, v, hib, reps))
    return out


def by_metric(records: list[Record]) -> dict:
    return {m.metric: m for m in monotonicity(records)}


def test_verdicts_for_each_kind_of_metric():
    records = (family("good", [1, 2, 3, 4, 5, 6]) + family("inverted", [1, 2, 3, 4, 5, 6], hib=True)
               + family("stuck", [3.0] * 6) + family("noisy", [1, 1.1, 0.9, 1.05, 0.95, 1.0], noise=1.0)
               + family("clap", [0.9, 0.8, 0.7, 0.6, 0.5, 0.4], hib=True, noise=0.01))
    random.Random(0).shuffle(records)  # levels are ordered by severity, not by record order
    m = by_metric(records)
    assert m["good"].rho == 1.0 and (m["good"].ci_low, m["good"].ci_high) == (1.0, 1.0)
    assert m["good"].verdict == "right way" and m["good"].levels == ["clean", 30.0, 20.0, 10.0, 5.0, 0.0]
    assert m["inverted"].verdict == "wrong way" and m["inverted"].normalised[-1] == -1.0
    assert m["stuck"].verdict == "flat" and m["stuck"].rho is None and m["stuck"].normalised == [0.0] * 6
    assert m["noisy"].verdict == "does not move" and m["noisy"].ci_low < 0 < m["noisy"].ci_high
    assert m["clap"].rho == -1.0 and m["clap"].verdict == "right way"
    np.testing.assert_allclose(m["clap"].normalised, [0, 0.2, 0.4, 0.6, 0.8, 1.0], atol=1e-12)


def test_rho_is_scipy_spearman_and_the_interval_pairs_replicates():
    values = [0.5, 2.0, 1.0, 3.0, 2.5, 4.0]
    m = by_metric(family("x", values, noise=0.3, seed=1))["x"]
    assert m.rho == pytest.approx(spearmanr(np.arange(6), values).statistic, abs=1e-12)
    recs = family("x", values, noise=0.3, seed=1)
    reps = np.array([r.details["replicates"] for r in recs]).T  # [B, levels]
    rhos = [spearmanr(np.arange(6), row).statistic for row in reps]
    assert (m.ci_low, m.ci_high) == pytest.approx(tuple(np.quantile(rhos, [0.025, 0.975])), abs=1e-12)
    assert m.n_replicates == 50


def test_paired_replicates_are_preferred():
    recs = family("x", [1, 2, 3, 4, 5, 6], noise=10.0)  # independent replicates: pure noise
    for r in recs:
        r.details["paired_replicates"] = [r.value] * 50  # paired ones keep the order
    m = by_metric(recs)["x"]
    assert (m.ci_low, m.ci_high) == (1.0, 1.0) and m.verdict == "right way"


def fed_fad(n_items: int, n_bootstrap: int, identical: bool):
    """A FAD metric fed ``n_items`` random items (frames ``[4, 3]``); ``identical``: each generated
    clip's frames are its reference's."""
    from bench.api import AudioClip, MetricItem, Prompt
    from bench.metrics.fad import FrechetAudioDistance

    rng = np.random.default_rng(0)
    metric = FrechetAudioDistance(FrechetAudioDistance.Params(embedder="e", n_bootstrap=n_bootstrap))
    for i in range(n_items):
        wav = rng.standard_normal((1, 800)).astype(np.float32)
        item = MetricItem(Prompt(f"p{i}", "x"), AudioClip(wav, 8000, f"p{i}", 0),
                          AudioClip(wav, 8000, f"p{i}", -1))
        ref = rng.standard_normal((4, 3))
        metric.update(item, {"e": {"generated": ref if identical else rng.standard_normal((4, 3)),
                                   "reference": ref}})
    return metric.compute()


def test_fad_paired_replicates_of_identical_sets_are_zero():
    """A prompt's reference and generated clip share one weight: identical sets stay identical in
    every paired replicate (FAD 0), while the independent replicates pull them apart."""
    res = fed_fad(25, 8, identical=True)["fad_e"]
    np.testing.assert_allclose(res.extra["paired_replicates"], 0.0, atol=1e-9)
    assert min(res.extra["replicates"]) > 1e-3


def test_markdown_table_has_a_cell_per_metric_and_degradation():
    from bench.sanity import monotonicity_markdown

    text = monotonicity_markdown(family("good", [1, 2, 3, 4, 5, 6]) + family("stuck", [3.0] * 6))
    assert text.splitlines() == ["| metric | white_noise |", "|---|---|",
                                 "| good ↓ | +1.00 [+1.00, +1.00] right way |", "| stuck ↓ | – flat |"]
    assert monotonicity_markdown([]) == ""


def test_no_replicates_no_interval_and_the_threshold_verdict():
    records = [rec("fad_inf", "none", None, 1.0)] + [rec("fad_inf", "white_noise", lv, v)
                                                     for lv, v in zip(LEVELS, [2, 3, 5, 4, 6])]
    m = by_metric(records)["fad_inf"]
    assert m.ci_low is None and m.rho == pytest.approx(0.9429, abs=1e-4) and m.verdict == "right way"
    # a run without a clean reference gives no monotonicity at all (nothing to anchor)
    assert monotonicity(records[1:]) == []


def write_run(tmp_path, records: list[Record]) -> str:
    raw = [{"generator": r.generator, "params": r.params, "metric": r.metric, "value": r.value,
            "ci_low": None, "ci_high": None, "n": 30, "higher_is_better": r.higher_is_better,
            "protocol": r.protocol, "details": r.details} for r in records]
    (tmp_path / "results.json").write_text(json.dumps({"suite": "sanity", "records": raw}))
    return write_report(tmp_path).read_text()


def test_report_shows_table_plots_and_flat_metrics(tmp_path):
    records = family("good", [1, 2, 3, 4, 5, 6]) + family("stuck", [3.0] * 6)
    records += [rec("good", "lowpass", lv, v, replicates=list(np.full(50, v)))
                for lv, v in zip([8000.0, 2000.0], [1.5, 2.5])]
    html = write_run(tmp_path, records)
    doc = parse(html)
    cells = [n for n in doc.iter() if n.attrs.get("data-verdict")]
    got = {(n.attrs["data-degradation"], n.attrs["data-verdict"]) for n in cells}
    assert got == {("white_noise", "right way"), ("white_noise", "flat"), ("lowpass", "right way")}
    section = next(n for n in doc.iter("section") if n.attrs.get("id") == "sanity")
    charts = [n.attrs.get("aria-label") for n in section.iter("svg")]
    assert charts == ["white_noise", "lowpass"]  # one chart per degradation
    assert "stuck (flat)" in section.text() and 'id="sample-size"' not in html


def test_report_explains_a_negative_fad_inf_and_shows_sample_size_curves(tmp_path):
    fit = {"slope": 1200.0, "r2": 0.91, "frames": [10, 20], "fads": [120.0, 56.0]}
    curve = {"n_clips": [3, 6, 10], "frames": [[15, 30, 50]] * 2,
             "fad": [[40.0, 20.0, 10.0], [42.0, 21.0, 10.0]],
             "kad": [[0.5, -0.2, 0.1], [0.3, 0.1, 0.1]], "bandwidth": 2.0,
             "fad_inf_fit": {"intercept": -1.0, "slope": 600.0, "r2": 0.99, "x": "1 / frames"}}
    records = [rec("fad_inf_synth", "none", None, -3.5, **fit),
               rec("kad_synth", "none", None, 0.1, sample_size=curve)]
    html = write_run(tmp_path, records)
    doc = parse(html)
    sections = {n.attrs.get("id"): n for n in doc.iter("section")}
    note = "a negative FAD-inf does not mean better than the reference"
    # where FAD-inf is reported (the FAD metric's record), its fit and the explanation of a value below 0
    fad_inf = sections["fad-inf"]
    assert "Below zero for clean (-3.5)" in fad_inf.text() and note in fad_inf.text()
    row = next(n for n in fad_inf.iter("tr") if n.attrs.get("data-generator") == "clean").text()
    assert "1200" in row and "0.91" in row  # slope and r²
    # and in the leaderboard: a link to the fit, with slope and r² (and the warning) in its title
    link = next(n for n in doc.iter("a") if "fit-link" in (n.attrs.get("class") or ""))
    assert link.attrs["href"] == "#fad-inf" and "1200 / frames + -3.5, r² 0.91" in link.attrs["title"]
    assert "not better than the reference" in link.attrs["title"]
    # the sample-size study: its own FAD-inf fit (below zero too, so explained there as well)
    sample = sections["sample-size"]
    assert note in sample.text()
    charts = [n.attrs.get("aria-label") for n in sample.iter("svg")]
    assert charts == ["clean: FAD vs clips", "clean: KAD vs clips", "clean: FAD vs 1/frames (FAD-inf fit)"]
    assert "sanity" not in sections  # no degradation: no monotonicity table


def test_results_without_details_still_parse_and_bad_details_are_named():
    raw = {"generator": "g", "metric": "m", "value": 1.0, "higher_is_better": False}
    assert parse_record(raw, "r").details == {}
    from bench.run_results import ResultsError

    with pytest.raises(ResultsError, match=r"r\.details: expected an object"):
        parse_record({**raw, "details": [1]}, "r")


def test_fad_inf_record_carries_its_fit():
    out = fed_fad(40, 5, identical=False)
    res = out["fad_inf_e"]
    assert set(res.extra) >= {"slope", "r2", "frames", "fads"} and len(res.extra["frames"]) >= 2
    assert ("note" in res.extra) == (res.value < 0)
    reps = out["fad_e"].extra["replicates"]
    assert len(reps) == 5 and all(r is None or r >= 0 for r in reps)
