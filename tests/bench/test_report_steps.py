"""The report's pattern table: one row per pattern of ``musicgen.modules.patterns``, its steps column
from what the generator reports (``generator_info``, ``Generator.describe``), never from a rule kept
in the report: nominal steps in Table 4's ratios (T, 2T, K*T) and, with the delay tail, exactly
``num_steps(T)``; and the ``musicgen`` adapter reports its model's pattern that way."""

from __future__ import annotations

import pytest

from bench.report import PATTERN_ORDER, pivots, write_report
from bench.run_results import parse_record
from musicgen.modules.patterns import get_pattern, pattern_names
from tests.bench.html_tree import parse
from tests.bench.report_fixture import make_run, pattern_info, record

#: Table 4's steps per frame for K = 4 (paper: T = 1500 frames -> 1500 / 3000 / 6000 steps)
TABLE4_PER_FRAME = {"delay": 1, "partial_delay": 1, "parallel": 1, "partial_flattening": 2,
                    "coarse_first": 2, "flattening": 4}


def _codebooks(pattern: str) -> int:
    return 8 if pattern.startswith("stereo_") else 4  # 4 per channel, as the built-in codec


def _pattern_records(duration_s: float, frame_rate: float = 50.0) -> list[dict]:
    gen = {"duration_s": duration_s, "seeds": [0]}
    return [record(f"pattern-{p}", "fad", 1.0 + i, False, {"generation": gen}, {"pattern": p, "size": None},
                   generator_info=pattern_info(p, duration_s, frame_rate=frame_rate))
            for i, p in enumerate(pattern_names())]


def test_the_report_orders_every_pattern_in_the_library():
    assert set(PATTERN_ORDER) == set(pattern_names())


@pytest.mark.parametrize("duration_s", [3.0, 5.0, 30.0])
def test_steps_column_matches_the_patterns(duration_s):
    (pivot,) = pivots([parse_record(r, "fixture") for r in _pattern_records(duration_s)])
    assert pivot.patterns == list(PATTERN_ORDER)
    frames = round(duration_s * 50)
    for name in pattern_names():
        pattern = get_pattern(name, num_codebooks=_codebooks(name))
        exact = pattern.num_steps(frames)
        assert pivot.tails[name] == pattern.max_delay, name
        assert pivot.steps[name] + pivot.tails[name] == exact, name
        if name in TABLE4_PER_FRAME:  # Table 4's ratios, with the paper's rounding (no delay tail)
            assert pivot.steps[name] == TABLE4_PER_FRAME[name] * frames
            assert float(pivot.ratio(name)) == TABLE4_PER_FRAME[name]
        else:  # stereo forms of the delay patterns: T steps, like their mono forms
            assert pivot.steps[name] == frames and pivot.ratio(name) == "1"


def test_records_without_generator_info_get_no_steps():
    recs = _pattern_records(3.0)
    for r in recs:
        del r["generator_info"]
    (pivot,) = pivots([parse_record(r, "fixture") for r in recs])
    assert set(pivot.steps.values()) == {None} and pivot.ratio("delay") == ""


def test_rendered_pattern_table_has_one_row_per_pattern_with_its_steps(tmp_path):
    html = write_report(make_run(tmp_path, records=_pattern_records(3.0), with_samples=False)).read_text()
    (table,) = parse(html).find_all("table", "pivot")
    rows = table.find_all("tbody")[0].find_all("tr")
    assert [tr.attrs["data-pattern"] for tr in rows] == list(PATTERN_ORDER)
    for tr in rows:
        name = tr.attrs["data-pattern"]
        (td,) = tr.find_all("td", "steps")
        exact = get_pattern(name, num_codebooks=_codebooks(name)).num_steps(150)
        assert int(td.attrs["data-steps"]) + int(td.attrs["data-tail"]) == exact
        assert ("tail" in td.text()) == (int(td.attrs["data-tail"]) > 0)


def test_markdown_table_has_a_row_per_pattern_with_steps_and_every_metric(tmp_path, capsys):
    from bench.cli import main as bench_main

    recs = _pattern_records(3.0)
    recs += [record(f"pattern-{p}", "kl", 0.5, False, {"generation": {"duration_s": 3.0}},
                    {"pattern": p, "size": None}, ci=None, generator_info=pattern_info(p, 3.0))
             for p in ("delay", "flattening")]
    run = make_run(tmp_path, records=recs, with_samples=False)
    assert bench_main(["report", str(run), "--markdown"]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("|")]
    assert lines[0].split("|")[1:-1] == [" pattern ", " steps ", " × delay ", " fad ↓ ", " kl ↓ "]
    rows = {x.split("|")[1].strip(): [c.strip() for c in x.split("|")[2:-1]] for x in lines[2:]}
    assert list(rows) == list(PATTERN_ORDER)
    fad = {p: 1.0 + i for i, p in enumerate(pattern_names())}  # as _pattern_records writes them
    flat = fad["flattening"]
    assert rows["flattening"] == ["600 (K·T)", "4", f"{flat:g} [{flat - 0.1:g}, {flat + 0.1:g}]", "0.5"]
    assert rows["delay"][:2] == ["150 (T + 3 tail)", "1"]
    assert rows["delay"][2].startswith(f"{fad['delay']:g} [")
    assert rows["parallel"][-1] == "–"  # no kl record for it: shown as missing, not dropped
    assert rows["stereo_delay"][0] == "150 (T + 3 tail)"


def test_markdown_table_of_a_pattern_by_size_grid_has_a_size_column():
    from bench.report import pivot_markdown
    from tests.bench.report_fixture import PATTERNS, SIZES, ablation_records

    lines = pivot_markdown([parse_record(r, "fixture") for r in ablation_records()]).splitlines()
    assert lines[0].startswith("| pattern | size | steps |")
    cells = [[c.strip() for c in x.split("|")[1:3]] for x in lines[2:]]
    assert cells == [[p, s] for p in PATTERNS for s in SIZES]


@pytest.mark.parametrize("pattern", ["delay", "flattening"])
def test_musicgen_adapter_describes_its_models_pattern(tmp_path, pattern):
    from baselines.musicgen import MusicGenGenerator
    from bench.api import Context
    from musicgen.testing import tiny_musicgen

    model = tiny_musicgen(seed=0)
    model.pattern = get_pattern(pattern, num_codebooks=model.num_codebooks)
    model.save_pretrained(str(tmp_path / "tiny"))
    g = MusicGenGenerator(MusicGenGenerator.Params(checkpoint=str(tmp_path / "tiny")), Context())
    info = g.describe(0.5)
    frames = round(0.5 * model.frame_rate)
    expected = get_pattern(pattern, num_codebooks=model.num_codebooks)
    assert info["pattern"] == pattern and info["frames"] == frames
    assert info["steps"] == expected.num_steps(frames) and info["delay_tail"] == expected.max_delay
    (pivot,) = pivots([parse_record(record(f"m-{p}", "fad", 1.0, False, {}, {"pattern": p},
                                           generator_info=info if p == pattern else None), "t")
                       for p in (pattern, "parallel")])
    assert pivot.steps[pattern] + pivot.tails[pattern] == expected.num_steps(frames)
