"""Sections of the HTML report, and how to add one.

The report (``bench.report``) is a fixed head (title, leaderboard, per-metric charts) followed by
sections, each made by a *section provider*: a function ``provider(ctx: ReportContext)`` returning a
``Section``, a list of them, or None when it has nothing to show for this run. Sections are sorted
by ``order`` (ties keep provider order) and each gets an entry in the page's contents bar.

To add a section:

1. Write the provider in your own module, e.g. ``bench/report_worst.py``::

       from bench.report_sections import ReportContext, Section
       from bench.svg_plot import histogram

       def worst_clips_section(ctx: ReportContext) -> Section | None:
           if ctx.samples is None:
               return None
           html = ctx.partial("worst_clips.html.j2", rows=..., chart=ctx.svg(histogram("...", values)))
           return Section("worst-clips", "Worst clips per system", html, order=75)

   ``ctx.partial`` renders a template of ``bench/templates/`` (jinja2, autoescape on: untrusted text
   stays text; pass charts through ``ctx.svg``); ``ctx.rel(path)`` makes a run-directory path
   relative to the HTML file (for ``<audio src>``); ``ctx.add_file(name, text)`` writes a sidecar
   file beside the report (``<report>_files/name``) and returns its relative URL, for data that
   should not sit in the HTML (load it with ``<script src>``: ``fetch`` of ``file://`` is blocked).
2. Add ``"bench.report_worst:worst_clips_section"`` to ``SECTION_PROVIDERS`` below (lazy import
   strings, like the registry's built-ins), or pass the function in ``sections=`` of
   ``bench.report.write_report`` for a one-off.

Orders in use: 30 ablations, 40 FAD-inf fits, 45 memorization, 50 metric sanity (free), 60 listening
test (``bench.listening.section``), 70 listening grid, 75 worst clips, 90 details (systems,
protocols, metadata, published numbers). A provider that raises fails the report with an error
naming it; it never leaves a silently partial page.
"""

from __future__ import annotations

import importlib
import json
import os
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from markupsafe import Markup, escape

from bench.run_results import Record, ResultsError, RunResults, is_finite

TEMPLATE_DIR = Path(__file__).with_name("templates")

#: built-in providers, in order, as "module:function" (imported when a report is rendered)
SECTION_PROVIDERS: list[str] = [
    "bench.report:ablation_section",
    "bench.report_fad_inf:fad_inf_section",
    "bench.report_leaderboard:memorization_section",
    "bench.report_grid:grid_section",
    "bench.listening.section:report_section",
    "bench.report_worst:worst_clips_section",
    "bench.report_details:details_section",
]


@dataclass(frozen=True)
class Section:
    """One block of the page: ``id`` (HTML anchor), heading ``title``, rendered ``html`` (Markup:
    already escaped), ``order`` (see the module docstring) and an optional one-line ``summary``
    shown under the heading."""

    id: str
    title: str
    html: Markup
    order: int = 50
    summary: str = ""


SectionProvider = Callable[["ReportContext"], "Section | Iterable[Section] | None"]


def fmt(value: float | None) -> str:
    """Four significant digits, or an en dash for a missing/non-finite value."""
    return f"{value:.4g}" if is_finite(value) else "–"


def ci_text(record: Record) -> str:
    """A record's interval as ``[low, high]`` (``fmt`` digits), or "" when it has none."""
    if record.ci_low is None or record.ci_high is None:
        return ""
    return f"[{fmt(record.ci_low)}, {fmt(record.ci_high)}]"


def readable_json(value: Any, indent: str = "") -> str:
    """JSON for reading: objects one key a line (sorted), lists of plain values on one line."""
    inner = indent + "  "
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(str(k))}: {readable_json(v, inner)}" for k, v in sorted(value.items())]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list | tuple) and any(isinstance(v, dict | list | tuple) for v in value):
        return "[\n" + ",\n".join(inner + readable_json(v, inner) for v in value) + "\n" + indent + "]"
    return json.dumps(value, sort_keys=True, default=str)


def environment() -> jinja2.Environment:
    """The report's jinja2 environment: templates of ``bench/templates``, autoescape on, strict."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt"] = fmt
    env.filters["wbr"] = lambda v: Markup("_<wbr>").join(escape(str(v)).split("_"))  # break after _
    env.filters["json_text"] = readable_json
    return env


@dataclass
class ReportContext:
    """What a section provider may read: the run's results, its per-sample table (canonical column
    names, see ``bench.run_results.load_samples``; None when the run has none), where the HTML goes,
    and the sidecar files written with it."""

    results: RunResults
    run_dir: Path
    html_path: Path
    samples: pd.DataFrame | None
    env: jinja2.Environment = field(default_factory=environment)
    files: dict[str, str] = field(default_factory=dict)
    #: rendering options (``paper_numbers``, ``max_thumbnails``); providers read what they know
    options: dict[str, Any] = field(default_factory=dict)
    _prefix: str | None = field(default=None, init=False, repr=False)

    @property
    def records(self) -> list[Record]:
        return self.results.records

    @property
    def files_dir(self) -> str:
        """Name of the sidecar folder beside the HTML (``report.html`` -> ``report_files``)."""
        return f"{self.html_path.stem}_files"

    def rel(self, path_text: Any) -> str:
        """A run-directory path (relative or absolute) as a URL relative to the HTML's folder."""
        text = str(path_text)
        if os.path.isabs(text):
            return Path(os.path.relpath(text, self.html_path.resolve().parent)).as_posix()
        if self._prefix is None:
            rel = os.path.relpath(self.run_dir.resolve(), self.html_path.resolve().parent)
            self._prefix = Path(rel).as_posix()
        return posixpath.normpath(posixpath.join(self._prefix, text.replace(os.sep, "/")))

    def add_file(self, name: str, text: str) -> str:
        """Write ``text`` to ``<report>_files/name`` with the report; returns the relative URL."""
        if "/" in name or name.startswith("."):
            raise ValueError(f"sidecar file name {name!r}: expected a plain file name")
        self.files[name] = text
        return f"{self.files_dir}/{name}"

    def partial(self, template: str, **context: Any) -> Markup:
        """Render ``bench/templates/<template>`` with ``context`` (autoescaped) as Markup."""
        return Markup(self.env.get_template(template).render(**context))

    @staticmethod
    def svg(svg_text: str) -> Markup:
        """Mark an SVG string from ``bench.svg_plot`` (which escapes its own text) as safe HTML."""
        return Markup(svg_text)


def resolve(spec: str | SectionProvider) -> SectionProvider:
    if callable(spec):
        return spec
    module, _, attr = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise ResultsError(f"report section provider {spec!r} cannot be loaded: {err}") from err


def build_sections(ctx: ReportContext, providers: Iterable[str | SectionProvider]) -> list[Section]:
    """Every provider's sections, sorted by order. A provider's exception becomes a ``ResultsError``
    naming it; duplicate section ids are an error too."""
    out: list[Section] = []
    for spec in providers:
        provider = resolve(spec)
        name = spec if isinstance(spec, str) else getattr(spec, "__qualname__", repr(spec))
        try:
            made = provider(ctx)
        except ResultsError:
            raise
        except Exception as err:
            raise ResultsError(f"report section {name}: {type(err).__name__}: {err}") from err
        if made is None:
            continue
        for section in [made] if isinstance(made, Section) else list(made):
            if not isinstance(section, Section):
                raise ResultsError(f"report section {name}: returned {type(section).__name__}, "
                                   "expected bench.report_sections.Section")
            out.append(section)
    ids = [s.id for s in out]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ResultsError(f"report sections: duplicate id(s) {', '.join(dup)}")
    return sorted(out, key=lambda s: s.order)
