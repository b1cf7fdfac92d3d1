from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import cli
from bench.published import PUBLISHED_TABLES, TABLE4_STEPS
from bench.report import write_report
from bench.run_results import ResultsError, parse_record, protocol_digest, reported_steps
from tests.bench.html_tree import parse
from tests.bench.report_fixture import (
    CLAP_PROTOCOL,
    EVIL_LABEL,
    EVIL_PARAM,
    PATTERNS,
    SCRIPT_PROMPT,
    SIZES,
    assert_leaderboard_matches,
    make_run,
    pattern_info,
    record,
)


def grid_of(html_path: Path) -> dict:
    """The listening grid's data, read back from its sidecar script."""
    text = html_path.with_name(f"{html_path.stem}_files").joinpath("grid.js").read_text()
    prefix = "window.BENCH_GRID = "
    assert text.startswith(prefix) and text.rstrip().endswith(";")
    return json.loads(text[len(prefix):].rstrip().rstrip(";"))


@pytest.fixture()
def rendered(tmp_path: Path):
    run = make_run(tmp_path)
    path = write_report(run)
    return run, path, path.read_text(encoding="utf-8")


def _results(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())


def test_leaderboard_matches_results_json(rendered):
    run, _, html = rendered
    assert_leaderboard_matches(parse(html), _results(run))


def test_protocols_are_never_mixed_in_one_column(rendered):
    _, _, html = rendered
    heads = [th for th in parse(html).find_all("th", "metric") if th.attrs.get("data-metric") == "clap"]
    assert len(heads) == 2  # the fixture has clap under two crop policies
    digests = {protocol_digest(CLAP_PROTOCOL), protocol_digest({**CLAP_PROTOCOL, "crop": "centre-10s"})}
    assert {th.attrs["data-protocol"] for th in heads} == digests
    for th in heads:  # the titles tell the columns apart
        assert th.attrs["data-protocol"] in th.text()
    assert "lower is better" in html and "higher is better" in html


def test_controls_are_grey_unranked_and_set_the_bar(rendered):
    _, _, html = rendered
    dom = parse(html)
    rows = {tr.attrs["data-generator"]: tr for tr in dom.find_all("tr", "system")}
    assert "control" in rows["noise"].attrs["class"] and "control" in rows["reference"].attrs["class"]
    fad = {g: [c for c in tr.find_all("td", "lb-cell") if c.attrs["data-metric"] == "fad"]
           for g, tr in rows.items()}
    # fad: reference 0.0 (best), noise 14.5 (worst), musicgen-small 3.25 -> (3.25 - 14.5) / (0 - 14.5)
    (bar,) = fad["musicgen-small"][0].find_all("svg", "range-bar")
    assert bar.attrs["aria-label"].startswith(f"{100 * (3.25 - 14.5) / (0 - 14.5):.0f}% of the way")
    (full,) = fad["reference"][0].find_all("svg", "range-bar")
    assert full.attrs["aria-label"].startswith("100%")


def test_untrusted_text_stays_text(rendered):
    run, path, html = rendered
    assert SCRIPT_PROMPT not in html and EVIL_PARAM not in html
    dom = parse(html)
    assert dom.find_all("img") == []
    assert all("src" not in s.attrs or s.attrs["src"].endswith("grid.js") for s in dom.find_all("script"))
    assert EVIL_LABEL in [s.text() for s in dom.find_all("span", "generator")]
    assert any(EVIL_PARAM in pre.text() for pre in dom.find_all("pre"))
    # the grid's data is JSON: the prompt is a string there, inserted by textContent in the page
    assert SCRIPT_PROMPT in [row[1] for row in grid_of(path)["rows"]]
    assert "innerHTML" not in html


def test_grid_has_every_clip_with_its_scores_and_existing_audio(rendered):
    run, path, _ = rendered
    grid = grid_of(path)
    assert grid["systems"][:2] == ["musicgen-small", "noise"]
    assert grid["scores"] == ["clap", "kl"]
    # the same for every clip: said once
    assert grid["constant"] == {"duration_s": 0.25, "loudness_lufs_before": -20.5}
    rows = {r[0]: r for r in grid["rows"]}
    assert list(rows) == ["p1", "p2"]
    kl = sorted(clip[4][grid["scores"].index("kl")] for r in grid["rows"] for cell in r[4] for clip in cell)
    assert kl == [0.8, 1.2, 9.5]
    srcs = [r[2] for r in grid["rows"]] + [clip[1] for r in grid["rows"] for cell in r[4] for clip in cell]
    assert len(srcs) == 5
    for src in srcs:
        assert not Path(src).is_absolute() and (path.parent / src).is_file(), src
    noise_p2 = rows["p2"][4][grid["systems"].index("noise")]
    assert noise_p2 == []  # noise has no clip for p2: an empty cell, not a missing row
    thumbs = [clip[3] for r in grid["rows"] for cell in r[4] for clip in cell] + [r[3] for r in grid["rows"]]
    w, h = grid["thumb"]
    import base64
    assert all(len(base64.b64decode(t)) == w * h // 2 for t in thumbs)


def test_thumbnail_levels_follow_the_signal():
    import numpy as np

    from bench.report_grid import mel_levels

    sr = 16000
    t = np.arange(sr) / sr
    low = mel_levels(np.sin(2 * np.pi * 200 * t), sr)  # row 0 = highest band
    high = mel_levels(np.sin(2 * np.pi * 6000 * t), sr)
    assert low.shape == (16, 48) and low.max() == 15
    assert int(np.argmax(low.mean(axis=1))) > int(np.argmax(high.mean(axis=1)))


def test_older_column_names_and_meta_key_are_read(tmp_path):
    run = make_run(tmp_path)
    data = _results(run)
    data["meta"] = data.pop("metadata")
    del data["meta"]["samples_table"]
    (run / "results.json").write_text(json.dumps(data))
    table = (run / "samples.csv").read_text().replace("generator,prompt_id,seed,text,audio,reference_audio",
                                                     "generator,prompt_id,seed,prompt,clip,reference", 1)
    (run / "samples.csv").write_text(table)
    path = write_report(run)
    grid = grid_of(path)
    assert SCRIPT_PROMPT in [r[1] for r in grid["rows"]]
    assert sum(len(cell) for r in grid["rows"] for cell in r[4]) == 3
    assert "0123abcd" in parse(path.read_text()).find_all("table", "meta")[0].text()


def test_long_metadata_lists_are_shortened(tmp_path):
    run = make_run(tmp_path, with_samples=False)
    data = _results(run)
    data["metadata"]["prompt_ids"] = [f"id{i}" for i in range(500)]
    (run / "results.json").write_text(json.dumps(data))
    meta = parse(write_report(run).read_text()).find_all("table", "meta")[0].text()
    assert '"id19"' in meta and '"id20"' not in meta and "500 items in all" in meta


def test_report_elsewhere_keeps_audio_paths_relative(tmp_path):
    run = make_run(tmp_path)
    path = write_report(run, out=tmp_path / "site" / "deep" / "r.html")
    assert 'src="r_files/grid.js"' in path.read_text()
    grid = grid_of(path)
    for src in [clip[1] for r in grid["rows"] for cell in r[4] for clip in cell]:
        assert src.startswith("../../run/") and (path.parent / src).is_file()


def test_ablation_pivot_has_every_pattern_and_table4_step_ratios(rendered):
    _, _, html = rendered
    (pivot,) = parse(html).find_all("table", "pivot")
    assert [th.text() for th in pivot.find_all("th", "size")] == list(SIZES)
    rows = pivot.find_all("tbody")[0].find_all("tr")
    assert [tr.attrs["data-pattern"] for tr in rows] == list(PATTERNS)
    steps = {tr.attrs["data-pattern"]: int(tr.find_all("td", "steps")[0].attrs["data-steps"]) for tr in rows}
    assert steps == TABLE4_STEPS  # fixture: 30 s at 50 Hz, K = 4 -> exactly Table 4's counts
    cells = [td for tr in rows for td in tr.find_all("td", "cell")]
    assert len(cells) == len(PATTERNS) * len(SIZES)
    best = [td for td in cells if "best" in td.attrs["class"].split()]
    assert len(best) == 1 and float(best[0].attrs["data-value"]) == pytest.approx(0.49)
    (chart,) = [s for s in parse(html).find_all("svg", "plot") if "by pattern" in s.attrs["aria-label"]]
    assert len(chart.find_all("path", "line")) == len(SIZES)  # one line per size over the patterns
    notes = [t.text() for t in chart.find_all("text", "note")]
    assert notes == [f"{TABLE4_STEPS[p]} steps" for p in PATTERNS]


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


def test_published_numbers_sit_beside_measured_ones_only_where_the_protocol_matches(tmp_path):
    card = {"dataset": {"dataset": "musiccaps"}, "embedders": {"vggish": {}}}
    small = {"checkpoint": "facebook/musicgen-small"}
    recs = [record("musicgen-small", "fad_vggish", 5.0, False, card, small),
            record("other-data", "fad_vggish", 5.0, False, {**card, "dataset": {"dataset": "synthcaps"}},
                   {"checkpoint": "facebook/musicgen-small"}),
            record("musicgen-small", "kl", 1.5, False, {**card, "embedders": {"synth": {}}},
                   {"checkpoint": "facebook/musicgen-small"})]
    dom = parse(write_report(make_run(tmp_path, records=recs, with_samples=False)).read_text())
    pubs = {tr.attrs["data-generator"]: [s.text() for s in tr.find_all("span", "pub")]
            for tr in dom.find_all("tr", "system")}
    assert pubs == {"musicgen-small": ["4.88"], "other-data": []}  # model card FAD of musicgen-small
    heads = [th.text() for th in dom.find_all("th", "published-col")]
    assert len(heads) == 1 and "model card" in heads[0]
    section = dom.find_all("details", "published")[0]
    assert "not measured" in section.text()
    assert [t.attrs["data-table"] for t in section.find_all("table", "published-table")] == \
        [t.key for t in PUBLISHED_TABLES]
    assert "Riffusion" not in dom.find_all("table", "leaderboard")[0].text()


def test_memorization_reads_as_rates_without_a_best(tmp_path):
    proto = {"metric": "memorization"}
    recs = [record("musicgen", "exact_match_rate", 0.02, False, proto, ci=0.01),
            record("retrieval", "embedding_copy_rate", 1.0, False, proto, ci=None),
            record("musicgen", "fad", 3.0, False, {}), record("retrieval", "fad", 1.0, False, {})]
    html = write_report(make_run(tmp_path, records=recs, with_samples=False)).read_text()
    dom = parse(html)
    assert_leaderboard_matches(dom, {"records": recs})
    (mem,) = dom.find_all("table", "memorization")
    assert "2.0%" in mem.text() and "[1.0%, 3.0%]" in mem.text() and "100.0%" in mem.text()
    assert "★" not in html and "best" not in " ".join(td.attrs.get("class", "") for td in dom.find_all("td"))
    assert "lower = less copying" in html


def test_fad_inf_fit_is_drawn_from_the_record_details(tmp_path):
    rec = record("m", "fad_inf_vggish", 2.0, False, {}, ci=None)
    rec["details"] = {"frames": [100.0, 200.0, 400.0], "fads": [4.0, 3.0, 2.5], "slope": 200.0, "r2": 0.99}
    bare = record("n", "fad_inf_vggish", 5.0, False, {}, ci=None)
    dom = parse(write_report(make_run(tmp_path, records=[rec, bare], with_samples=False)).read_text())
    (section,) = [s for s in dom.find_all("section") if s.attrs.get("id") == "fad-inf"]
    (chart,) = section.find_all("svg", "plot")
    assert "r² 0.990" in chart.attrs["aria-label"]
    assert len(chart.find_all("circle")) == 4  # three subsets and the intercept
    assert "n / fad_inf_vggish" in section.text()  # the record without a fit is named


def test_a_plugged_section_appears_in_order_and_its_failure_is_an_error(tmp_path):
    from markupsafe import Markup

    from bench.report_sections import SECTION_PROVIDERS, Section

    def mine(ctx):
        return Section("mine", "My section", Markup("<p class='mine'>") + ctx.results.suite + Markup("</p>"),
                       order=65)

    run = make_run(tmp_path)
    html = write_report(run, sections=[*SECTION_PROVIDERS, mine]).read_text()
    ids = [s.attrs["id"] for s in parse(html).find_all("section")]
    assert ids.index("mine") == ids.index("listen") - 1 and 'href="#mine"' in html

    def broken(ctx):
        raise KeyError("no such column")

    with pytest.raises(ResultsError, match="report section .*broken.*no such column"):
        write_report(run, sections=[broken])
    with pytest.raises(ResultsError, match="duplicate id"):
        write_report(run, sections=[mine, mine])


def test_no_network_references(rendered):
    _, path, html = rendered
    for text in (html, path.with_name("report_files").joinpath("grid.js").read_text()):
        assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert "https://" not in text and "<link" not in text and 'src="//' not in text


def test_cli_report_and_errors(tmp_path, capsys):
    run = make_run(tmp_path, with_samples=False)
    assert cli.main(["report", str(run), "--out", str(tmp_path / "x.html"), "--no-paper-numbers"]) == 0
    html = (tmp_path / "x.html").read_text()
    assert 'id="listen"' not in html and 'id="published"' not in html
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
    dup = [record("g", "fad", 1.0, False, {}), record("g", "fad", 2.0, False, {})]
    with pytest.raises(ResultsError, match="two records of 'g' for metric 'fad'"):
        write_report(make_run(tmp_path, records=dup, with_samples=False))


def test_pivot_only_for_real_grids(tmp_path):
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


#: any text a CSV file can hold (no lone surrogates), but a bare carriage return, which pandas' CSV
#: writer leaves unquoted (the row then splits)
CSV_SAFE = st.characters(blacklist_categories=("Cs",), blacklist_characters="\r")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.text(CSV_SAFE, min_size=1, max_size=12), st.text(CSV_SAFE, max_size=80),
                          st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True))),
                min_size=1, max_size=6, unique_by=lambda t: t[0]))
def test_grid_data_round_trips_any_prompt_text(tmp_path_factory, rows):
    """Whatever a samples table holds (quotes, newlines, markup, non-ASCII, NaN, inf), the grid's data
    is valid JSON that gives back each prompt's id and text, and numbers only where they are finite."""
    import math

    import pandas as pd

    root = tmp_path_factory.mktemp("grid")
    run = make_run(root, records=[record("g", "fad", 1.0, False, {})], with_samples=False)
    frame = pd.DataFrame({"generator": "g", "prompt_id": [r[0] for r in rows], "seed": 0,
                          "text": [r[1] for r in rows], "audio": "audio/none.wav",
                          "score": [r[2] for r in rows]})
    frame.to_csv(run / "samples.csv", index=False)
    grid = grid_of(write_report(run))
    got = {r[0]: r for r in grid["rows"]}
    assert list(got) == [r[0] for r in rows]  # ids as written: text, never numbers
    for pid, text, _ in rows:
        assert got[pid][1] == text
    for r in grid["rows"]:
        for clip in r[4][0]:
            assert all(v is None or math.isfinite(v) for v in clip[4])


def test_worst_clips_section_links_each_clip(tmp_path):
    run = make_run(tmp_path)
    data = _results(run)
    data["worst_clips"] = {"noise": {"kl": [{"prompt_id": "p1", "seed": 0, "value": 9.5,
                                             "audio": "audio/noise/p1__s0.wav"}]}}
    (run / "results.json").write_text(json.dumps(data))
    path = write_report(run, out=tmp_path / "elsewhere" / "r.html")
    (section,) = [s for s in parse(path.read_text()).find_all("section") if s.attrs.get("id") == "worst"]
    (link,) = section.find_all("a")
    assert (path.parent / link.attrs["href"]).is_file() and "p1" in section.text() and "9.5" in section.text()
    ids = [s.attrs["id"] for s in parse(path.read_text()).find_all("section")]
    assert ids.index("listen") < ids.index("worst") < ids.index("details")
