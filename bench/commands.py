"""``bench run SUITE [--out DIR] [--limit N] [--only GENERATOR] [--device cpu|cuda]``.

Validates the whole suite first (as ``bench validate``: nothing is generated when anything is
wrong), then runs it (``bench.runner``), prints one line per record and renders the HTML report when
``bench.report`` provides ``write_report(run_dir)``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from bench.yamlsource import SuiteError


def _report_hook(run_dir: Path) -> str | None:
    if importlib.util.find_spec("bench.report") is None:
        return None
    import bench.report as report

    write = getattr(report, "write_report", None)
    return str(write(run_dir)) if write is not None else None


def run_command(args: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench run", description="Run a suite into a run directory.")
    ap.add_argument("suite")
    ap.add_argument("--out", default=None, help="run directory (default runs/<suite name>)")
    ap.add_argument("--limit", type=int, default=None, help="first N prompts of the dataset")
    ap.add_argument("--only", action="append", default=[], metavar="GENERATOR",
                    help="run only this generator (label or registry name); repeatable")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    ns = ap.parse_args(args)
    if ns.limit is not None and ns.limit < 1:
        ap.error("--limit must be at least 1")
    from bench.runner import RunError, Runner
    from bench.suite import load_suite

    try:
        planned = load_suite(ns.suite, run_dir=ns.out, device=ns.device)
    except SuiteError as e:
        print(f"bench run: {e}", file=sys.stderr)
        return 1
    only = [o for item in ns.only for o in item.split(",") if o]
    try:
        results = Runner(planned, limit=ns.limit, only=only, device=ns.device,
                         progress=not ns.no_progress).run()
    except RunError as e:
        print(f"bench run: error: {e}", file=sys.stderr)
        return 1
    cache = results["metadata"]["cache"]
    for r in results["records"]:
        ci = f" [{r['ci_low']:.4g}, {r['ci_high']:.4g}]" if r["ci_low"] is not None else ""
        print(f"{r['generator']:<24} {r['metric']:<20} {r['value']:.6g}{ci} (n={r['n']})")
    print(f"clips: {cache['clips']['hits']} cached, {cache['clips']['generated']} generated; "
          f"embeddings: {cache['embeddings']['hits']} cached, {cache['embeddings']['computed']} computed")
    run_dir = planned.run_dir
    print(f"results: {Path(run_dir) / 'results.json'}")
    if planned.suite.report.html:
        report = _report_hook(Path(run_dir))
        print(f"report: {report}" if report else "report: not rendered (bench.report is not installed)")
    return 0
