"""The report's chart helpers: axes that cover the data, bars that place a value between two ends,
every text escaped, and charts that say what they draw."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.svg_plot import (
    Point,
    Series,
    bar_position,
    dot_whisker,
    fit_chart,
    histogram,
    line_chart,
    nice_ticks,
    range_bar,
)
from tests.bench.html_tree import parse

finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)


@given(finite, finite)
def test_ticks_cover_the_range_in_round_equal_steps(a, b):
    lo, hi = min(a, b), max(a, b)
    ticks = nice_ticks(lo, hi)
    assert ticks[0] <= lo + 1e-9 * max(1.0, abs(lo)) and ticks[-1] >= hi - 1e-9 * max(1.0, abs(hi))
    assert 2 <= len(ticks) <= 12
    steps = [y - x for x, y in zip(ticks, ticks[1:])]
    assert all(s > 0 for s in steps)
    assert max(steps) - min(steps) <= 1e-6 * max(steps)
    mantissa = steps[0] / 10 ** math.floor(math.log10(steps[0]))
    assert any(math.isclose(mantissa, m, rel_tol=1e-6) for m in (1, 2, 2.5, 5, 10))


def test_bar_places_a_value_between_worst_and_best():
    assert bar_position(3.25, 0.0, 14.5) == (3.25 - 14.5) / (0.0 - 14.5)
    assert bar_position(0.3, 0.5, 0.1) == pytest.approx(0.5)  # higher is better: worst 0.1, best 0.5
    assert bar_position(1.0, 1.0, 1.0) is None and bar_position(1.0, None, 0.0) is None
    assert range_bar(1.0, None, 0.0) == ""
    inside = parse(range_bar(0.3, 0.5, 0.1)).find_all("rect")
    assert inside[1].attrs["width"] == f"{0.5 * 72:.1f}" and "beyond" not in inside[1].attrs["class"]
    beyond = parse(range_bar(-1.0, 0.5, 0.1)).find_all("rect")[1]
    assert beyond.attrs["width"] == "0.0" and "beyond" in beyond.attrs["class"]


def test_text_is_escaped_everywhere():
    evil = '<script>alert(1)</script>"'
    charts = [line_chart(evil, [evil], [Series(evil, (Point(1.0, 0.5, 1.5),))], evil, evil, notes=[evil]),
              dot_whisker(evil, [(evil, Point(1.0))], evil, marks={evil: 0.5}),
              fit_chart(evil, [0.1, 0.2], [1.0, 2.0], 10.0, 0.0, evil, evil),
              histogram(evil, [1.0, 2.0], 4, evil)]
    for svg in charts:
        assert "<script" not in svg and parse(svg).find_all("svg")[0].attrs["aria-label"] == evil


def test_line_chart_breaks_at_missing_points_and_draws_each_interval():
    s = Series("a", (Point(1.0, 0.5, 1.5), Point(2.0), None, Point(3.0), Point(4.0, 3.0, 5.0)))
    dom = parse(line_chart("t", list("abcde"), [s]))
    assert len(dom.find_all("circle")) == 4 and len(dom.find_all("path", "errbar")) == 2
    lines = dom.find_all("path", "line")
    assert len(lines) == 2 and all(p.attrs["d"].count("L") == 1 for p in lines)  # a-b and d-e


def test_dot_whisker_rows_and_missing_values():
    dom = parse(dot_whisker("t", [("a", Point(1.0, 0.0, 2.0)), ("b", None)], marks={"best": 3.0},
                            highlight=["b"]))
    assert [t.text().strip() for t in dom.find_all("text", "note")] == ["no value"]
    assert len(dom.find_all("line", "mark")) == 1 and len(dom.find_all("path", "errbar")) == 1


def test_histogram_counts_every_value():
    values = [0.0, 0.1, 0.5, 0.9, 1.0, float("nan")]
    rects = parse(histogram("h", values, bins=2)).find_all("rect")
    assert sorted(int(r.find_all("title")[0].text()) for r in rects) == [2, 3]
