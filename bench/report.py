"""``bench report RUN_DIR``: one self-contained HTML file from a run directory.

The page (``bench/templates/report.html.j2``, jinja2 with autoescape on: prompts and labels are
untrusted text) holds, in order: run metadata; a summary table per metric and protocol (value,
confidence interval, N, the best value marked, the direction of the metric); ablation pivot tables
(pattern x size, with the autoregressive steps of each pattern) and SVG plots with error bars when
records carry ``params.pattern`` / ``params.size``; the protocol of every metric; the per-sample
table with ``<audio>`` players (paths relative to the HTML file), sortable by any column; and the
paper's published numbers in a separate, labelled block (``bench.published``), never in a measured
column. CSS and JS are inline; nothing is fetched from the network.

Values from different protocols (``bench.run_results.protocol_digest``) are never put in one column:
each (metric, protocol) pair gets its own table.

Steps per pattern come from the generator, never from a rule kept here: a token generator reports
its pattern in ``Generator.describe`` (``generator_info`` of each record: ``frames`` T, exact
``steps`` and ``delay_tail``; the ``musicgen`` adapter asks its model's pattern). The steps column
shows the nominal count, steps - delay tail (T for the delay, partial delay and parallel patterns, 2T
for partial flattening and coarse first, K*T for flattening: the paper's Table 4 ratios), its
multiple of T, and the delay tail the paper leaves out, so that nominal + tail is exactly the
sequence length the LM generates. Records without that information show an empty steps cell.

Usage: ``bench report RUN_DIR [--out FILE] [--title TEXT] [--samples NAME] [--no-paper-numbers]
[--markdown]``. The default output is ``RUN_DIR/report.html``; ``--markdown`` also prints the
ablation tables as one markdown table (``pivot_markdown``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from bench import __version__
from bench.files import atomic_write_text
from bench.per_clip import worst_rows
from bench.published import PUBLISHED_TABLES
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
    score_columns,
)
from bench.svg_plot import Point, Series, errorbar_plot

TEMPLATE = "report.html.j2"
TEMPLATE_DIR = Path(__file__).with_name("templates")

#: row order of the pattern tables (the paper's Table 4 order); other patterns follow in record order
PATTERN_ORDER = ("delay", "partial_delay", "parallel", "partial_flattening", "coarse_first", "flattening",
                 "stereo_delay", "stereo_partial_delay")
SIZE_ORDER = ("tiny", "xs", "xsmall", "small", "base", "medium", "large", "xl",
              "300M", "1.5B", "3.3B")


def __getattr__(name: str) -> Any:  # names that moved: bench.deprecated
    from bench.deprecated import lookup

    return lookup(__name__, name)


def fmt(value: float | None) -> str:
    """Four significant digits, or an en dash for a missing/non-finite value."""
    return f"{value:.4g}" if is_finite(value) else "–"


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
        r = self.record
        if r.ci_low is None or r.ci_high is None:
            return ""
        return f"[{fmt(r.ci_low)}, {fmt(r.ci_high)}]"


@dataclass
class MetricTable:
    """All records of one metric under one protocol."""

    metric: str
    digest: str
    higher_is_better: bool
    cells: list[Cell]

    @property
    def unit(self) -> str:
        return str(self.cells[0].record.protocol.get("unit") or "")

    @property
    def direction(self) -> str:
        return "higher is better ↑" if self.higher_is_better else "lower is better ↓"


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


def metric_tables(records: list[Record]) -> list[MetricTable]:
    groups: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in records:
        groups[(r.metric, r.digest)].append(r)
    tables = []
    for (metric, digest), recs in groups.items():
        hib = _check_direction(recs, metric, digest)
        cells = [Cell(r) for r in recs]
        _mark_best(cells, hib)
        tables.append(MetricTable(metric, digest, hib, cells))
    return tables


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
    by_pattern = len(pivot.patterns) > 1 or len(pivot.sizes) == 1
    cats, groups = (pivot.patterns, pivot.sizes) if by_pattern else (pivot.sizes, pivot.patterns)
    series = []
    for g in groups:
        pts: list[Point | None] = []
        for c in cats:
            found = pivot.cells.get((c, g) if by_pattern else (g, c)) or []
            r = found[0].record if found else None
            pts.append(Point(r.value, r.ci_low, r.ci_high) if r else None)
        series.append(Series(g, tuple(pts)))
    arrow = "↑" if pivot.higher_is_better else "↓"
    return errorbar_plot(f"{pivot.metric} {arrow} (protocol {pivot.digest})",
                         "pattern" if by_pattern else "size", pivot.metric, cats, series)


def _audio_src(path_text: Any, run_dir: Path, html_dir: Path) -> tuple[str, bool]:
    """(src relative to the HTML file's folder, whether the file exists)."""
    if path_text is None or (isinstance(path_text, float) and math.isnan(path_text)) or path_text == "":
        return "", False
    path = Path(str(path_text))
    full = path if path.is_absolute() else run_dir / path
    rel = os.path.relpath(full, html_dir)
    return Path(rel).as_posix(), full.is_file()


def sample_rows(run_dir: Path, html_dir: Path, samples_name: str,
                expected_sha256: str | None = None) -> tuple[list[str], list[dict[str, Any]]]:
    frame = load_samples(run_dir, samples_name, expected_sha256)
    if frame is None:
        return [], []
    scores = score_columns(frame)
    rows = []
    for rec in frame.to_dict("records"):
        clip_src, clip_ok = _audio_src(rec.get("clip"), run_dir, html_dir)
        ref_src, ref_ok = _audio_src(rec.get("reference"), run_dir, html_dir)
        prompt = rec.get("prompt")
        seed = rec.get("seed")
        rows.append({"generator": str(rec["generator"]), "prompt_id": str(rec["prompt_id"]),
                     "seed": "" if seed is None or seed != seed else str(seed),
                     "prompt": "" if prompt is None or prompt != prompt else str(prompt),
                     "clip": clip_src, "clip_ok": clip_ok, "reference": ref_src, "reference_ok": ref_ok,
                     "scores": {c: rec[c] for c in scores}})
    return scores, rows


def protocols(records: list[Record]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for r in records:
        entry = seen.setdefault(r.digest, {"digest": r.digest, "metrics": set(),
                                           "json": json.dumps(r.protocol, indent=2, sort_keys=True,
                                                              default=str)})
        entry["metrics"].add(r.metric)
    return [{**e, "metrics": sorted(e["metrics"])} for e in seen.values()]


def shorten(value: Any, max_items: int = 20) -> Any:
    """Metadata for display: lists longer than ``max_items`` cut, with a note of how many there were."""
    if isinstance(value, dict):
        return {k: shorten(v, max_items) for k, v in value.items()}
    if isinstance(value, list | tuple):
        head = [shorten(v, max_items) for v in value[:max_items]]
        return head + [f"... ({len(value)} items in all)"] if len(value) > max_items else head
    return value


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt"] = fmt
    env.filters["json_text"] = lambda v: json.dumps(v, sort_keys=True, default=str)
    return env


def render_html(results: RunResults, run_dir: Path, html_path: Path, title: str | None = None,
                paper_numbers: bool = True, samples_name: str | None = None) -> str:
    """The report as text. ``samples_name`` defaults to ``metadata.samples_table``, else samples.csv."""
    samples_name = samples_name or str(results.meta.get("samples_table") or SAMPLES_FILE)
    published = results.meta.get("samples_sha256")  # the table published with these results
    expected = published.get(samples_name) if isinstance(published, dict) else None
    scores, rows = sample_rows(run_dir.resolve(), html_path.resolve().parent, samples_name, expected)
    return environment().get_template(TEMPLATE).render(
        title=title or f"musicgen-bench report: {results.suite or run_dir.name}",
        results=results, meta=shorten(results.meta), version=__version__,
        tables=metric_tables(results.records), pivots=pivots(results.records),
        protocols=protocols(results.records), score_columns=scores, samples=rows,
        worst=worst_rows(run_dir.resolve(), html_path.resolve().parent, _audio_src),
        flags=flag_counts(results.meta),
        published=PUBLISHED_TABLES if paper_numbers else ())


def write_report(run_dir: str | Path, out: str | Path | None = None, title: str | None = None,
                 paper_numbers: bool = True, samples_name: str | None = None) -> Path:
    """Render ``RUN_DIR/results.json`` (+ per-sample table) to ``out`` (default RUN_DIR/report.html)
    through an exclusive temporary renamed into place (a planted link is never followed)."""
    run_dir = Path(run_dir)
    results = load_results(run_dir)
    html_path = Path(out) if out is not None else run_dir / "report.html"
    return atomic_write_text(html_path, render_html(results, run_dir, html_path, title, paper_numbers,
                                                    samples_name))  # makes the parent folder


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench report", description="Render a run directory as one HTML file.")
    ap.add_argument("run_dir", help="run directory holding results.json (and samples.csv)")
    ap.add_argument("--out", help="output HTML file (default RUN_DIR/report.html)")
    ap.add_argument("--title", help="page title")
    ap.add_argument("--samples", help="per-sample table file in RUN_DIR (default: metadata.samples_table, "
                    "else samples.csv)")
    ap.add_argument("--no-paper-numbers", action="store_true", help="leave out the published-numbers block")
    ap.add_argument("--markdown", action="store_true",
                    help="also print the ablation tables (pattern x size) as one markdown table")
    args = ap.parse_args(argv)
    try:
        path = write_report(args.run_dir, args.out, args.title, not args.no_paper_numbers, args.samples)
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
