"""Wall time of ``bench run`` with 1 process (``python -m bench``) vs N processes (torchrun, gloo).

Each run starts from an empty run directory (nothing cached), so it measures generation and
evaluation from scratch, process start-up included. Process counts alternate within each repeat so
that load changes hit all of them; the table gives the median wall time, the runner's own
generation/evaluation time of the last repeat (rank 0's clock) and the speed-up over 1 process.
Results of every run are checked equal to the first 1-process run (values to 1e-9).

    python benchmarks/distributed.py suites/controls.yaml [--procs 1 2] [--repeats 3] [--threads 1]
    python benchmarks/distributed.py --tones          # the tones suite of bench.testing (CI suite)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_once(suite: Path, out: Path, procs: int, module: str, threads: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads)}
    if procs == 1:
        cmd = [sys.executable, "-m", module, "run", str(suite), "--out", str(out), "--no-progress"]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}",
               "-m", module, "run", str(suite), "--out", str(out), "--no-progress"]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return wall


def same_values(a: dict, b: dict) -> bool:
    if len(a["records"]) != len(b["records"]):
        return False
    for ra, rb in zip(a["records"], b["records"]):
        if (ra["generator"], ra["metric"], ra["n"]) != (rb["generator"], rb["metric"], rb["n"]):
            return False
        if abs(ra["value"] - rb["value"]) > 1e-9:
            return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("suite", nargs="?", help="suite file (or --tones)")
    ap.add_argument("--tones", action="store_true", help="the tones suite with the test plug-ins")
    ap.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of every process")
    ns = ap.parse_args()
    if not ns.tones and not ns.suite:
        ap.error("give a suite file or --tones")
    with tempfile.TemporaryDirectory(prefix="bench-dist-") as tmp:
        tmp_dir = Path(tmp)
        module = "bench"
        suite = Path(ns.suite).resolve() if ns.suite else None
        if ns.tones:
            from bench.testing import TONES_SUITE, write_tone_dataset

            write_tone_dataset(tmp_dir / "data")
            suite = tmp_dir / "tones.yaml"
            suite.write_text(TONES_SUITE)
            module = "bench.testing"
        walls: dict[int, list[float]] = {p: [] for p in ns.procs}
        last: dict[int, dict] = {}
        first = None
        for r in range(ns.repeats):
            order = ns.procs if r % 2 == 0 else list(reversed(ns.procs))
            for procs in order:
                out = tmp_dir / f"run-{procs}-{r}"
                walls[procs].append(run_once(suite, out, procs, module, ns.threads))
                last[procs] = json.loads((out / "results.json").read_text())
                first = first or last[procs]
                if not same_values(first, last[procs]):
                    raise SystemExit(f"{procs} processes gave other results than the first run")
        meta = first["metadata"]
        items = len(meta["generators"]) * len(meta["prompt_ids"]) * len(meta["seeds"])
        print(f"suite {suite.name if ns.tones else ns.suite}: {items} clips, OMP_NUM_THREADS={ns.threads}, "
              f"{os.cpu_count()} CPUs, median of {ns.repeats}, all results equal")
        print(f"{'processes':>9} {'wall_s':>8} {'generation_s':>13} {'evaluation_s':>13} {'speed-up':>9}")
        base = statistics.median(walls[ns.procs[0]])
        for procs in ns.procs:
            wall = statistics.median(walls[procs])
            d = last[procs]["metadata"]["durations_s"]
            print(f"{procs:>9} {wall:>8.2f} {d['generation']:>13.2f} {d['evaluation']:>13.2f} "
                  f"{base / wall:>9.2f}")


if __name__ == "__main__":
    main()
