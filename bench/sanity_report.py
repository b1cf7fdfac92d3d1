"""The report's "Metric sanity" and "Sample size" parts: data for ``templates/_sanity.html.j2`` and
their inline SVG charts (computation: ``bench.sanity``).

``sanity_section(records)`` returns None when the run has neither degradation records nor
sample-size curves nor FAD-inf fits, so reports of other suites are unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape
from typing import Any

import numpy as np
from markupsafe import Markup

from bench.metrics.functional.sample_size import NEGATIVE_FAD_INF_NOTE
from bench.run_results import Record
from bench.sanity import (
    RHO_THRESHOLD,
    Monotonicity,
    SampleSizeRow,
    fad_inf_fits,
    monotonicity,
    sample_size_rows,
)
from bench.svg_plot import PALETTE, Point, Series, errorbar_plot

VERDICT_CLASS = {"right way": "ok", "wrong way": "bad", "does not move": "flat", "flat": "flat"}


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def line_chart(title: str, x_labels: list[str], lines: list[tuple[str, list[float], bool]],
               y_label: str, width: int = 520, height: int = 260) -> str:
    """SVG: one polyline per ``(name, values, dashed)`` over categorical ``x_labels``; legend right."""
    left, right, top, bottom = 56, 170, 26, 42
    pw, ph = width - left - right, height - top - bottom
    vals = [v for _, vs, _ in lines for v in vs if math.isfinite(v)] or [0.0, 1.0]
    lo, hi = min(min(vals), 0.0), max(max(vals), 1.0)
    pad = (hi - lo) * 0.06
    lo, hi = lo - pad, hi + pad

    def xp(i: int) -> float:
        return left + pw * (i + 0.5) / max(len(x_labels), 1)

    def yp(v: float) -> float:
        return top + ph * (1.0 - (v - lo) / (hi - lo))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="plot sanity-plot" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             f'<text x="{left}" y="16" class="plot-title">{escape(title)}</text>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" class="axis"/>',
             f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" class="axis"/>']
    for v in (0.0, 1.0) + ((-1.0,) if lo < -1.0 else ()):
        parts.append(f'<line x1="{left}" y1="{yp(v):.1f}" x2="{left + pw}" y2="{yp(v):.1f}" class="grid"/>'
                     f'<text x="{left - 5}" y="{yp(v) + 4:.1f}" class="tick" text-anchor="end">'
                     f'{_fmt(v)}</text>')
    for i, lab in enumerate(x_labels):
        parts.append(f'<text x="{xp(i):.1f}" y="{top + ph + 14}" class="tick" text-anchor="middle">'
                     f'{escape(lab)}</text>')
    parts.append(f'<text x="{left + pw / 2:.1f}" y="{height - 6}" class="label" text-anchor="middle">'
                 f'level (mild → strong)</text>')
    parts.append(f'<text x="12" y="{top + ph / 2:.1f}" class="label" text-anchor="middle" '
                 f'transform="rotate(-90 12 {top + ph / 2:.1f})">{escape(y_label)}</text>')
    for j, (name, values, dashed) in enumerate(lines):
        colour = PALETTE[j % len(PALETTE)]
        pts = " ".join(f"{xp(i):.1f},{yp(v):.1f}" for i, v in enumerate(values) if math.isfinite(v))
        dash = ' stroke-dasharray="4 3"' if dashed else ""
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="1.8"{dash}>'
                     f'<title>{escape(name)}: {", ".join(_fmt(v) for v in values)}</title></polyline>')
        for i, v in enumerate(values):
            if math.isfinite(v):
                parts.append(f'<circle cx="{xp(i):.1f}" cy="{yp(v):.1f}" r="2.5" fill="{colour}"/>')
        ly = top + 4 + 14 * j
        parts.append(f'<line x1="{width - right + 10}" y1="{ly}" x2="{width - right + 26}" y2="{ly}" '
                     f'stroke="{colour}" stroke-width="2"{dash}/><text x="{width - right + 30}" y="{ly + 4}" '
                     f'class="tick">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _level_label(v: Any) -> str:
    return f"{v:g}" if isinstance(v, int | float) else str(v)


@dataclass
class SanitySection:
    metrics: list[tuple[str, str, bool]]  # (metric, protocol digest, higher is better)
    degradations: list[str]
    cells: dict[tuple[str, str, str], Monotonicity]
    plots: list[tuple[str, Markup]]
    sample_size: list[dict[str, Any]] = field(default_factory=list)
    fad_inf: list[dict[str, Any]] = field(default_factory=list)
    threshold: float = RHO_THRESHOLD
    negative_fad_inf: str = ""  # the explanation, when a sample-size fit's intercept is below zero

    def cell(self, metric: str, digest: str, degradation: str) -> Monotonicity | None:
        return self.cells.get((metric, digest, degradation))

    @staticmethod
    def css(m: Monotonicity) -> str:
        return VERDICT_CLASS.get(m.verdict, "")


def _degradation_plot(deg: str, items: list[Monotonicity]) -> str:
    labels = [_level_label(v) for v in items[0].levels]
    lines = []
    for m in items:
        name = m.metric + (" (flat)" if m.verdict == "flat" or all(v == 0 for v in m.normalised) else "")
        lines.append((name, m.normalised, m.verdict != "right way"))
    return line_chart(deg, labels, lines, "score (0 clean, 1 strongest; up = worse)")


def _sample_size_view(row: SampleSizeRow) -> dict[str, Any]:
    cats = [str(n) for n in row.n_clips]

    def series(name: str, a: np.ndarray) -> Series:
        return Series(name, tuple(Point(float(np.mean(col)), float(np.min(col)), float(np.max(col)))
                                  for col in a.T))

    fad_svg = errorbar_plot(f"{row.generator}: FAD vs N ({row.fad.shape[0]} draws)",
                            "clips", "FAD", cats, [series("FAD", row.fad)], width=360, height=220)
    kad_svg = errorbar_plot(f"{row.generator}: KAD vs N", "clips", "KAD", cats, [series("KAD", row.kad)],
                            width=360, height=220)
    return {"generator": row.generator, "metric": row.embedder_metric, "n_clips": row.n_clips,
            "fad_first": float(np.mean(row.fad[:, 0])), "fad_last": float(np.mean(row.fad[:, -1])),
            "kad_first": float(np.mean(row.kad[:, 0])), "kad_first_sd": float(np.std(row.kad[:, 0])),
            "kad_last": float(np.mean(row.kad[:, -1])), "fit": row.fit,
            "svg": Markup(fad_svg + kad_svg)}


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


def sanity_section(records: list[Record]) -> SanitySection | None:
    """Everything the partial needs, or None when the run has nothing for it."""
    mono = monotonicity(records)
    rows = sample_size_rows(records)
    fits = fad_inf_fits(records)
    if not (mono or rows or fits):
        return None
    metrics = list(dict.fromkeys((m.metric, m.digest, m.higher_is_better) for m in mono))
    degradations = list(dict.fromkeys(m.degradation for m in mono))
    cells = {(m.metric, m.digest, m.degradation): m for m in mono}
    plots = [(d, Markup(_degradation_plot(d, [m for m in mono if m.degradation == d]))) for d in degradations]
    drawn = _plot_subset(rows, records)
    sample = []
    for row in rows:
        view = _sample_size_view(row)
        if row.generator not in drawn:
            view["svg"] = Markup("")
        sample.append(view)
    fad_inf = [{"generator": r.generator, "metric": r.metric, "value": r.value, **fit} for r, fit in fits]
    negative = any((s["fit"].get("intercept") or 0.0) < 0 for s in sample)
    return SanitySection(metrics, degradations, cells, plots, sample, fad_inf,
                         negative_fad_inf=NEGATIVE_FAD_INF_NOTE if negative else "")
