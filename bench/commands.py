"""``bench run SUITE [--out DIR] [--limit N] [--only GENERATOR] [--device cpu|cuda]``.

Validates the whole suite first (as ``bench validate``: nothing is generated when anything is
wrong), then runs it (``bench.runner``), prints one line per record and renders the HTML report
(``bench.report``) at ``report.html`` of the suite, inside the run directory.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.yamlsource import SuiteError


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

    only = [o for item in ns.only for o in item.split(",") if o]
    try:
        planned = load_suite(ns.suite, run_dir=ns.out, device=ns.device, only=only)
    except SuiteError as e:
        print(f"bench run: {e}", file=sys.stderr)
        return 1
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
    run_dir = Path(planned.run_dir)
    print(f"results: {run_dir / 'results.json'}")
    options = planned.suite.report
    if options.html:
        from bench.report import write_report
        from bench.store import RunStore

        html = write_report(run_dir, out=RunStore(run_dir).path(options.html), title=options.title,
                            paper_numbers=options.paper_numbers, samples_name=f"{options.samples}.csv")
        print(f"report: {html}")
    return 0
