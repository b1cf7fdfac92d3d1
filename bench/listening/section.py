"""The report's "Listening test" section: computed here (``summarise``), rendered by its own
template (``bench/templates/listening_section.html.j2``, ``render``) and handed to the report by the
section provider ``report_section`` (listed in ``bench.report_sections.SECTION_PROVIDERS``).

For every listening test of the run that has ratings: who rated (imported, simulated, removed by each
screening rule, kept), each system's score per scale with its two-way bootstrap interval (and, in
MUSHRA, the hidden reference's and the anchor's), an SVG plot of those scores, and the metric-human
agreement tables (``bench.listening.agreement``). Empty markup when the run has no rated test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markupsafe import Markup

from bench.listening.agreement import (
    N_BOOT,
    Agreement,
    Estimate,
    clip_agreement,
    system_agreement,
    system_scores,
)
from bench.listening.design import ANCHOR, HIDDEN_REFERENCE, ListeningError, Scale, TestKey, load_keys
from bench.listening.ratings import load_store, store_path
from bench.listening.screening import Screening, default_rules, describe, ratings_frame, screen
from bench.report_sections import ReportContext, Section, environment
from bench.run_results import load_results, load_samples
from bench.svg_plot import Point, Series, errorbar_plot

TEMPLATE = "listening_section.html.j2"  # in bench/templates, beside the report's


@dataclass
class TestSummary:
    key: TestKey
    screening: Screening
    rule_counts: list[tuple[str, int, str]]  # rule, raters it removed, who and why
    removed: dict[str, dict[str, str]]
    simulated: list[dict[str, Any]]  # one entry per simulated rater (how it was simulated)
    n_ratings: int
    rows: list[str]  # systems, then hidden reference / anchor
    scores: dict[str, dict[str, Estimate]]  # scale -> row -> estimate
    system_agreement: list[Agreement] = field(default_factory=list)
    clip_agreement: list[Agreement] = field(default_factory=list)
    svg: Markup = field(default_factory=lambda: Markup(""))
    n_boot: int = N_BOOT

    @property
    def scales(self) -> tuple[Scale, ...]:
        return self.key.scales


def summarise(
    run_dir: str | Path, n_boot: int = N_BOOT, seed: int = 0, problems: list[str] | None = None
) -> list[TestSummary]:
    """Every rated listening test of the run (oldest first). A test whose key or store cannot be read
    raises ``ListeningError``, or, when ``problems`` is a list, is left out with its error appended."""
    run_dir = Path(run_dir)
    try:
        keys = load_keys(run_dir)
    except ListeningError as e:
        if problems is None:
            raise
        problems.append(str(e))
        return []
    if not keys:
        return []
    results = load_results(run_dir)
    samples = load_samples(run_dir, str(results.meta.get("samples_table") or "samples.csv"))
    out = []
    for key in sorted(keys.values(), key=lambda k: (k.created, k.test_id)):
        try:
            summary = _summarise_test(run_dir, key, results.records, samples, n_boot, seed)
        except (ListeningError, KeyError, TypeError, ValueError) as e:
            message = (
                e if isinstance(e, ListeningError) else f"damaged ratings store ({type(e).__name__}: {e})"
            )
            if problems is None:
                raise ListeningError(f"{store_path(run_dir, key.test_id)}: {message}") from e
            problems.append(f"test {key.test_id}: {message}")
            continue
        if summary is not None:
            out.append(summary)
    return out


def _summarise_test(
    run_dir: Path, key: TestKey, records: list[Any], samples: Any, n_boot: int, seed: int
) -> TestSummary | None:
    store = load_store(run_dir, key)
    if not store["raters"]:
        return None
    frame = ratings_frame(key, store)
    rules = store.get("screening")
    result = screen(frame, default_rules(key.protocol) if rules is None else rules)
    kept = frame[frame["rater"].isin(result.kept)]
    extras = [k for k in (HIDDEN_REFERENCE, ANCHOR) if (kept["kind"] == k).any()]
    rows = list(key.systems) + [str(kept[kept["kind"] == k]["system"].iloc[0]) for k in extras]
    scores = {sc.name: system_scores(kept, sc.name, n_boot, seed) for sc in key.scales}
    simulated = [r["simulated"] for r in store["raters"] if r.get("simulated")]
    summary = TestSummary(
        key, result, _rule_counts(result), result.removed, simulated, len(kept), rows, scores, n_boot=n_boot
    )
    if not kept.empty:
        for sc in key.scales:
            summary.system_agreement += system_agreement(kept, records, sc.name, n_boot, seed)
            summary.clip_agreement += clip_agreement(kept, samples, records, sc.name, n_boot, seed)
        summary.svg = Markup(_plot(summary))
    return summary


def _rule_counts(result: Screening) -> list[tuple[str, int, str]]:
    out = []
    for rule in result.rules:
        removed = result.removed.get(rule["rule"], {})
        out.append((describe(rule), len(removed), "; ".join(f"{r} ({why})" for r, why in removed.items())))
    return out


def _plot(s: TestSummary) -> str:
    series = [
        Series(
            sc.label,
            tuple(
                Point(e.value, e.low, e.high) if (e := s.scores[sc.name].get(row)) else None for row in s.rows
            ),
        )
        for sc in s.scales
    ]
    return errorbar_plot(
        f"listening test {s.key.test_id}: mean score, 95 % bootstrap interval",
        "system",
        "score",
        s.rows,
        series,
    )


def render(summaries: list[TestSummary], problems: list[str] | None = None) -> Markup:
    """The section's markup (empty when there is nothing to show), through the report's jinja2
    environment (autoescape on; ``fmt`` prints four significant digits)."""
    if not summaries and not problems:
        return Markup("")
    template = environment().get_template(TEMPLATE)
    return Markup(template.render(tests=summaries, problems=problems or []))


def report_section(ctx: ReportContext) -> Section | None:
    """The report's section provider (``bench.report_sections``, order 60): every rated test of the
    run; a test whose key or store cannot be read is named with its error instead of failing the
    whole report. None when the run has no rated test."""
    problems: list[str] = []
    summaries = summarise(ctx.run_dir, problems=problems)
    if not summaries and not problems:
        return None
    raters = sum(len(s.screening.raters) for s in summaries)
    kept = sum(len(s.screening.kept) for s in summaries)
    synthetic = sum(len(s.simulated) for s in summaries)
    line = (
        f"{len(summaries)} rated test(s); {raters} raters imported ({synthetic} simulated), {kept} kept "
        "after screening"
    )
    return Section("listening", "Listening test", render(summaries, problems), order=60, summary=line)
