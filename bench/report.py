"""``bench report RUN_DIR``: an HTML report a researcher reads at a glance.

The page (``bench/templates/report.html.j2``, jinja2 with autoescape on: prompts and labels are
untrusted text) opens on a leaderboard, systems x metrics (``bench.report_leaderboard``: value,
interval, rank, direction, a bar between the suite's controls, published numbers beside measured
ones where the protocol matches), then a dot-and-whisker chart per metric, then the sections made by
section providers (``bench.report_sections``: how to add one): ablations (below), FAD-inf's fit,
memorization rates, the listening grid (``bench.report_grid``, data in a sidecar
``<report>_files/grid.js``) and the collapsed details (parameters, protocols, metadata, published
tables). Charts are inline SVG (``bench.svg_plot``); CSS and JS are inline; nothing is fetched from
the network; the page works at 800 px and wider and prints without its controls.

Values from different protocols (``bench.run_results.protocol_digest``) are never put in one column.

Steps per pattern come from the generator, never from a rule kept here: a token generator reports
its pattern in ``Generator.describe`` (``generator_info`` of each record: ``frames`` T, exact
``steps`` and ``delay_tail``; the ``musicgen`` adapter asks its model's pattern). The steps column
shows the nominal count, steps - delay tail (T for the delay, partial delay and parallel patterns, 2T
for partial flattening and coarse first, K*T for flattening: the paper's Table 4 ratios), its
multiple of T, and the delay tail the paper leaves out, so that nominal + tail is exactly the
sequence length the LM generates. Records without that information show an empty steps cell.

Usage: ``bench report RUN_DIR [--out FILE] [--title TEXT] [--samples NAME] [--no-paper-numbers]
[--thumbnails N] [--markdown]``. The default output is ``RUN_DIR/report.html``; ``--markdown`` also
prints the ablation tables as one markdown table (``pivot_markdown``).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markupsafe import Markup

from bench import __version__
from bench.files import atomic_write_text
from bench.report_leaderboard import leaderboard_context
from bench.report_sections import (
    SECTION_PROVIDERS,
    ReportContext,
    Section,
    SectionProvider,
    build_sections,
    ci_text,
    fmt,
)
from bench.run_flags import flag_counts
from bench.run_results import (
    SAMPLES_FILE,
    Record,
    ResultsError,
    RunResults,
    is_finite,
    load_results,
    load_samples,
    reported_steps,
)
from bench.svg_plot import Point, Series, line_chart

TEMPLATE = "report.html.j2"

#: row order of the pattern tables (the paper's Table 4 order); other patterns follow in record order
PATTERN_ORDER = ("delay", "partial_delay", "parallel", "partial_flattening", "coarse_first", "flattening",
                 "stereo_delay", "stereo_partial_delay")
SIZE_ORDER = ("tiny", "xs", "xsmall", "small", "base", "medium", "large", "xl",
              "300M", "1.5B", "3.3B")


def __getattr__(name: str) -> Any:  # names that moved: bench.deprecated
    from bench.deprecated import lookup

    return lookup(__name__, name)


def _ordered(values: list[str], order: tuple[str, ...]) -> list[str]:
    rank = {v: i for i, v in enumerate(order)}
    unique = list(dict.fromkeys(values))
    return sorted(unique, key=lambda v: (rank.get(v, len(order)), unique.index(v)))


@dataclass
class Cell:
    record: Record
    best: bool = False

    @property
    def ci(self) -> str:
        return ci_text(self.record)


@dataclass
class Pivot:
    metric: str
    digest: str
    higher_is_better: bool
    patterns: list[str]
    sizes: list[str]
    cells: dict[tuple[str, str], list[Cell]]
    steps: dict[str, int | None]
    tails: dict[str, int] = field(default_factory=dict)
    formulas: dict[str, str] = field(default_factory=dict)
    svg: Markup = field(default_factory=lambda: Markup(""))

    def formula(self, pattern: str) -> str:
        return self.formulas.get(pattern, "")

    def ratio(self, pattern: str) -> str:
        base = self.steps.get("delay") or next((s for s in self.steps.values() if s), None)
        s = self.steps.get(pattern)
        return f"{s / base:g}" if s and base else ""


def _mark_best(cells: list[Cell], higher_is_better: bool) -> None:
    finite = [c for c in cells if is_finite(c.record.value)]
    if not finite:
        return
    best = (max if higher_is_better else min)(c.record.value for c in finite)
    for c in finite:
        c.best = c.record.value == best


def _check_direction(records: list[Record], metric: str, digest: str) -> bool:
    directions = {r.higher_is_better for r in records}
    if len(directions) > 1:
        raise ResultsError(f"metric {metric!r} (protocol {digest}) is marked both higher- and "
                           "lower-is-better in results.json")
    return directions.pop()


def _axis(r: Record, key: str) -> str:
    value = r.params.get(key)
    return "–" if value is None else str(value)


def pivots(records: list[Record]) -> list[Pivot]:
    """Pattern x size tables for records whose ``params.pattern`` or ``params.size`` is set (not None),
    one per (metric, protocol) that spans at least two patterns or sizes."""
    groups: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in records:
        if r.params.get("pattern") is not None or r.params.get("size") is not None:
            groups[(r.metric, r.digest)].append(r)
    out = []
    for (metric, digest), recs in groups.items():
        hib = _check_direction(recs, metric, digest)
        patterns = _ordered([_axis(r, "pattern") for r in recs], PATTERN_ORDER)
        sizes = _ordered([_axis(r, "size") for r in recs], SIZE_ORDER)
        if len(patterns) < 2 and len(sizes) < 2:
            continue
        cells: dict[tuple[str, str], list[Cell]] = defaultdict(list)
        steps: dict[str, int | None] = {}
        tails: dict[str, int] = {}
        formulas: dict[str, str] = {}
        for r in recs:
            p, s = _axis(r, "pattern"), _axis(r, "size")
            cells[(p, s)].append(Cell(r))
            reported = reported_steps(r)
            if steps.get(p) is None:
                steps[p] = None if reported is None else reported.nominal
                tails[p] = 0 if reported is None else reported.delay_tail
                formulas[p] = "" if reported is None else reported.formula
        _mark_best([c for cs in cells.values() for c in cs], hib)
        pivot = Pivot(metric, digest, hib, patterns, sizes, dict(cells), steps, tails, formulas)
        pivot.svg = Markup(_pivot_plot(pivot))
        out.append(pivot)
    return out


def pivot_markdown(records: list[Record]) -> str:
    """Every ablation pivot of ``records`` as one markdown table (for notes and papers): a row per
    (pattern, size) cell (no size column when no record has a size), the steps column as in the
    report, then one column per metric and protocol with ``value [ci_low, ci_high]`` (``–`` where a
    cell has no record). Empty when there is no pivot."""
    tables = pivots(records)
    if not tables:
        return ""
    rows = _ordered([p for t in tables for p in t.patterns], PATTERN_ORDER)
    sizes = _ordered([s for t in tables for s in t.sizes], SIZE_ORDER)
    names = [t.metric for t in tables]
    heads = [f"{t.metric}{'' if names.count(t.metric) == 1 else f' ({t.digest})'} "
             f"{'↑' if t.higher_is_better else '↓'}" for t in tables]
    with_size = sizes != ["–"]  # a pattern-only ablation has no size column
    lines = ["| pattern |" + (" size |" if with_size else "") + " steps | × delay | "
             + " | ".join(heads) + " |",
             "|---|" + ("---|" if with_size else "") + "---:|---:|" + "---:|" * len(tables)]
    for pattern in rows:
        for size in sizes:
            if not any((pattern, size) in t.cells for t in tables):
                continue
            first = next(t for t in tables if pattern in t.steps)
            steps = first.steps.get(pattern)
            tail = first.tails.get(pattern, 0)
            step_text = "" if steps is None else f"{steps} ({first.formula(pattern)}" + \
                (f" + {tail} tail)" if tail else ")")
            values = []
            for t in tables:
                found = t.cells.get((pattern, size)) or []
                values.append("; ".join(f"{fmt(c.record.value)} {c.ci}".strip() for c in found) or "–")
            lines.append(f"| {pattern} |" + (f" {size} |" if with_size else "")
                         + f" {step_text} | {first.ratio(pattern)} | " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"




def _pivot_plot(pivot: Pivot) -> str:
    """Line chart of a pivot: over patterns (one line per size, the steps under each pattern) when
    patterns vary, else over sizes (one line per pattern)."""
    by_pattern = len(pivot.patterns) > 1 or len(pivot.sizes) == 1
    cats, groups = (pivot.patterns, pivot.sizes) if by_pattern else (pivot.sizes, pivot.patterns)
    series = []
    for g in groups:
        pts: list[Point | None] = []
        for c in cats:
            found = pivot.cells.get((c, g) if by_pattern else (g, c)) or []
            r = found[0].record if found else None
            pts.append(Point(r.value, r.ci_low, r.ci_high) if r else None)
        series.append(Series(g if g != "–" else pivot.metric, tuple(pts)))
    notes = [f"{pivot.steps[p]} steps" if pivot.steps.get(p) else pivot.formula(p) for p in cats] \
        if by_pattern else []
    arrow = "↑" if pivot.higher_is_better else "↓"
    return line_chart(f"{pivot.metric} {arrow} by {'pattern' if by_pattern else 'size'}", cats, series,
                      x_label="pattern (autoregressive steps)" if by_pattern else "model size",
                      y_label=pivot.metric, notes=notes)


def ablation_section(ctx: ReportContext) -> Section | None:
    """Pattern x size pivots of the run, as line charts and tables (section order 30)."""
    found = pivots(ctx.records)
    if not found:
        return None
    return Section("ablations", "Ablations: pattern × size", ctx.partial("ablations.html.j2", pivots=found),
                   order=30, summary="Steps: autoregressive steps per pattern for T frames of this run's "
                   "duration, as each generator reports its pattern (paper Table 4: delay, partial "
                   "delay, parallel T; partial flattening, coarse first 2T; flattening K·T); the delay "
                   "patterns also take their delay tail (max delay) after the last frame, which the paper "
                   "leaves out.")


@dataclass
class Rendered:
    """The report's HTML and its sidecar files (name -> text, written to ``<report>_files/``)."""

    html: str
    files: dict[str, str]


def render(results: RunResults, run_dir: Path, html_path: Path, title: str | None = None,
           paper_numbers: bool = True, samples_name: str | None = None,
           sections: Iterable[str | SectionProvider] | None = None,
           max_thumbnails: int | None = None) -> Rendered:
    """The report of ``results``: ``sections`` default to ``SECTION_PROVIDERS`` (see
    ``bench.report_sections``); ``samples_name`` to ``metadata.samples_table``, else samples.csv."""
    samples_name = samples_name or str(results.meta.get("samples_table") or SAMPLES_FILE)
    options: dict[str, Any] = {"paper_numbers": paper_numbers}
    if max_thumbnails is not None:
        options["max_thumbnails"] = max_thumbnails
    published = results.meta.get("samples_sha256")  # the table published with these results
    expected = published.get(samples_name) if isinstance(published, dict) else None
    ctx = ReportContext(results, run_dir.resolve(), html_path.resolve(),
                        load_samples(run_dir, samples_name, expected), options=options)
    built = build_sections(ctx, SECTION_PROVIDERS if sections is None else sections)
    dataset = results.meta.get("dataset") if isinstance(results.meta.get("dataset"), dict) else {}
    html = ctx.env.get_template(TEMPLATE).render(
        title=title or f"musicgen-bench report: {results.suite or run_dir.name}", results=results,
        version=__version__, sections=built, dataset=dataset, n_prompts=dataset.get("n_prompts"),
        paper_numbers=paper_numbers, flags=flag_counts(results.meta), **leaderboard_context(results))
    return Rendered(html, ctx.files)


def write_report(run_dir: str | Path, out: str | Path | None = None, title: str | None = None,
                 paper_numbers: bool = True, samples_name: str | None = None,
                 sections: Iterable[str | SectionProvider] | None = None,
                 max_thumbnails: int | None = None) -> Path:
    """Render ``RUN_DIR/results.json`` (+ per-sample table) to ``out`` (default RUN_DIR/report.html)
    and its sidecar folder ``<out stem>_files/``; every file is written through a temporary and
    renamed, the HTML last (exclusive temporaries: a planted link is never followed). Returns the
    HTML's path."""
    run_dir = Path(run_dir)
    results = load_results(run_dir)
    html_path = Path(out) if out is not None else run_dir / "report.html"
    html_path.parent.mkdir(parents=True, exist_ok=True)
    done = render(results, run_dir, html_path, title, paper_numbers, samples_name, sections, max_thumbnails)
    files_dir = html_path.with_name(f"{html_path.stem}_files")
    for name, text in done.files.items():
        atomic_write_text(files_dir / name, text)
    return atomic_write_text(html_path, done.html)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench report", description="Render a run directory as an HTML report.")
    ap.add_argument("run_dir", help="run directory holding results.json (and samples.csv)")
    ap.add_argument("--out", help="output HTML file (default RUN_DIR/report.html; data in <stem>_files/)")
    ap.add_argument("--title", help="page title")
    ap.add_argument("--samples", help="per-sample table file in RUN_DIR (default: metadata.samples_table, "
                    "else samples.csv)")
    ap.add_argument("--no-paper-numbers", action="store_true",
                    help="leave out published numbers (beside measured ones and in the details)")
    ap.add_argument("--thumbnails", type=int, default=None, metavar="N",
                    help="make mel thumbnails for at most N clips of the listening grid (default 1000)")
    ap.add_argument("--markdown", action="store_true",
                    help="also print the ablation tables (pattern x size) as one markdown table")
    args = ap.parse_args(argv)
    try:
        path = write_report(args.run_dir, args.out, args.title, not args.no_paper_numbers, args.samples,
                            max_thumbnails=args.thumbnails)
        table = pivot_markdown(load_results(args.run_dir).records) if args.markdown else ""
    except (ResultsError, OSError) as err:  # OSError: the report cannot be written
        why = (f"cannot write {args.out or Path(args.run_dir) / 'report.html'} ({err.filename}: "
               f"{err.strerror})" if isinstance(err, OSError) else err)
        print(f"bench report: {why}", file=sys.stderr)
        return 2
    print(path)
    if args.markdown:
        print(table or "(no ablation table: no record has params.pattern or params.size)")
    return 0
