"""Report section: details on demand, each collapsed in a ``<details>`` element.

- Systems: every system's generator and full parameters.
- Protocols: what every record's protocol shares (top-level keys with one value in all records:
  dataset, generation, ...) shown once, then per (metric, protocol digest) only the rest.
- Run metadata (long lists shortened, with their length).
- Published numbers: the paper's and model card's tables, for context (``bench.published``); the
  leaderboard puts a published number beside a measured one only where the protocol matches.
"""

from __future__ import annotations

from typing import Any

from bench.published import PUBLISHED_TABLES
from bench.report_leaderboard import systems
from bench.report_sections import ReportContext, Section, readable_json
from bench.run_results import Record


def shorten(value: Any, max_items: int = 20) -> Any:
    """Metadata for display: lists longer than ``max_items`` cut, with a note of how many there were."""
    if isinstance(value, dict):
        return {k: shorten(v, max_items) for k, v in value.items()}
    if isinstance(value, list | tuple):
        head = [shorten(v, max_items) for v in value[:max_items]]
        return head + [f"... ({len(value)} items in all)"] if len(value) > max_items else head
    return value


def split_protocols(records: list[Record]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(protocol keys shared by every record with one value, per-(metric, digest) entries holding
    the digest, the metrics and the JSON of the remaining keys)."""
    if not records:
        return {}, []
    first = records[0].protocol
    shared = {k: v for k, v in first.items()
              if all(k in r.protocol and readable_json(r.protocol[k]) == readable_json(v) for r in records)}
    seen: dict[str, dict[str, Any]] = {}
    for r in records:
        entry = seen.setdefault(r.digest, {"digest": r.digest, "metrics": [], "json": readable_json(
            {k: v for k, v in r.protocol.items() if k not in shared})})
        if r.metric not in entry["metrics"]:
            entry["metrics"].append(r.metric)
    return shared, list(seen.values())


def details_section(ctx: ReportContext) -> Section:
    shared, protos = split_protocols(ctx.records)
    meta = shorten(ctx.results.meta)
    html = ctx.partial(
        "details.html.j2", systems=systems(ctx.results), shared=readable_json(shared), protocols=protos,
        meta=[(k, v if isinstance(v, str | int | float | bool) or v is None else readable_json(v))
              for k, v in sorted(meta.items())],
        published=PUBLISHED_TABLES if ctx.options.get("paper_numbers", True) else ())
    return Section("details", "Details", html, order=90,
                   summary="Parameters, protocols, run metadata and published numbers, collapsed: open what "
                           "you need.")
