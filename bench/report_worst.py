"""Report section: the worst clips of each system per per-clip score (``results.json["worst_clips"]``,
written by ``bench.per_clip``), each with a link to listen; order 75. Nothing when the run has none."""

from __future__ import annotations

from typing import Any

from bench.per_clip import worst_rows
from bench.report_sections import ReportContext, Section


def worst_clips_section(ctx: ReportContext) -> Section | None:
    def src(path: Any, run_dir: Any, html_dir: Any) -> tuple[str, bool]:
        return (ctx.rel(path), True) if isinstance(path, str) and path else ("", False)

    rows = worst_rows(ctx.run_dir, ctx.html_path.parent, src)
    if not rows:
        return None
    return Section("worst", "Worst clips", ctx.partial("worst_clips.html.j2", worst=rows), order=75,
                   summary="Per system and per-clip score, the clips with the worst values (highest where "
                           "lower is better).")
