from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import cli
from bench.published import PUBLISHED_TABLES, TABLE4_STEPS
from bench.report import write_report
from bench.run_results import ResultsError, parse_record, reported_steps
from tests.bench.html_tree import parse
from tests.bench.report_fixture import (
    EVIL_LABEL,
    EVIL_PARAM,
    PATTERNS,
    SCRIPT_PROMPT,
    SIZES,
    assert_summary_matches,
    make_run,
    pattern_info,
    record,
)


@pytest.fixture()
def rendered(tmp_path: Path):
    run = make_run(tmp_path)
    path = write_report(run)
    return run, path, path.read_text(encoding="utf-8")


def _records(run: Path) -> list[dict]:
    return json.loads((run / "results.json").read_text())["records"]


def test_summary_tables_match_results_json(rendered):
    run, _, html = rendered
    assert_summary_matches(parse(html), _records(run))


def test_protocols_are_never_mixed_in_one_table(rendered):
    _, _, html = rendered
    clap_tables = [t for t in parse(html).find_all("table", "summary") if t.attrs["data-metric"] == "clap"]
    assert len(clap_tables) == 2  # the fixture has clap under two crop policies
    assert "lower is better" in html and "higher is better" in html


def test_script_prompt_is_escaped(rendered):
    _, _, html = rendered
    assert SCRIPT_PROMPT not in html
    assert "&lt;script&gt;document.title=" in html
    dom = parse(html)
    scripts = dom.find_all("script")
    assert len(scripts) == 1 and "pwned" not in scripts[0].text()
    prompts = [td.text() for td in dom.find_all("td", "prompt")]
    assert SCRIPT_PROMPT in prompts  # shown as text
    # labels and params from the suite are text too
    assert dom.find_all("img") == []
    assert EVIL_LABEL in [td.text() for td in dom.find_all("td", "generator")]
    assert any(EVIL_PARAM in td.text() for td in dom.find_all("td"))


def test_audio_sources_exist_and_scores_match(rendered):
    run, path, html = rendered
    dom = parse(html)
    audios = dom.find_all("audio")
    assert len(audios) == 6  # 3 generated + 3 reference clips
    for a in audios:
        src = a.attrs["src"]
        assert not Path(src).is_absolute()
        assert (path.parent / src).is_file(), src
    rows = dom.find_all("table", "samples")[0].find_all("tbody")[0].find_all("tr")
    kl = sorted(float(tr.find_all("td")[-1].attrs["data-sort"]) for tr in rows)
    assert kl == [0.8, 1.2, 9.5]
    heads = [th.text().strip() for th in dom.find_all("table", "samples")[0].find_all("th")]
    # numbers are shown; booleans and the sample rate are bookkeeping, not columns
    assert heads[-4:] == ["duration_s", "loudness_lufs_before", "clap", "kl"]
    assert "cached" not in heads and "silent" not in heads and "sample_rate" not in heads


def test_older_column_names_and_meta_key_are_read(tmp_path):
    run = make_run(tmp_path)
    data = json.loads((run / "results.json").read_text())
    data["meta"] = data.pop("metadata")
    del data["meta"]["samples_table"]
    (run / "results.json").write_text(json.dumps(data))
    table = (run / "samples.csv").read_text().replace("generator,prompt_id,seed,text,audio,reference_audio",
                                                     "generator,prompt_id,seed,prompt,clip,reference", 1)
    (run / "samples.csv").write_text(table)
    dom = parse(write_report(run).read_text())
    assert len(dom.find_all("audio")) == 6
    assert SCRIPT_PROMPT in [td.text() for td in dom.find_all("td", "prompt")]
    assert "0123abcd" in dom.find_all("table", "meta")[0].text()


def test_long_metadata_lists_are_shortened(tmp_path):
    run = make_run(tmp_path, with_samples=False)
    data = json.loads((run / "results.json").read_text())
    data["metadata"]["prompt_ids"] = [f"id{i}" for i in range(500)]
    (run / "results.json").write_text(json.dumps(data))
    meta = parse(write_report(run).read_text()).find_all("table", "meta")[0].text()
    assert "id19" in meta and "id20" not in meta and "500 items in all" in meta


def test_report_elsewhere_keeps_audio_paths_relative(tmp_path):
    run = make_run(tmp_path)
    path = write_report(run, out=tmp_path / "site" / "deep" / "r.html")
    for a in parse(path.read_text()).find_all("audio"):
        assert a.attrs["src"].startswith("../../run/")
        assert (path.parent / a.attrs["src"]).is_file()


def test_ablation_pivot_has_every_pattern_and_table4_step_ratios(rendered):
    _, _, html = rendered
    pivots = parse(html).find_all("table", "pivot")
    assert len(pivots) == 1
    pivot = pivots[0]
    heads = [th.text() for th in pivot.find_all("th", "size")]
    assert heads == list(SIZES)
    rows = pivot.find_all("tbody")[0].find_all("tr")
    assert [tr.attrs["data-pattern"] for tr in rows] == list(PATTERNS)
    steps = {tr.attrs["data-pattern"]: int(tr.find_all("td", "steps")[0].attrs["data-steps"]) for tr in rows}
    # fixture: 30 s at 50 Hz, K = 4 -> exactly Table 4's counts, and so its ratios
    assert steps == TABLE4_STEPS
    for p in PATTERNS:
        assert steps[p] / steps["delay"] == TABLE4_STEPS[p] / TABLE4_STEPS["delay"]
    cells = [td for tr in rows for td in tr.find_all("td", "cell")]
    assert len(cells) == len(PATTERNS) * len(SIZES)
    best = [td for td in cells if "best" in td.attrs["class"].split()]
    assert len(best) == 1 and float(best[0].attrs["data-value"]) == pytest.approx(0.49)
    assert "<svg" in html and "errbar" in html


def test_steps_come_from_the_generator_info():
    def steps(info):
        return reported_steps(parse_record(record("g", "fad", 1.0, False, {}, generator_info=info), "t"))

    flat = steps(pattern_info("flattening", 10.0, num_codebooks=8))
    assert (flat.nominal, flat.delay_tail, flat.formula) == (4000, 0, "K·T")
    coarse = steps(pattern_info("coarse_first", 2.0, frame_rate=25))
    assert (coarse.nominal, coarse.formula) == (100, "2T")
    delay = steps(pattern_info("delay", 1.0))
    assert (delay.steps, delay.nominal, delay.delay_tail, delay.formula) == (53, 50, 3, "T")
    assert steps(None) is None  # a generator that reports nothing: no steps, not a guess
    no_formula = steps({"frames": 50, "steps": 200, "delay_tail": 0})
    assert no_formula.formula == "4T"  # the multiple, when the generator names no formula
    assert steps({"frames": 50, "steps": "many", "delay_tail": 0}) is None


def test_old_step_helpers_still_work_with_a_deprecation_warning():
    import bench.report

    with pytest.warns(DeprecationWarning, match="Generator.describe"):
        old = bench.report.autoregressive_steps
    assert old("flattening", {"duration_s": 10, "num_codebooks": 8}, {}) == 4000
    assert old("coarse_first", {}, {"duration_s": 2.0, "frame_rate": 25}) == 100
    assert old("delay", {}, {}) is None and old("unknown", {"duration_s": 1}, {}) is None
    with pytest.warns(DeprecationWarning):
        assert bench.report.delay_tail("delay", {}, {}) == 3


def test_published_block_is_separate_and_labelled(rendered):
    _, _, html = rendered
    dom = parse(html)
    section = dom.find_all("section", "published")
    assert len(section) == 1 and "not measured" in section[0].text()
    tables = section[0].find_all("table", "published-table")
    assert [t.attrs["data-table"] for t in tables] == [t.key for t in PUBLISHED_TABLES]
    assert "3.1" in tables[0].text() and "0.44" in tables[-1].text()
    # no published table sits among measured ones
    for t in dom.find_all("table", "summary"):
        assert "Riffusion" not in t.text()


def test_meta_and_protocols_are_shown(rendered):
    _, _, html = rendered
    dom = parse(html)
    meta = dom.find_all("table", "meta")[0].text()
    for word in ("0123abcd", "2.13.0", "cpu", "clip_hits"):
        assert word in meta
    protos = dom.find_all("table", "protocols")[0].text()
    assert "vggish" in protos and "centre-10s" in protos


def test_no_network_references(rendered):
    _, _, html = rendered
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html and "<link" not in html and "src=\"//" not in html


def test_cli_report_and_errors(tmp_path, capsys):
    run = make_run(tmp_path, with_samples=False)
    assert cli.main(["report", str(run), "--out", str(tmp_path / "x.html"), "--no-paper-numbers"]) == 0
    html = (tmp_path / "x.html").read_text()
    assert "No per-sample table" in html and 'id="published"' not in html
    assert cli.main(["report", str(tmp_path / "nowhere")]) == 2
    assert "no results file" in capsys.readouterr().err


def test_bad_records_name_the_field(tmp_path):
    run = make_run(tmp_path, records=[{"generator": "g", "metric": "fad", "value": "high",
                                       "higher_is_better": False}], with_samples=False)
    with pytest.raises(ResultsError, match=r"records\[0\]\.value"):
        write_report(run)
    (run / "results.json").write_text(json.dumps({"records": [{"generator": "g", "value": 1.0}]}))
    with pytest.raises(ResultsError, match="missing field.*metric"):
        write_report(run)


def test_pivot_only_for_real_grids(tmp_path):
    from tests.bench.report_fixture import record

    recs = [record("m", "fad", 1.0, False, {}, {"pattern": None, "size": None}),
            record("one", "kl", 1.0, False, {}, {"pattern": "delay"}),
            record("s1", "clap", 0.2, True, {}, {"size": "small"}),
            record("s2", "clap", 0.3, True, {}, {"size": "medium"})]
    pivots = parse(write_report(make_run(tmp_path, records=recs, with_samples=False)).read_text()).find_all(
        "table", "pivot")
    assert [p.attrs["data-metric"] for p in pivots] == ["clap"]  # sizes only: one row, two size columns
    rows = pivots[0].find_all("tbody")[0].find_all("tr")
    assert len(rows) == 1 and [td.attrs["data-size"] for td in rows[0].find_all("td", "cell")] == ["small",
                                                                                                  "medium"]
