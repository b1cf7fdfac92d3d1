"""``bench ratings import|simulate``: ratings into a run directory.

``bench ratings import RUN_DIR FILES... [--replace] [--screen RULE]... [--min-corr R] [--min-overlap N]
[--ref-below S] [--ref-max-fraction F]``: validate every export and store them all, or none (one
error line naming the file and the field). ``--screen`` (``crowdmos``, ``bs1534`` or ``none``;
repeatable, applied in order) and the thresholds set the stored screening rules of the tests
touched; without them a test keeps its rules (default: CrowdMOS for OVL/REL, BS.1534-3 for MUSHRA).

``bench ratings simulate RUN_DIR --raters N --noise SD [--metric NAME] [--test ID] [--seed S]``:
synthetic raters following a metric (``bench.listening.simulate``).

Afterwards ``bench report RUN_DIR`` shows the "Listening test" section.
"""

from __future__ import annotations

import argparse
import sys

from bench.listening.design import ListeningError, load_keys
from bench.listening.ratings import import_files
from bench.listening.screening import DEFAULTS, make_rules
from bench.run_results import ResultsError


def _import(ns: argparse.Namespace) -> int:
    rules = None
    thresholds = {
        "min_corr": ns.min_corr,
        "min_overlap": ns.min_overlap,
        "ref_below": ns.ref_below,
        "max_fraction": ns.ref_max_fraction,
    }
    if ns.screen or any(v is not None for v in thresholds.values()):
        protocols = {k.protocol for k in load_keys(ns.run_dir).values()}
        names = ns.screen or (["bs1534"] if protocols == {"mushra"} else ["crowdmos"])
        rules = make_rules(names, protocols.pop() if len(protocols) == 1 else "ovl-rel", **thresholds)
    imported = import_files(ns.run_dir, ns.files, replace=ns.replace, screening=rules)
    for test_id, raters in imported.items():
        print(f"test {test_id}: imported {len(raters)} rater(s): {', '.join(raters)}")
    return 0


def _simulate(ns: argparse.Namespace) -> int:
    from bench.listening.simulate import FUNCTION, simulate

    key, raters, metric = simulate(ns.run_dir, ns.raters, ns.noise, ns.metric, ns.test, ns.seed)
    print(
        f"test {key.test_id}: {len(raters)} simulated raters following {metric}: {FUNCTION} "
        f"(noise {ns.noise}, seed {ns.seed})"
    )
    return 0


def ratings_command(args: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench ratings", description="Listening-test ratings of a run.")
    sub = ap.add_subparsers(dest="action", required=True)
    imp = sub.add_parser("import", help="validate and store rating exports (all or nothing)")
    imp.add_argument("run_dir")
    imp.add_argument("files", nargs="+")
    imp.add_argument("--replace", action="store_true", help="replace raters imported before")
    imp.add_argument(
        "--screen",
        action="append",
        choices=[*DEFAULTS, "none"],
        help="post-screening rule (repeatable, applied in order)",
    )
    imp.add_argument("--min-corr", type=float, help="crowdmos: minimum correlation (default 0.25)")
    imp.add_argument("--min-overlap", type=float, help="crowdmos: minimum shared stimuli (default 3)")
    imp.add_argument("--ref-below", type=float, help="bs1534: hidden-reference score limit (default 90)")
    imp.add_argument(
        "--ref-max-fraction", type=float, help="bs1534: allowed fraction of items (default 0.15)"
    )
    sim = sub.add_parser("simulate", help="synthetic raters whose ratings follow a metric")
    sim.add_argument("run_dir")
    sim.add_argument("--raters", type=int, required=True)
    sim.add_argument("--noise", type=float, required=True, help="SD of each rating's noise (score points)")
    sim.add_argument("--metric", help="metric NAME or NAME@DIGEST (default: the run's first)")
    sim.add_argument("--test", help="test id (default: the newest test)")
    sim.add_argument("--seed", type=int, default=0)
    ns = ap.parse_args(args)
    try:
        return _import(ns) if ns.action == "import" else _simulate(ns)
    except (ListeningError, ResultsError) as e:
        print(f"bench ratings {ns.action}: {e}", file=sys.stderr)
        return 2
