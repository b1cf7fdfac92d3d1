"""``bench run SUITE [--out DIR] [--limit N] [--only GENERATOR] [--device cpu|cuda] [--embed-batch-size N]``.

Validates the whole suite first (as ``bench validate``: nothing is generated when anything is
wrong), then runs it (``bench.runner``), prints one line per record, the cache counts and the speed
of generation and of each embedder (``bench.throughput``), and renders the HTML report
(``bench.report``) at ``report.html`` of the suite, inside the run directory.

Under torchrun (``torchrun --nproc-per-node N -m bench run ...``) every process runs this command;
``bench.distributed.init_world`` joins them into one world, the plan is shared out by rank, and only
rank 0 prints the records and writes the results and the report.

Before anything is generated the size of the plan is printed (``plan: P prompt(s) x G generator(s) x
S seed(s) = N clip(s) of D s``, on stderr). The run directory stays locked (``RunStore.lock``) until the
report is written. Ctrl-C ends the run
with exit status 130 and one line saying what is kept (the cached clips and embeddings) and how to
resume (the same command again). An ``--out`` that cannot be a run directory (a file, a folder that
cannot be made) and a run directory that cannot be written are one line each, exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bench.yamlsource import SuiteError

if TYPE_CHECKING:
    from bench.distributed import World
    from bench.runner import Runner
    from bench.suite import PlannedSuite


def run_command(args: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench run", description="Run a suite into a run directory.")
    ap.add_argument("suite")
    ap.add_argument("--out", default=None, help="run directory (default runs/<suite name>)")
    ap.add_argument("--limit", type=int, default=None, help="first N prompts of the dataset")
    ap.add_argument("--only", action="append", default=[], metavar="GENERATOR",
                    help="run only this generator (label or registry name); repeatable")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_embed_batch_option(ap)
    ns = ap.parse_args(args)
    if ns.limit is not None and ns.limit < 1:
        ap.error("--limit must be at least 1")
    from bench.distributed import init_world

    try:
        world = init_world(ns.device)
    except ValueError as e:
        print(f"bench run: {e}", file=sys.stderr)
        return 1
    try:
        return _run(ns, world)
    finally:
        world.close()


def _run(ns: argparse.Namespace, world: World) -> int:
    from bench.runner import Runner
    from bench.suite import load_suite

    only = [o for item in ns.only for o in item.split(",") if o]
    try:
        planned = load_suite(ns.suite, run_dir=ns.out, device=world.device, only=only)
    except SuiteError as e:  # the same on every rank: rank 0 says it
        if world.is_main:
            print(f"bench run: {e}", file=sys.stderr)
        return 1
    run_dir = Path(planned.run_dir)
    try:
        runner = Runner(planned, limit=ns.limit, only=only, device=world.device,
                        progress=not ns.no_progress, world=world, embed_batch_size=ns.embed_batch_size)
    except OSError as e:  # --out is a file, or its folder cannot be made
        if world.is_main:
            print(f"bench run: cannot use {run_dir} as the run directory: {_os_error(e)}; choose another "
                  "--out", file=sys.stderr)
        return 1
    try:  # the run directory stays locked until the report is written
        return _run_and_report(runner, planned, world)
    except KeyboardInterrupt:
        if world.is_main:
            print(f"bench run: interrupted; kept {runner.store.count_clips()} generated clip(s) and the "
                  f"embeddings cached in {run_dir / 'cache'}; results.json, the samples table and the report "
                  "were not written by this run; run the same command again to resume (only what is "
                  "missing is redone)", file=sys.stderr)
        return 130
    except OSError as e:  # a read-only or full run directory, a folder where a file should go, ...
        if world.is_main:
            print(f"bench run: cannot write into the run directory {run_dir}: {_os_error(e)}; what was "
                  "already cached is kept", file=sys.stderr)
        return 1
    finally:
        runner.store.unlock()


def add_embed_batch_option(ap: argparse.ArgumentParser) -> None:
    """``--embed-batch-size N``: clips per embedder call (also the items scored per chunk)."""
    from bench.embed import DEFAULT_EMBED_BATCH

    def positive(text: str) -> int:
        if not text.isdigit() or int(text) < 1:
            raise argparse.ArgumentTypeError(f"expected a whole number of clips >= 1, got {text!r}")
        return int(text)

    ap.add_argument("--embed-batch-size", type=positive, default=DEFAULT_EMBED_BATCH, metavar="N",
                    help=f"clips per embedder call (default {DEFAULT_EMBED_BATCH}); the numbers do not "
                         "depend on it")


def _os_error(e: OSError) -> str:
    where = f"{e.filename}: " if e.filename else ""
    return f"{where}{e.strerror or type(e).__name__}"


def _run_and_report(runner: Runner, planned: PlannedSuite, world: World) -> int:
    from bench.runner import RunError

    try:
        results = runner.run()
    except RunError as e:  # every rank knows every rank's error: rank 0 says it
        if world.is_main:
            print(f"bench run: error: {e}", file=sys.stderr)
        return 1
    if not world.is_main:
        return 0
    cache = results["metadata"]["cache"]
    for r in results["records"]:
        ci = f" [{r['ci_low']:.4g}, {r['ci_high']:.4g}]" if r["ci_low"] is not None else ""
        print(f"{r['generator']:<24} {r['metric']:<20} {r['value']:.6g}{ci} (n={r['n']})")
    print(f"clips: {cache['clips']['hits']} cached, {cache['clips']['generated']} generated; "
          f"embeddings: {cache['embeddings']['hits']} cached, {cache['embeddings']['computed']} computed")
    from bench.throughput import summary_lines

    for line in summary_lines(results["metadata"]["throughput"]):
        print(line)
    damaged = {k: v["damaged"] for k, v in cache.items() if v.get("damaged")}
    if damaged:
        print(f"damaged cache entries recomputed (not used): "
              f"{', '.join(f'{n} {k}' for k, n in damaged.items())}; see results.json metadata."
              "damaged_cache_entries")
    print(f"results: {Path(planned.run_dir) / 'results.json'}")
    render_report(runner, planned)
    return 0


def render_report(runner: Runner, planned: PlannedSuite) -> None:
    """The suite's HTML report in its run directory (when ``report.html`` is set), written while
    ``runner`` still holds the run directory's lock; prints its path."""
    run_dir = Path(planned.run_dir)
    options = planned.suite.report
    if options.html:
        from bench.report import write_report

        html = write_report(run_dir, out=runner.store.path(options.html), title=options.title,
                            paper_numbers=options.paper_numbers, samples_name=f"{options.samples}.csv")
        print(f"report: {html}")
