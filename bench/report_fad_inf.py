"""Report section: FAD-inf's fit per system (FAD of nested clip subsets against 1 / frames).

A record of a ``fad_inf_*`` metric carries its fit in ``details`` (``bench.metrics.fad``: ``frames``
and ``fads`` of the subsets, ``slope``, ``r2``); the value is the intercept, the FAD extrapolated to
infinitely many frames. Each system gets a chart of the points and the fitted line, so a reader sees
whether the line fits (r², spread) before trusting the extrapolation. Records without the fit (runs
written before ``details`` existed) are listed as such.
"""

from __future__ import annotations

from bench.report_sections import ReportContext, Section, fmt
from bench.svg_plot import fit_chart


def fad_inf_section(ctx: ReportContext) -> Section | None:
    recs = [r for r in ctx.records if r.metric.startswith("fad_inf")]
    if not recs:
        return None
    charts, missing = [], []
    for r in recs:
        frames, fads, slope = r.details.get("frames"), r.details.get("fads"), r.details.get("slope")
        if not (isinstance(frames, list) and isinstance(fads, list) and isinstance(slope, int | float)
                and len(frames) == len(fads) and frames):
            missing.append(f"{r.generator} / {r.metric}")
            continue
        xs = [1.0 / float(n) for n in frames]
        r2 = r.details.get("r2")
        title = f"{r.generator}: {r.metric} = {fmt(r.value)}"
        title += f" (r² {r2:.3f})" if isinstance(r2, float) else ""
        charts.append(ctx.svg(fit_chart(title, xs, [float(v) for v in fads], float(slope), r.value,
                                        x_label="1 / frames", y_label="FAD of subset")))
    html = ctx.partial("fad_inf.html.j2", charts=charts, missing=missing)
    return Section("fad-inf", "FAD-inf: the fit behind the extrapolation", html, order=40,
                   summary="FAD of nested random clip subsets against 1 / frames; the line's value at 0 "
                           "(open circle) is FAD-inf.")
