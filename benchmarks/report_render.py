"""Time ``bench report`` on a synthetic MusicCaps-sized run (default 5,000 prompts x 5 systems).

The run is written by ``tests/bench/report_bulk.py`` (results.json with the demo suite's metrics,
samples.csv with one clip per prompt and system; with ``--audio`` every clip and reference is a short
WAV, so the grid's thumbnails are made for the first 1,000 clips as in a real run). The render is
timed in a fresh ``python -m bench report`` process, imports included, as a user runs it; the table
gives wall seconds (median of ``--rounds``), the HTML's size and the grid data's size.

Run from the repository root: ``python benchmarks/report_render.py [--prompts 5000] [--audio]
[--rounds 3]``. Writing 30,000 WAV files for ``--audio`` takes a minute or two.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.bench.report_bulk import make_bulk_run  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=5000)
    ap.add_argument("--audio", action="store_true", help="write a WAV per clip (thumbnails are made)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run = make_bulk_run(Path(tmp), args.prompts, audio=args.audio)
        print(f"wrote a {args.prompts}-prompt run in {time.perf_counter() - t0:.1f} s (audio: {args.audio})")
        times = []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "bench", "report", str(run)], check=True, cwd=ROOT,
                           stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - t0)
        html = run / "report.html"
        data = run / "report_files" / "grid.js"
        print("| prompts | clips | audio | render s (median) | all rounds | HTML MB | grid data MB |")
        print("|---:|---:|---|---:|---|---:|---:|")
        print(f"| {args.prompts} | {args.prompts * 5} | {args.audio} | {statistics.median(times):.2f} | "
              f"{', '.join(f'{t:.2f}' for t in times)} | {html.stat().st_size / 2**20:.2f} | "
              f"{data.stat().st_size / 2**20:.2f} |")


if __name__ == "__main__":
    main()
