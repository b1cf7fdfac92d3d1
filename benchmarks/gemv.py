"""The decode step's weight products alone: the compiled ``f32_gemv`` against MKL, and the read bound.

    python benchmarks/gemv.py [--rows 2,8,16,32] [--threads 2] [--rounds 4]

The products of one decode step of a musicgen-small-sized decoder (24 layers of q/k/v fused
``[3072, 1024]``, self-attention out, cross-attention q and out ``[1024, 1024]``, ``[4096, 1024]`` and
``[1024, 4096]``; random float32 weights, 1.41 GB), for ``M`` activation rows (2 per prompt with CFG),
timed per implementation (best of ``--rounds``, order alternating): ``f32_gemv``
(``musicgen.modules.gemv.f32_linear``), ``weight_left`` (``(W x^T)^T`` through MKL) and ``F.linear``.
"GB/s" = weight bytes / seconds; "of read" = over the read bandwidth measured before and after every
round (``generation_e2e.read_bandwidth_gbps``: the best plain read of 512 MiB, the best of all kept),
i.e. how close the products alone come to the bound that a decode step's weights set.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's musicgen, not an install
sys.path.insert(0, str(Path(__file__).resolve().parent))
from generation_e2e import read_bandwidth_gbps  # noqa: E402  (benchmarks/, the script's own folder)

SHAPES = [(3072, 1024), (1024, 1024), (1024, 1024), (1024, 1024), (4096, 1024), (1024, 4096)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="2,8,16,32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--layers", type=int, default=24)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from musicgen.modules import gemv

    if not gemv.available():
        raise SystemExit("the compiled kernels cannot run here (needs x86-64 with AVX2 and a C compiler)")
    load_before = os.getloadavg()[0]
    g = torch.Generator().manual_seed(0)
    weights = [torch.randn(n, k, generator=g) / k**0.5 for _ in range(args.layers) for n, k in SHAPES]
    nbytes = sum(w.numel() * 4 for w in weights)
    impls = {"f32_gemv": gemv.f32_linear, "weight_left": lambda x, w: (w @ x.T).T.contiguous(),
             "F.linear": F.linear}
    bandwidth = read_bandwidth_gbps()
    rows = []
    for m in [int(r) for r in args.rows.split(",")]:
        xs = {k: torch.randn(m, k, generator=g) for k in (1024, 4096)}
        best: dict[str, float] = {}
        for r in range(args.rounds):
            for name in (list(impls) if r % 2 == 0 else list(impls)[::-1]):
                fn = impls[name]
                start = time.perf_counter()
                for w in weights:
                    fn(xs[w.shape[1]], w)
                best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
            bandwidth = max(bandwidth, read_bandwidth_gbps())
        rows.append((m, best))
    print(f"{args.layers} layers' decode products ({nbytes / 1e9:.2f} GB float32), {args.threads} threads, "
          f"best of {args.rounds} alternating rounds, torch {torch.__version__}; read bandwidth "
          f"{bandwidth:.1f} GB/s (best plain read); load average (1 min) before {load_before:.2f}, "
          f"after {os.getloadavg()[0]:.2f}")
    print()
    print("| rows | implementation | ms | GB/s | of read | x F.linear |")
    print("|---|---|---|---|---|---|")
    for m, best in rows:
        for name, seconds in best.items():
            gbs = nbytes / seconds / 1e9
            print(f"| {m} | {name} | {seconds * 1e3:.1f} | {gbs:.1f} | {gbs / bandwidth:.0%} | "
                  f"{best['F.linear'] / seconds:.2f} |")


if __name__ == "__main__":
    main()
