"""Micro-benchmark of next-token sampling: ``sample_next`` vs simpler implementations, same run.

Per-call time (median over rounds; implementations alternate within every round) of sampling
``[B, K, V]`` logits with top-k 250, for B in {1, 4, 16}, K=4, V=2048:

- ``ours+gens``: ``sample_next`` with one ``torch.Generator`` per row (what generation uses).
- ``ours``: ``sample_next`` drawing from the global RNG.
- ``naive_loop``: a Python loop over codebooks; each does softmax over V, ``topk`` on the
  probabilities, masks the rest and calls ``torch.multinomial`` (audiocraft's ``sample_top_k``
  applied per codebook).
- ``batched_multinomial``: the same over all B*K rows at once (audiocraft's own batched form).

Run from the repository root: ``python benchmarks/sampling.py [--rounds 30] [--calls 50]
[--device cpu] [--threads N] [--clock wall|cpu]``. ``--clock cpu`` times with the process CPU
clock, which is steadier than the wall clock on a machine shared with other jobs (use it with
``--threads 1``, since it sums over threads).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from musicgen.models.sampling import make_generators, sample_next

TOP_K = 250


def naive_loop(logits: torch.Tensor) -> torch.Tensor:
    tokens = []
    for k in range(logits.shape[1]):
        probs = torch.softmax(logits[:, k].float(), dim=-1)
        values, _ = probs.topk(TOP_K, dim=-1)
        probs = probs * (probs >= values[:, -1:]).float()
        probs = probs / probs.sum(dim=-1, keepdim=True)
        tokens.append(torch.multinomial(probs, 1))
    return torch.cat(tokens, dim=1)


def batched_multinomial(logits: torch.Tensor) -> torch.Tensor:
    B, K, V = logits.shape
    probs = torch.softmax(logits.float(), dim=-1)
    values, _ = probs.topk(TOP_K, dim=-1)
    probs = probs * (probs >= values[..., -1:]).float()
    probs = probs / probs.sum(dim=-1, keepdim=True)
    return torch.multinomial(probs.view(B * K, V), 1).view(B, K)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--calls", type=int, default=50, help="calls per timed block")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--codebooks", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.perf_counter if args.clock == "wall" else time.process_time

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, "
          f"K={args.codebooks}, V={args.vocab}, top_k={TOP_K}, {args.rounds} rounds x {args.calls} calls, "
          f"{args.clock} clock")
    print(f"{'B':>3} {'implementation':<20} {'us/call':>9} {'vs ours+gens':>13}")
    for B in (1, 4, 16):
        logits = torch.randn(B, args.codebooks, args.vocab, device=device) * 3
        gens = make_generators(list(range(B)), device)
        impls = {
            "ours+gens": lambda x=logits, g=gens: sample_next(x, top_k=TOP_K, generators=g),
            "ours": lambda x=logits: sample_next(x, top_k=TOP_K),
            "naive_loop": lambda x=logits: naive_loop(x),
            "batched_multinomial": lambda x=logits: batched_multinomial(x),
        }
        times: dict[str, list[float]] = {name: [] for name in impls}
        for fn in impls.values():  # warm-up
            fn()
        for _ in range(args.rounds):
            for name, fn in impls.items():
                sync()
                start = clock()
                for _ in range(args.calls):
                    fn()
                sync()
                times[name].append((clock() - start) / args.calls * 1e6)
        reference = statistics.median(times["ours+gens"])
        for name, values in times.items():
            median = statistics.median(values)
            print(f"{B:>3} {name:<20} {median:>9.1f} {median / reference:>12.2f}x")


if __name__ == "__main__":
    main()
