"""Report sections "Metric sanity" and "Sample size" (section providers, ``bench.report_sections``).

Computation: ``bench.sanity``; charts: ``bench.svg_plot``; partials: ``templates/sanity.html.j2`` and
``templates/sample_size.html.j2``. ``sanity_sections`` returns nothing for a run without degradation
records or sample-size curves, so reports of other suites are unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.metrics.functional.sample_size import NEGATIVE_FAD_INF_NOTE
from bench.report_sections import ReportContext, Section
from bench.run_results import Record
from bench.sanity import RHO_THRESHOLD, Monotonicity, SampleSizeRow, monotonicity, sample_size_rows
from bench.svg_plot import Point, Series, fit_chart, line_chart

VERDICT_CLASS = {"right way": "ok", "wrong way": "bad", "does not move": "flat", "flat": "flat"}


def _level_label(v: Any) -> str:
    return f"{v:g}" if isinstance(v, int | float) else str(v)


def degradation_chart(deg: str, items: list[Monotonicity]) -> str:
    """One line per metric: its normalised score (0 clean, 1 strongest, up = worse) per level."""
    series = []
    for m in items:
        mark = "" if m.verdict == "right way" else f" ({m.verdict})"
        series.append(Series(m.metric + mark, tuple(Point(v) for v in m.normalised)))
    return line_chart(deg, [_level_label(v) for v in items[0].levels], series,
                      x_label="level (mild → strong)", y_label="0 clean, 1 strongest; up = worse")


def _plot_subset(rows: list[SampleSizeRow], records: list[Record]) -> set[str]:
    """Generators whose sample-size curves are drawn: the clean clips and each degradation's strongest
    level in a sanity run, else the first eight."""
    params = {r.generator: r.params for r in records}
    strongest: dict[str, tuple[float, str]] = {}
    chosen = set()
    for row in rows:
        p = params.get(row.generator, {})
        if p.get("degradation") == "none":
            chosen.add(row.generator)
        elif "degradation" in p and "severity" in p:
            d, s = str(p["degradation"]), float(p["severity"])
            if d not in strongest or s > strongest[d][0]:
                strongest[d] = (s, row.generator)
    chosen |= {g for _, g in strongest.values()}
    return chosen or {row.generator for row in rows[:8]}


def _curve(name: str, a: np.ndarray) -> Series:
    """Mean over draws with the min-max of the draws as the whisker, one point per size."""
    return Series(name, tuple(Point(float(np.mean(c)), float(np.min(c)), float(np.max(c))) for c in a.T))


def _sample_size_view(ctx: ReportContext, row: SampleSizeRow, draw: bool) -> dict[str, Any]:
    cats = [str(n) for n in row.n_clips]
    fit = row.fit
    charts = []
    if draw:
        charts.append(ctx.svg(line_chart(f"{row.generator}: FAD vs clips", cats, [_curve("FAD", row.fad)],
                                         x_label="clips", y_label="FAD", width=340, height=230)))
        charts.append(ctx.svg(line_chart(f"{row.generator}: KAD vs clips", cats, [_curve("KAD", row.kad)],
                                         x_label="clips", y_label="KAD", width=340, height=230)))
        if isinstance(fit.get("slope"), int | float) and isinstance(fit.get("intercept"), int | float):
            frames = row.frames.reshape(-1)
            charts.append(ctx.svg(fit_chart(f"{row.generator}: FAD vs 1/frames (FAD-inf fit)",
                                            [1.0 / f for f in frames], list(row.fad.reshape(-1)),
                                            float(fit["slope"]), float(fit["intercept"]),
                                            x_label="1 / frames", y_label="FAD", width=340, height=230)))
    return {"generator": row.generator, "metric": row.embedder_metric, "n_clips": row.n_clips,
            "fad_first": float(np.mean(row.fad[:, 0])), "fad_last": float(np.mean(row.fad[:, -1])),
            "kad_first": float(np.mean(row.kad[:, 0])), "kad_first_sd": float(np.std(row.kad[:, 0])),
            "kad_last": float(np.mean(row.kad[:, -1])), "fit": fit, "charts": charts,
            "negative": isinstance(fit.get("intercept"), int | float) and fit["intercept"] < 0}


def sanity_sections(ctx: ReportContext) -> list[Section] | None:
    """The "Metric sanity" section (order 50) and the "Sample size" one (order 42), when the run has
    what they need."""
    out = []
    mono = monotonicity(ctx.records)
    if mono:
        metrics = list(dict.fromkeys((m.metric, m.digest, m.higher_is_better) for m in mono))
        degradations = list(dict.fromkeys(m.degradation for m in mono))
        cells = {(m.metric, m.digest, m.degradation): m for m in mono}
        charts = [ctx.svg(degradation_chart(d, [m for m in mono if m.degradation == d]))
                  for d in degradations]
        html = ctx.partial("sanity.html.j2", metrics=metrics, degradations=degradations, cells=cells,
                           charts=charts, classes=VERDICT_CLASS, threshold=RHO_THRESHOLD)
        moved = sum(m.verdict == "right way" for m in mono)
        out.append(Section("sanity", "Metric sanity: graded degradations", html, order=50,
                           summary=f"{moved} of {len(mono)} metric x degradation pairs move the right way."))
    rows = sample_size_rows(ctx.records)
    if rows:
        drawn = _plot_subset(rows, ctx.records)
        views = [_sample_size_view(ctx, row, row.generator in drawn) for row in rows]
        html = ctx.partial("sample_size.html.j2", rows=views, note=NEGATIVE_FAD_INF_NOTE,
                           any_negative=any(v["negative"] for v in views))
        out.append(Section("sample-size", "Sample size: FAD, FAD-inf and KAD against N", html, order=42,
                           summary="Scores of nested random subsets of each system's clips against the whole "
                                   "reference set."))
    return out or None
