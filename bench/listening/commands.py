"""``bench ratings import|simulate``: ratings into a run directory.

``bench ratings import RUN_DIR FILES... [--replace] [--screen RULE]... [--min-corr R] [--min-overlap N]
[--ref-below S] [--ref-max-fraction F] [--min-listened F] [--max-unlistened F]``: validate every
export and store them all, or none (one error line naming the file and the field). ``--screen``
(``crowdmos``, ``bs1534``, ``listened`` or ``none``; repeatable, applied in order) and the thresholds
set the stored screening rules of the tests touched; thresholds alone apply to the protocol's
default rule; without either a test keeps its rules (default: CrowdMOS for OVL/REL, BS.1534-3 for
MUSHRA; ``bench.listening.screening``).

``bench ratings simulate RUN_DIR --raters N --noise SD [--metric NAME] [--test ID] [--seed S]``:
synthetic raters following a metric (``bench.listening.simulate``).

Afterwards ``bench report RUN_DIR`` shows the "Listening test" section.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from bench.listening.design import ListeningError
from bench.listening.ratings import import_files
from bench.listening.screening import DEFAULTS, default_rules, make_rules
from bench.run_results import ResultsError


def _import(ns: argparse.Namespace) -> int:
    rules: Callable[[str], list[dict]] | None = None
    thresholds = {
        "min_corr": ns.min_corr,
        "min_overlap": ns.min_overlap,
        "ref_below": ns.ref_below,
        "max_fraction": ns.ref_max_fraction,
        "min_listened": ns.min_listened,
        "max_unlistened": ns.max_unlistened,
    }
    if ns.screen or any(v is not None for v in thresholds.values()):

        def chosen(protocol: str) -> list[dict]:
            names = ns.screen or [r["rule"] for r in default_rules(protocol)]
            return make_rules(names, protocol, **thresholds)

        rules = chosen
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
    imp.add_argument("--min-listened", type=float, help="listened: played fraction of a clip (default 0.9)")
    imp.add_argument(
        "--max-unlistened", type=float, help="listened: allowed fraction of clips not played (default 0)"
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
