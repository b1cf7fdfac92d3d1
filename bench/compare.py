"""``bench compare RUN_DIR BASELINE.json``: a regression check of a run against a committed baseline.

Exit status: 0 when every baseline metric is present, measured under the same protocol and did not
move the wrong way beyond its tolerance (improvements always pass); 1 when at least one metric got
worse beyond tolerance (or is no longer a finite number); 2 when the check cannot be made (a metric
of the baseline is missing from the run, the protocols differ, a file is malformed). A table of every
compared value is printed, with what moved marked.

Baseline file (JSON; written by ``bench compare RUN_DIR BASELINE.json --write-baseline``)::

    {
      "format": "musicgen-bench-baseline",
      "version": 1,
      "suite": "ci",                       # informative
      "created": "2026-11-26T17:00:00Z",   # informative
      "tolerance": {"abs": 0.0, "rel": 0.05},          # default for every metric (optional)
      "metric_tolerances": {"fad": {"abs": 0.5}},      # per metric name (optional)
      "entries": [
        {"generator": "musicgen-small", "metric": "fad", "value": 3.1, "higher_is_better": false,
         "protocol_digest": "3f2a...", "protocol": {...},
         "tolerance": {"rel": 0.1}}                   # per entry (optional)
      ]
    }

Records are matched by (generator label, metric name). A tolerance has an absolute part ``abs`` and a
relative part ``rel`` (fraction of the baseline's magnitude); the allowed worsening is
``max(abs, rel * |baseline|)``, and a value may get worse by at most that much. Which tolerance applies,
most specific first: ``--tolerance METRIC=...`` on the command line, the entry's ``tolerance``, the
file's ``metric_tolerances[METRIC]``, ``--tolerance ...`` without a metric, the file's ``tolerance``,
and finally zero (any worsening fails). Within one level, a missing ``abs`` or ``rel`` counts as 0.

``--tolerance`` takes ``[METRIC=]SPEC`` where SPEC is comma-separated parts, each an absolute number
(``0.05``) or a percentage (``5%``): ``--tolerance 5%``, ``--tolerance fad=0.5``,
``--tolerance clap=0.01,2%``. It may be given several times. With ``--write-baseline`` the tolerances
given are stored in the new file (metric ones under ``metric_tolerances``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.files import atomic_write_text, read_json
from bench.run_results import Record, ResultsError, load_results, protocol_digest

FORMAT = "musicgen-bench-baseline"
VERSION = 1


class CompareError(ValueError):
    """The comparison cannot be made (missing metric, protocol mismatch, malformed baseline)."""


@dataclass(frozen=True)
class Tolerance:
    abs: float = 0.0
    rel: float = 0.0

    def allowed(self, baseline: float) -> float:
        return max(self.abs, self.rel * abs(baseline))

    def to_json(self) -> dict[str, float]:
        return {"abs": self.abs, "rel": self.rel}

    @classmethod
    def from_json(cls, raw: Any, where: str) -> Tolerance:
        if not isinstance(raw, dict) or set(raw) - {"abs", "rel"}:
            raise CompareError(f"{where}: expected {{\"abs\": number, \"rel\": number}}, got {raw!r}")
        values = {}
        for k, v in raw.items():
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0 or not math.isfinite(v):
                raise CompareError(f"{where}.{k}: expected a non-negative number, got {v!r}")
            values[k] = float(v)
        return cls(**values)


def parse_tolerance(text: str) -> tuple[str | None, Tolerance]:
    """``[METRIC=]SPEC`` -> (metric or None, Tolerance); see the module docstring."""
    metric, _, spec = text.rpartition("=")
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not parts:
        raise CompareError(f"--tolerance {text!r}: empty; expected e.g. 0.05, 5% or fad=0.5,2%")
    abs_tol, rel_tol = 0.0, 0.0
    for part in parts:
        try:
            if part.endswith("%"):
                rel_tol = float(part[:-1]) / 100.0
            else:
                abs_tol = float(part)
        except ValueError:
            raise CompareError(f"--tolerance {text!r}: {part!r} is neither a number nor a percentage "
                               "(expected e.g. 0.05 or 5%)") from None
    if abs_tol < 0 or rel_tol < 0 or not (math.isfinite(abs_tol) and math.isfinite(rel_tol)):
        raise CompareError(f"--tolerance {text!r}: tolerances must be finite and non-negative")
    return (metric or None), Tolerance(abs_tol, rel_tol)


@dataclass(frozen=True)
class Entry:
    generator: str
    metric: str
    value: float
    higher_is_better: bool
    protocol_digest: str
    protocol: dict[str, Any]
    tolerance: Tolerance | None = None


@dataclass
class Baseline:
    entries: list[Entry]
    tolerance: Tolerance | None = None
    metric_tolerances: dict[str, Tolerance] | None = None
    suite: str = ""


def load_baseline(path: str | Path) -> Baseline:
    path = Path(path)
    data = read_json(path, CompareError, "baseline file",
                     f"write one with `bench compare RUN_DIR {path} --write-baseline`")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CompareError(f"{path}: not a baseline file (expected \"format\": \"{FORMAT}\")")
    if data.get("version") != VERSION:
        raise CompareError(f"{path}: baseline version {data.get('version')!r}; this bench reads {VERSION}")
    for name, kind in (("entries", list), ("metric_tolerances", dict)):
        if data.get(name) is not None and not isinstance(data[name], kind):
            raise CompareError(f"{path}: {name}: expected a JSON {'list' if kind is list else 'object'}, "
                               f"got {type(data[name]).__name__}")
    entries = []
    for i, raw in enumerate(data.get("entries") or []):
        where = f"{path}: entries[{i}]"
        try:
            protocol = dict(raw.get("protocol") or {})
            value, hib = float(raw["value"]), raw["higher_is_better"]
            if not isinstance(hib, bool):
                raise TypeError(f"higher_is_better must be true/false, got {hib!r}")
            entry = Entry(str(raw["generator"]), str(raw["metric"]), value, hib,
                          str(raw.get("protocol_digest") or protocol_digest(protocol)), protocol)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise CompareError(f"{where}: malformed entry ({err!r}); needs generator, metric, value, "
                               "higher_is_better, protocol_digest") from err
        if isinstance(raw["value"], bool) or not math.isfinite(value):
            raise CompareError(f"{where}.value: expected a finite number, got {raw['value']!r}; a baseline "
                               "holds measured values (rewrite it from a run whose metrics are finite)")
        if raw.get("tolerance"):
            entry = replace(entry, tolerance=Tolerance.from_json(raw["tolerance"], f"{where}.tolerance"))
        entries.append(entry)
    default = Tolerance.from_json(data["tolerance"], f"{path}: tolerance") if data.get("tolerance") else None
    per_metric = {m: Tolerance.from_json(t, f"{path}: metric_tolerances.{m}")
                  for m, t in (data.get("metric_tolerances") or {}).items()}
    return Baseline(entries, default, per_metric, str(data.get("suite", "")))


def _by_key(records: list[Record]) -> dict[tuple[str, str], Record]:
    out: dict[tuple[str, str], Record] = {}
    for r in records:
        if r.key in out:
            raise CompareError(f"run has several records for generator {r.generator!r}, metric "
                               f"{r.metric!r}: labels must be unique to compare against a baseline")
        out[r.key] = r
    return out


def baseline_from_records(records: list[Record], suite: str, cli_tolerances: dict[str | None, Tolerance]
                          ) -> dict[str, Any]:
    _by_key(records)
    bad = [f"{r.generator}/{r.metric} = {r.value}" for r in records if not math.isfinite(r.value)]
    if bad:
        raise CompareError(f"cannot write a baseline from non-finite values ({', '.join(bad)}): nothing "
                           "to compare later runs against; fix the run or leave those metrics out")
    out: dict[str, Any] = {"format": FORMAT, "version": VERSION, "suite": suite,
                           "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if None in cli_tolerances:
        out["tolerance"] = cli_tolerances[None].to_json()
    metric_tols = {m: t.to_json() for m, t in cli_tolerances.items() if m is not None}
    if metric_tols:
        out["metric_tolerances"] = metric_tols
    out["entries"] = [{"generator": r.generator, "metric": r.metric, "value": r.value,
                       "higher_is_better": r.higher_is_better, "protocol_digest": r.digest,
                       "protocol": r.protocol} for r in records]
    return out


@dataclass
class Row:
    generator: str
    metric: str
    baseline: float
    current: float
    allowed: float
    status: str  # "ok", "improved", "worse", "WORSE" (beyond tolerance)

    @property
    def failed(self) -> bool:
        return self.status == "WORSE"


def compare(records: list[Record], baseline: Baseline, cli_tolerances: dict[str | None, Tolerance]
            ) -> list[Row]:
    """One Row per baseline entry. Raises CompareError for a missing metric or a protocol mismatch."""
    by_key = _by_key(records)
    missing = [e for e in baseline.entries if (e.generator, e.metric) not in by_key]
    if missing:
        names = ", ".join(f"{e.generator}/{e.metric}" for e in missing)
        raise CompareError(f"{len(missing)} baseline metric(s) missing from the run: {names}")
    mismatched = []
    for e in baseline.entries:
        rec = by_key[(e.generator, e.metric)]
        if rec.higher_is_better != e.higher_is_better:
            mismatched.append(f"  {e.generator}/{e.metric}: direction changed (higher_is_better "
                              f"{e.higher_is_better} -> {rec.higher_is_better})")
        elif rec.digest != e.protocol_digest:
            diff = sorted(k for k in set(rec.protocol) | set(e.protocol)
                          if rec.protocol.get(k) != e.protocol.get(k))
            detail = ", ".join(f"{k}: {e.protocol.get(k)!r} -> {rec.protocol.get(k)!r}" for k in diff)
            mismatched.append(f"  {e.generator}/{e.metric}: protocol {e.protocol_digest} -> {rec.digest}"
                              + (f" ({detail})" if detail else ""))
    if mismatched:
        raise CompareError("refusing to compare values measured under different protocols:\n"
                           + "\n".join(mismatched)
                           + "\nrewrite the baseline (--write-baseline) if the protocol change is intended")
    rows = []
    per_metric = baseline.metric_tolerances or {}
    for e in baseline.entries:
        tol = (cli_tolerances.get(e.metric) or e.tolerance or per_metric.get(e.metric)
               or cli_tolerances.get(None) or baseline.tolerance or Tolerance())
        cur = by_key[(e.generator, e.metric)].value
        allowed = tol.allowed(e.value)
        worse_by = (e.value - cur) if e.higher_is_better else (cur - e.value)
        if not (math.isfinite(cur) and math.isfinite(e.value)):  # NaN never compares as "ok"
            status = "WORSE"
        elif worse_by > allowed + 1e-12 * max(1.0, abs(e.value)):
            status = "WORSE"
        elif worse_by > 0:
            status = "worse"
        elif worse_by < 0:
            status = "improved"
        else:
            status = "ok"
        rows.append(Row(e.generator, e.metric, e.value, cur, allowed, status))
    return rows


def format_table(rows: list[Row], direction: dict[tuple[str, str], bool]) -> str:
    head = ("generator", "metric", "dir", "baseline", "current", "delta", "allowed", "status")
    lines = [head]
    for r in rows:
        arrow = "↑" if direction[(r.generator, r.metric)] else "↓"
        lines.append((r.generator, r.metric, arrow, f"{r.baseline:.6g}", f"{r.current:.6g}",
                      f"{r.current - r.baseline:+.3g}", f"{r.allowed:.3g}", r.status))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench compare", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", help="run directory (or its results.json)")
    ap.add_argument("baseline", help="baseline JSON file")
    ap.add_argument("--tolerance", action="append", default=[], metavar="[METRIC=]SPEC",
                    help="allowed worsening: 0.05 (absolute), 5%% (relative), fad=0.5,2%% (one metric)")
    ap.add_argument("--write-baseline", action="store_true",
                    help="write BASELINE from the run (with the given tolerances) instead of comparing")
    args = ap.parse_args(argv)
    try:
        cli_tols: dict[str | None, Tolerance] = dict(parse_tolerance(t) for t in args.tolerance)
        results = load_results(args.run_dir)
        if args.write_baseline:
            data = baseline_from_records(results.records, results.suite, cli_tols)
            out = Path(args.baseline)
            try:  # an exclusive temporary renamed over OUT: a planted link is replaced, not followed
                atomic_write_text(out, json.dumps(data, indent=2, allow_nan=False) + "\n")
            except OSError as err:
                raise CompareError(f"{out}: cannot write the baseline ({err.strerror or err})") from None
            print(f"wrote {out} ({len(data['entries'])} entries)")
            return 0
        baseline = load_baseline(args.baseline)
        rows = compare(results.records, baseline, cli_tols)
    except (CompareError, ResultsError) as err:
        print(f"bench compare: {err}", file=sys.stderr)
        return 2
    direction = {(e.generator, e.metric): e.higher_is_better for e in baseline.entries}
    print(format_table(rows, direction))
    known = {(e.generator, e.metric) for e in baseline.entries}
    new = sorted({r.key for r in results.records} - known)
    if new:
        print(f"not in the baseline (not checked): {', '.join(f'{g}/{m}' for g, m in new)}")
    failed = [r for r in rows if r.failed]
    if failed:
        print(f"FAILED: {len(failed)} of {len(rows)} metric(s) got worse beyond tolerance: "
              + ", ".join(f"{r.generator}/{r.metric}" for r in failed))
        return 1
    print(f"ok: {len(rows)} metric(s) within tolerance of {args.baseline}")
    return 0
