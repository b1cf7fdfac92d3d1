"""Hand-written SVG plots for the HTML report: one metric against categories, with error bars.

No JavaScript or plotting library: the output is a plain ``<svg>`` string that any browser renders
from disk. Every piece of text (category names, series names, titles) is HTML-escaped here, because
it may come from untrusted suite files.
"""

from __future__ import annotations

import math
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


def _nice_range(lo: float, hi: float) -> tuple[float, float]:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return 0.0, 1.0
    if hi - lo < 1e-12:
        pad = abs(hi) * 0.1 or 1.0
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.08
    return lo - pad, hi + pad


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def errorbar_plot(title: str, x_label: str, y_label: str, categories: list[str],
                  series: list[Series], width: int | None = None, height: int = 300) -> str:
    """SVG: categories along x, one coloured marker per series (offset side by side), error bars
    from each point's ``low`` to ``high``, a legend, 5 y ticks. The width grows with the number of
    categories and the longest label so tick labels do not overlap."""
    left, right, top, bottom = 64, 16 + (120 if len(series) > 1 else 0), 28, 48
    longest = max((len(c) for c in categories), default=1)
    width = width or max(480, left + right + len(categories) * max(60, 7 * longest + 12))
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for s in series for p in s.points if p is not None
              for v in (p.value, p.low, p.high) if v is not None and math.isfinite(v)]
    y_lo, y_hi = _nice_range(min(values, default=0.0), max(values, default=1.0))

    def y_px(v: float) -> float:
        return top + plot_h * (1.0 - (v - y_lo) / (y_hi - y_lo))

    slot = plot_w / max(len(categories), 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             f'<text x="{left}" y="16" class="plot-title">{escape(title)}</text>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" class="axis"/>',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" class="axis"/>']
    for i in range(5):
        v = y_lo + (y_hi - y_lo) * i / 4
        y = y_px(v)
        parts.append(f'<line x1="{left - 4}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{_fmt(v)}</text>')
    for i, cat in enumerate(categories):
        x = left + slot * (i + 0.5)
        parts.append(f'<text x="{x:.1f}" y="{top + plot_h + 16}" class="tick" text-anchor="middle">'
                     f'{escape(cat)}</text>')
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 8}" class="label" '
                 f'text-anchor="middle">{escape(x_label)}</text>')
    parts.append(f'<text x="14" y="{top + plot_h / 2:.1f}" class="label" text-anchor="middle" '
                 f'transform="rotate(-90 14 {top + plot_h / 2:.1f})">{escape(y_label)}</text>')
    spread = slot * 0.5
    for j, s in enumerate(series):
        colour = PALETTE[j % len(PALETTE)]
        offset = 0.0 if len(series) == 1 else -spread / 2 + spread * j / (len(series) - 1)
        for i, p in enumerate(s.points):
            if p is None or not math.isfinite(p.value):
                continue
            x = left + slot * (i + 0.5) + offset
            tip = f"{s.name} / {categories[i]}: {_fmt(p.value)}"
            if p.low is not None and p.high is not None:
                tip += f" [{_fmt(p.low)}, {_fmt(p.high)}]"
                y1, y2 = y_px(p.low), y_px(p.high)
                parts.append(f'<path d="M{x:.1f} {y1:.1f}V{y2:.1f}M{x - 4:.1f} {y1:.1f}h8M{x - 4:.1f} '
                             f'{y2:.1f}h8" stroke="{colour}" class="errbar"/>')
            parts.append(f'<circle cx="{x:.1f}" cy="{y_px(p.value):.1f}" r="4" fill="{colour}">'
                         f'<title>{escape(tip)}</title></circle>')
        if len(series) > 1:
            ly = top + 14 * j + 6
            parts.append(f'<circle cx="{width - right + 12}" cy="{ly}" r="4" fill="{colour}"/>'
                         f'<text x="{width - right + 20}" y="{ly + 4}" class="tick">{escape(s.name)}</text>')
    parts.append("</svg>")
    return "".join(parts)
