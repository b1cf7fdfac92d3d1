"""The report's first screen: a leaderboard of systems x metrics, and the per-metric charts.

Rows are the run's systems (generator labels, in the order of ``results.json``), columns its
metrics, one column per (metric, protocol digest): numbers of different protocols never share a
column (the column title then carries the digest). A cell holds the value, its interval, the rank,
a bar placing the value between the suite's controls, and, where the protocol matches the model
card's (``bench.published.published_value``), the published number beside it, labelled.

- Controls are the generators ``reference`` (the metrics' best case), ``noise`` and ``silence``
  (worst cases) and ``retrieval`` (nearest training caption: a memorization baseline), recognised by
  the registry name in ``metadata.generators[label].name`` (or the label itself when the metadata
  has no generators). They are shown in grey, never ranked and never starred.
- Rank: 1 is best among the non-control systems with a finite value (ties share a rank); shown
  only when at least two systems are under test.
- Bar: 0 at the worst control's value (noise, else silence), full at the reference's; values
  beyond either end are clipped and drawn lighter. No bar without both controls in the column.
- Memorization outputs (metric ``memorization``: exact/partial match rates, embedding copy rate,
  embedding cosine) are rates of copying, lower = less copying: shown as percentages together in
  one "memorization" column, with no rank, bar or star (the retrieval control copies by
  construction), and in their own section with charts.
- Parameters: each row shows only what differs between systems of the same generator (as
  ``key=value``), plus the weights it loads (checkpoint, model, recipe: the value alone); the
  full parameters are in the details section.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from bench.published import PublishedValue, published_value
from bench.report_sections import ReportContext, Section, ci_text, fmt
from bench.run_results import Record, ResultsError, RunResults, is_finite
from bench.svg_plot import Point, dot_whisker, range_bar

#: registry name -> role shown for a control generator
CONTROL_ROLES = {"reference": "control: best case", "noise": "control: worst case",
                 "silence": "control: worst case", "retrieval": "control: nearest training caption"}
MEMORIZATION = ("exact_match_rate", "partial_match_rate", "embedding_copy_rate", "embedding_cosine")
#: parameter keys that name the weights: always shown
IDENTITY_KEYS = ("checkpoint", "model", "model_dir", "recipe")


@dataclass
class System:
    label: str
    plugin: str
    role: str = ""  # empty for a system under test
    differs: list[tuple[str, str]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def control(self) -> bool:
        return bool(self.role)


@dataclass
class LeaderCell:
    record: Record
    rank: int | None = None
    bar: Markup = field(default_factory=lambda: Markup(""))
    published: PublishedValue | None = None

    @property
    def ci(self) -> str:
        return ci_text(self.record)


@dataclass
class Column:
    metric: str
    digest: str
    higher_is_better: bool
    unit: str
    rate: bool  # a memorization output: percentages, no rank/bar/star
    label: str
    cells: dict[str, LeaderCell] = field(default_factory=dict)
    best_case: float | None = None
    worst_case: float | None = None

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"

    @property
    def direction(self) -> str:
        if self.rate:
            return "lower = less copying"
        return "higher is better" if self.higher_is_better else "lower is better"

    @property
    def has_published(self) -> bool:
        return any(c.published for c in self.cells.values())

    @property
    def short(self) -> str:
        """The rate's name in the leaderboard's memorization column."""
        short = {"exact_match_rate": "exact", "partial_match_rate": "partial", "embedding_cosine": "cosine",
                 "embedding_copy_rate": "copy"}.get(self.metric, self.metric)
        return short if self.label == self.metric else f"{short} ({self.digest})"

    def show(self, value: float | None) -> str:
        """A value as this column prints it: rates as percentages."""
        if self.rate and self.metric != "embedding_cosine" and is_finite(value):
            return f"{100 * value:.1f}%"  # type: ignore[operator]
        return fmt(value)


def _flatten(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in params.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v if isinstance(v, str) else json.dumps(v, sort_keys=True)
    return out


def systems(results: RunResults) -> list[System]:
    """The run's systems in record order, with control roles and the parameters that differ."""
    meta_gens = results.meta.get("generators") if isinstance(results.meta.get("generators"), dict) else {}
    params: dict[str, dict[str, Any]] = {}
    for r in results.records:
        params.setdefault(r.generator, r.params)
    out = []
    for label, p in params.items():
        info = meta_gens.get(label) if isinstance(meta_gens.get(label), dict) else {}
        plugin = str(info.get("name") or label)
        out.append(System(label, plugin, CONTROL_ROLES.get(plugin, ""), params=p))
    by_plugin: dict[str, list[System]] = defaultdict(list)
    for s in out:
        by_plugin[s.plugin].append(s)
    for group in by_plugin.values():
        flat = [_flatten(s.params) for s in group]
        keys = list(dict.fromkeys(k for f in flat for k in f))
        varying = [k for k in keys if len({f.get(k) for f in flat}) > 1] if len(group) > 1 else []
        for s, f in zip(group, flat):
            shown = [k for k in keys
                     if (k in varying or k in IDENTITY_KEYS) and f.get(k) not in (None, "null")]
            s.differs = [(k, f[k]) for k in shown]
    return out


def _rank(cells: list[LeaderCell], higher_is_better: bool) -> None:
    values = sorted((c.record.value for c in cells), reverse=higher_is_better)
    for c in cells:
        c.rank = values.index(c.record.value) + 1


def columns(results: RunResults, systems_: list[System]) -> list[Column]:
    """One column per (metric, protocol digest), in record order; score columns first, then rates."""
    role = {s.label: s for s in systems_}
    groups: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in results.records:
        groups[(r.metric, r.digest)].append(r)
    names = [m for m, _ in groups]
    out = []
    for (metric, digest), recs in groups.items():
        if len({r.higher_is_better for r in recs}) > 1:
            raise ResultsError(f"metric {metric!r} (protocol {digest}) is marked both higher- and "
                               "lower-is-better in results.json")
        rate = metric in MEMORIZATION or recs[0].protocol.get("metric") == "memorization"
        label = metric if names.count(metric) == 1 else f"{metric} ({digest})"
        col = Column(metric, digest, recs[0].higher_is_better, str(recs[0].protocol.get("unit") or ""),
                     rate, label)
        for r in recs:
            if r.generator in col.cells:
                raise ResultsError(f"results.json: two records of {r.generator!r} for metric {metric!r} "
                                   f"under protocol {digest}")
            col.cells[r.generator] = LeaderCell(r, published=published_value(metric, r.params, r.protocol))
        plugin_of = {label_: role[label_].plugin for label_ in col.cells if label_ in role}
        best = [c.record.value for g, c in col.cells.items() if plugin_of.get(g) == "reference"]
        worst = [c.record.value for p in ("noise", "silence") for g, c in col.cells.items()
                 if plugin_of.get(g) == p]
        col.best_case = best[0] if best else None
        col.worst_case = worst[0] if worst else None
        tested = [g for g in col.cells if not role[g].control]
        if not rate and len(tested) > 1:
            _rank([c for g, c in col.cells.items() if not role[g].control and is_finite(c.record.value)],
                  col.higher_is_better)
        for c in col.cells.values() if not rate else ():
            c.bar = Markup(range_bar(c.record.value, col.best_case, col.worst_case))
        out.append(col)
    return [c for c in out if not c.rate] + [c for c in out if c.rate]


def metric_chart(col: Column, systems_: list[System]) -> str:
    """Dot-and-whisker chart of one column, the controls dashed."""
    rows = [(s.label, Point(c.record.value, c.record.ci_low, c.record.ci_high) if c else None)
            for s in systems_ for c in [col.cells.get(s.label)] if c is not None]
    marks = {} if col.rate else {"best case (reference)": col.best_case,
                                 "worst case (noise)": col.worst_case}
    title = f"{col.label} {col.arrow} ({col.direction})"
    unit = f" [{col.unit}]" if col.unit else ""
    return dot_whisker(title, rows, x_label=col.metric + unit, x_range=(0.0, 1.0) if col.rate else None,
                       marks={k: v for k, v in marks.items() if v is not None},
                       highlight=[s.label for s in systems_ if s.control])


def leaderboard_context(results: RunResults) -> dict[str, Any]:
    """Template variables of the leaderboard and the chart grid."""
    systems_ = systems(results)
    cols = columns(results, systems_)
    return {"systems": systems_, "columns": cols, "score_columns": [c for c in cols if not c.rate],
            "rate_columns": [c for c in cols if c.rate],
            "charts": [Markup(metric_chart(c, systems_)) for c in cols if not c.rate],
            "identity_keys": IDENTITY_KEYS,
            "n_values": sorted({r.n for r in results.records if r.n is not None}),
            "any_published": any(c.has_published for c in cols)}


def memorization_section(ctx: ReportContext) -> Section | None:
    """Memorization rates per system as a chart (dot and whisker per rate), lower = less copying."""
    systems_ = systems(ctx.results)
    cols = [c for c in columns(ctx.results, systems_) if c.rate]
    if not cols:
        return None
    charts = [ctx.svg(metric_chart(c, systems_)) for c in cols]
    rows = [s for s in systems_ if any(s.label in c.cells for c in cols)]
    html = ctx.partial("memorization.html.j2", columns=cols, charts=charts, systems=rows)
    return Section("memorization", "Memorization", html, order=45,
                   summary="Rates of copying training data: lower means less copying. Controls are not "
                           "ranked; the retrieval control copies by construction.")
