"""Hand-written inline SVG charts for the HTML report (and for the sections other modules add to it).

No JavaScript or plotting library: every function returns a plain ``<svg>`` string that a browser
renders from disk, offline, and that prints. Every piece of text (categories, series names, titles)
is escaped here because it may come from untrusted suite files; wrap the result in
``markupsafe.Markup`` to put it in a template. Colours come from CSS classes where possible
(``svg.plot`` in the report's stylesheet) and from ``PALETTE`` (Okabe-Ito, colour-blind safe) for
series.

The API (all sizes in CSS pixels; every chart scales down with the page through ``viewBox``):

- ``dot_whisker(title, rows, ...)``: one row per label, a dot at the value and a whisker over its
  interval, optional dashed reference lines (``marks``: the controls). Per-metric summaries.
- ``line_chart(title, categories, series, ...)``: a value per category for each series, joined by
  lines, with error bars; ``notes`` print a second line under each category (steps per pattern).
- ``errorbar_plot(...)``: the same chart without lines (categories that are not ordered).
- ``fit_chart(title, xs, ys, slope=, intercept=, ...)``: points and the fitted line
  ``y = slope * x + intercept`` drawn from ``x = 0`` (where the intercept is read: FAD-inf).
- ``histogram(title, values, bins=, ...)``: counts of values in equal bins.
- ``range_bar(value, best, worst)``: a small bar placing a value between a best and a worst case.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

#: colour-blind-safe palette (Okabe-Ito)
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")


@dataclass(frozen=True)
class Point:
    """A value with an optional confidence interval ``[low, high]``."""

    value: float
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Series:
    name: str
    points: tuple[Point | None, ...]  # one per category; None where there is no value


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def _tick(v: float) -> str:
    """A tick label: whole numbers up to 10^7 in full with thousands separators, else 3 digits."""
    if abs(v) < 1e7 and float(v).is_integer():
        return f"{v:,.0f}"
    return f"{v:.3g}"


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values (1, 2, 2.5, 5 x 10^k steps) covering ``[lo, hi]``."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi - lo < 1e-12 * max(1.0, abs(hi)):
        pad = abs(hi) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(count - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first, last = math.floor(lo / step), math.ceil(hi / step)
    return [float(f"{k * step:.12g}") for k in range(first, last + 1)]


class _Axes:
    """A linear value scale over ``[ticks[0], ticks[-1]]`` mapped onto pixels ``[p0, p1]``."""

    def __init__(self, values: Sequence[float], p0: float, p1: float, include: Sequence[float] = ()) -> None:
        vals = [v for v in (*values, *include) if _finite(v)]
        self.ticks = nice_ticks(min(vals, default=0.0), max(vals, default=1.0))
        self.lo, self.hi, self.p0, self.p1 = self.ticks[0], self.ticks[-1], p0, p1

    def __call__(self, v: float) -> float:
        return self.p0 + (self.p1 - self.p0) * (v - self.lo) / ((self.hi - self.lo) or 1.0)


def _open(title: str, width: int, height: int) -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
            f'<title>{escape(title)}</title>',
            f'<text x="8" y="16" class="plot-title">{escape(title)}</text>']


def _y_axis(parts: list[str], ax: _Axes, left: float, right: float, label: str) -> None:
    for t in ax.ticks:
        y = ax(t)
        parts.append(f'<line x1="{left - 4}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{_tick(t)}</text>')
    mid = (ax.p0 + ax.p1) / 2
    parts.append(f'<line x1="{left}" y1="{ax.p1}" x2="{left}" y2="{ax.p0}" class="axis"/>'
                 f'<text x="12" y="{mid:.1f}" class="label" text-anchor="middle" '
                 f'transform="rotate(-90 12 {mid:.1f})">{escape(label)}</text>')


def _whisker(x1: float, y1: float, x2: float, y2: float, colour: str, vertical: bool) -> str:
    cap = "h8" if vertical else "v8"
    a = f"M{x1 - 4:.1f} {y1:.1f}{cap}M{x2 - 4:.1f} {y2:.1f}{cap}" if vertical else \
        f"M{x1:.1f} {y1 - 4:.1f}{cap}M{x2:.1f} {y2 - 4:.1f}{cap}"
    return f'<path d="M{x1:.1f} {y1:.1f}L{x2:.1f} {y2:.1f}{a}" stroke="{colour}" class="errbar"/>'


def line_chart(title: str, categories: Sequence[str], series: Sequence[Series], x_label: str = "",
               y_label: str = "", notes: Sequence[str] = (), lines: bool = True, width: int | None = None,
               height: int = 300) -> str:
    """Categories along x, one coloured marker per series and category (error bar from ``low`` to
    ``high``), consecutive points of a series joined when ``lines``; a legend when there are several
    series. ``notes[i]`` is a second, smaller label under category ``i``."""
    left, right, top = 64, 16 + (130 if len(series) > 1 else 0), 28
    bottom = 52 + (14 if notes else 0)
    longest = max((len(c) for c in (*categories, *notes)), default=1)
    width = width or max(420, left + right + len(categories) * max(64, 7 * longest + 12))
    plot_w = width - left - right
    values = [v for s in series for p in s.points if p is not None for v in (p.value, p.low, p.high)]
    ax = _Axes([v for v in values if v is not None], top + (height - top - bottom), top)
    parts = _open(title, width, height)
    _y_axis(parts, ax, left, left + plot_w, y_label)
    base = ax.p0
    parts.append(f'<line x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}" class="axis"/>')
    slot = plot_w / max(len(categories), 1)
    for i, cat in enumerate(categories):
        x = left + slot * (i + 0.5)
        parts.append(f'<text x="{x:.1f}" y="{base + 16}" class="tick" text-anchor="middle">'
                     f'{escape(cat)}</text>')
        if i < len(notes) and notes[i]:
            parts.append(f'<text x="{x:.1f}" y="{base + 30}" class="note" text-anchor="middle">'
                         f'{escape(notes[i])}</text>')
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" class="label" '
                 f'text-anchor="middle">{escape(x_label)}</text>')
    spread = slot * (0.0 if lines else 0.5)
    for j, s in enumerate(series):
        colour = PALETTE[j % len(PALETTE)]
        offset = 0.0 if len(series) == 1 else -spread / 2 + spread * j / (len(series) - 1)
        path: list[str] = []
        for i, p in enumerate(s.points):
            if p is None or not _finite(p.value):
                path.append("")  # a gap breaks the line
                continue
            x = left + slot * (i + 0.5) + offset
            tip = f"{s.name} / {categories[i]}: {_fmt(p.value)}"
            if _finite(p.low) and _finite(p.high):
                tip += f" [{_fmt(p.low)}, {_fmt(p.high)}]"  # type: ignore[arg-type]
                parts.append(_whisker(x, ax(p.low), x, ax(p.high), colour, True))  # type: ignore[arg-type]
            parts.append(f'<circle cx="{x:.1f}" cy="{ax(p.value):.1f}" r="4" fill="{colour}">'
                         f'<title>{escape(tip)}</title></circle>')
            path.append(f"{x:.1f} {ax(p.value):.1f}")
        if lines:
            for run in " ".join("|" if not p else p for p in path).split("|"):
                pts = run.split()
                if len(pts) >= 4:
                    d = "M" + " L".join(f"{pts[k]} {pts[k + 1]}" for k in range(0, len(pts), 2))
                    parts.append(f'<path d="{d}" stroke="{colour}" class="line"/>')
        if len(series) > 1:
            ly = top + 16 * j + 6
            parts.append(f'<circle cx="{width - right + 12}" cy="{ly}" r="4" fill="{colour}"/>'
                         f'<text x="{width - right + 20}" y="{ly + 4}" class="tick">{escape(s.name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def errorbar_plot(title: str, x_label: str, y_label: str, categories: list[str],
                  series: list[Series], width: int | None = None, height: int = 300) -> str:
    """``line_chart`` without lines, series side by side (unordered categories)."""
    return line_chart(title, categories, series, x_label, y_label, lines=False, width=width, height=height)


def dot_whisker(title: str, rows: Sequence[tuple[str, Point | None]], x_label: str = "",
                marks: Mapping[str, float] | None = None, highlight: Sequence[str] = (),
                x_range: tuple[float, float] | None = None, width: int = 420) -> str:
    """One row per ``(label, point)``: a dot at the value, a whisker over ``[low, high]``; rows
    without a finite value say "no value". ``marks`` draws a dashed vertical line per named value
    (the controls); labels in ``highlight`` are drawn in the muted control style; ``x_range`` is
    always on the axis (e.g. ``(0, 1)`` for rates)."""
    marks = {k: v for k, v in (marks or {}).items() if _finite(v)}
    longest = max((len(r[0]) for r in rows), default=4)
    left, right, top, row_h = min(max(70, 7 * longest + 14), 220), 18, 30, 22
    height = top + row_h * max(len(rows), 1) + 40
    values = [v for _, p in rows if p is not None for v in (p.value, p.low, p.high) if _finite(v)]
    ax = _Axes(values, left, width - right, include=[*marks.values(), *(x_range or ())])
    bottom = top + row_h * max(len(rows), 1)
    parts = _open(title, width, height)
    for t in ax.ticks:
        x = ax(t)
        parts.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{bottom}" class="grid"/>'
                     f'<text x="{x:.1f}" y="{bottom + 14}" class="tick" text-anchor="middle">'
                     f'{_tick(t)}</text>')
    parts.append(f'<line x1="{left}" y1="{bottom}" x2="{width - right}" y2="{bottom}" class="axis"/>'
                 f'<text x="{(left + width - right) / 2:.1f}" y="{height - 6}" class="label" '
                 f'text-anchor="middle">{escape(x_label)}</text>')
    for name, v in marks.items():
        x = ax(v)
        parts.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{bottom}" class="mark">'
                     f'<title>{escape(name)}: {_fmt(v)}</title></line>')
    for i, (label, p) in enumerate(rows):
        y = top + row_h * (i + 0.5)
        cls = "tick control" if label in highlight else "tick"
        room = int((left - 14) / 6.2)
        shown = label if len(label) <= room else label[:room - 1] + "…"
        parts.append(f'<text x="{left - 8}" y="{y + 4:.1f}" class="{cls}" text-anchor="end">{escape(shown)}'
                     f'<title>{escape(label)}</title></text>')
        if p is None or not _finite(p.value):
            parts.append(f'<text x="{left + 4}" y="{y + 4:.1f}" class="note">no value</text>')
            continue
        colour = "#777" if label in highlight else PALETTE[0]
        tip = f"{label}: {_fmt(p.value)}"
        if _finite(p.low) and _finite(p.high):
            tip += f" [{_fmt(p.low)}, {_fmt(p.high)}]"  # type: ignore[arg-type]
            parts.append(_whisker(ax(p.low), y, ax(p.high), y, colour, False))  # type: ignore[arg-type]
        parts.append(f'<circle cx="{ax(p.value):.1f}" cy="{y:.1f}" r="4.5" fill="{colour}">'
                     f'<title>{escape(tip)}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


def fit_chart(title: str, xs: Sequence[float], ys: Sequence[float], slope: float, intercept: float,
              x_label: str = "", y_label: str = "", width: int = 420, height: int = 260) -> str:
    """Points ``(xs, ys)`` and the line ``slope * x + intercept`` from ``x = 0`` to the largest x;
    the intercept is marked (the extrapolated value)."""
    left, right, top, bottom = 64, 18, 28, 44
    x_max = max((x for x in xs if _finite(x)), default=1.0)
    ax_x = _Axes([0.0, x_max], left, width - right)
    line_ys = [intercept, slope * ax_x.hi + intercept]
    ax_y = _Axes([*ys, *line_ys], height - bottom, top)
    parts = _open(title, width, height)
    _y_axis(parts, ax_y, left, width - right, y_label)
    for t in ax_x.ticks:
        parts.append(f'<text x="{ax_x(t):.1f}" y="{height - bottom + 16}" class="tick" '
                     f'text-anchor="middle">{_tick(t)}</text>')
    parts.append(f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" '
                 f'class="axis"/><text x="{(left + width - right) / 2:.1f}" y="{height - 6}" class="label" '
                 f'text-anchor="middle">{escape(x_label)}</text>')
    parts.append(f'<line x1="{ax_x(0):.1f}" y1="{ax_y(line_ys[0]):.1f}" x2="{ax_x(ax_x.hi):.1f}" '
                 f'y2="{ax_y(line_ys[1]):.1f}" stroke="{PALETTE[1]}" class="line"/>')
    parts.append(f'<circle cx="{ax_x(0):.1f}" cy="{ax_y(intercept):.1f}" r="5" fill="none" '
                 f'stroke="{PALETTE[1]}" stroke-width="2">'
                 f'<title>intercept {_fmt(intercept)}</title></circle>')
    for x, y in zip(xs, ys):
        if _finite(x) and _finite(y):
            parts.append(f'<circle cx="{ax_x(x):.1f}" cy="{ax_y(y):.1f}" r="3.5" fill="{PALETTE[0]}">'
                         f'<title>{_fmt(x)}, {_fmt(y)}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


def histogram(title: str, values: Sequence[float], bins: int = 20, x_label: str = "",
              width: int = 420, height: int = 220) -> str:
    """Counts of the finite ``values`` in ``bins`` equal bins over their range."""
    vals = [v for v in values if _finite(v)]
    left, right, top, bottom = 48, 14, 28, 44
    lo, hi = (min(vals), max(vals)) if vals else (0.0, 1.0)
    hi = hi if hi > lo else lo + 1.0
    counts = [0] * bins
    for v in vals:
        counts[min(int((v - lo) / (hi - lo) * bins), bins - 1)] += 1
    ax_y = _Axes([0, max(counts, default=1)], height - bottom, top)
    parts = _open(title, width, height)
    _y_axis(parts, ax_y, left, width - right, "count")
    bw = (width - left - right) / bins
    for i, c in enumerate(counts):
        y = ax_y(c)
        parts.append(f'<rect x="{left + i * bw + 0.5:.1f}" y="{y:.1f}" width="{max(bw - 1, 1):.1f}" '
                     f'height="{ax_y(0) - y:.1f}" fill="{PALETTE[0]}"><title>{c}</title></rect>')
    parts.append(f'<text x="{left}" y="{height - bottom + 16}" class="tick">{_fmt(lo)}</text>'
                 f'<text x="{width - right}" y="{height - bottom + 16}" class="tick" text-anchor="end">'
                 f'{_fmt(hi)}</text><text x="{(left + width - right) / 2:.1f}" y="{height - 6}" '
                 f'class="label" text-anchor="middle">{escape(x_label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bar_position(value: float, best: float | None, worst: float | None) -> float | None:
    """Where ``value`` sits from ``worst`` (0) to ``best`` (1), unclipped; None without two distinct
    finite ends."""
    if not (_finite(value) and _finite(best) and _finite(worst)) or best == worst:
        return None
    return (value - worst) / (best - worst)  # type: ignore[operator]


def range_bar(value: float, best: float | None, worst: float | None, width: int = 72, height: int = 8) -> str:
    """A small bar: filled from the worst case (left) to where ``value`` sits, the best case at the
    right end; values beyond either end are clipped and drawn in the "beyond" style. Empty string
    without two distinct finite ends."""
    pos = bar_position(value, best, worst)
    if pos is None:
        return ""
    clipped = min(max(pos, 0.0), 1.0)
    cls = "bar-fill" if clipped == pos else "bar-fill beyond"
    label = f"{pos * 100:.0f}% of the way from the worst case ({_fmt(worst)}) to the best ({_fmt(best)})"  # type: ignore[arg-type]
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="range-bar" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">'
            f'<title>{escape(label)}</title>'
            f'<rect x="0" y="0" width="{width}" height="{height}" class="bar-track"/>'
            f'<rect x="0" y="0" width="{clipped * width:.1f}" height="{height}" class="{cls}"/></svg>')
