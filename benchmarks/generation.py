"""Generation speed: our LM decode loop vs transformers' MusicGen on the same random weights.

    python benchmarks/generation.py                 # batch 1, 4, 16; fp32 and bf16 (long on a CPU)
    python benchmarks/generation.py --quick         # batch 1 only, fewer steps
    python benchmarks/generation.py --e2e           # end to end, phase by phase (generation_e2e.py)

Builds a random ``MusicgenForConditionalGeneration`` with a musicgen-small-sized decoder (dim 1024,
24 layers, 16 heads, card 2048, 4 codebooks, cross-attention; a one-layer T5 of width 768 and a tiny
EnCodec so that only the decoder costs time) and loads the same decoder weights into our ``LMModel``.

For each dtype (fp32, then bf16: both models converted) and batch size, first greedy decoding with
CFG 3.0 for every implementation (also the warm-up): the script asserts (fp32) that every exact option
of ours gives the codes of transformers, and reports it for bf16. Then it times sampling (CFG 3.0,
top-k 250, delay pattern) alternating the implementations, ``--repeats`` rounds, and keeps the best
time of each. Ours: ``kernel="auto"`` (the default: on CPU the compiled ``"f32_gemv"`` for fp32 up to
16 rows, then ``"weight_left"`` up to 64, and the compiled ``"bf16_gemv"`` for bf16 up to 64 rows,
where they build; else ``"weight_left"``/``"gemm"``; a note line says which kernel auto ran),
``"weight_left"``, ``"gemm"`` (transformers' arithmetic), ``"rowwise"`` (batch-invariant; fp32
batch <= 4 and bf16 batch 1 only, it reads the weights once per row), ``"int8"`` (fp32 only,
approximate, batch 1).

Columns: steps/s counts sequence steps (one forward of the ``[cond; null]`` batch each; 4 codebooks per
step); audio s/s = steps/s x batch / 50 (50 frames per second); "x tf" = steps/s over transformers' in the
same dtype and batch; "x our best fp32" over the fastest of our exact fp32 kernels at that batch;
bandwidth fraction = decoder weight bytes
read per step (each weight once, in its stored dtype; cross-attention k/v excluded: they run once) x
steps/s / read bandwidth measured in this run (the best plain read of 512 MiB by ``torch.sum`` and by
a compiled read loop, ``generation_e2e.read_bandwidth_gbps``: bytes read per second, as
a weight product only reads), i.e. the fraction of the memory-read bound reached; peak memory
= peak increase of the process RSS during one timed generation (sampled every 2 ms from
/proc/self/statm; weights already resident, packed weight copies made in the warm-up not counted).
The same-clip check compares row 0 (seed 0) of the sampled codes at batch 1 and at batch 4.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's musicgen, not an install
from generation_e2e import read_bandwidth_gbps  # noqa: E402  (benchmarks/, the script's own folder)

FRAME_RATE = 50
PAGE = os.sysconf("SC_PAGE_SIZE")


def build_reference(dim: int, layers: int, heads: int, seed: int = 0):
    from transformers import (
        EncodecConfig,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        T5Config,
    )

    torch.manual_seed(seed)
    text = T5Config(vocab_size=128, d_model=768, d_kv=64, d_ff=256, num_layers=1, num_heads=12)
    audio = EncodecConfig(audio_channels=1, sampling_rate=8000, num_filters=4, upsampling_ratios=[4, 2],
                          codebook_size=2048, codebook_dim=8, hidden_size=8, num_lstm_layers=1,
                          num_residual_layers=1, target_bandwidths=[44.0], chunk_length_s=None)
    decoder = MusicgenDecoderConfig(hidden_size=dim, num_hidden_layers=layers, num_attention_heads=heads,
                                    ffn_dim=4 * dim, vocab_size=2048, num_codebooks=4, dropout=0.0)
    config = MusicgenConfig(text_encoder=text.to_dict(), audio_encoder=audio.to_dict(),
                            decoder=decoder.to_dict())
    model = MusicgenForConditionalGeneration(config).eval()
    model.generation_config.pad_token_id = 2048
    model.generation_config.decoder_start_token_id = 2048
    return model


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class PeakRSS:
    """Peak RSS increase (bytes) while the ``with`` block runs, sampled by a thread."""

    def __enter__(self):
        self.base = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())
        self.delta = self.peak - self.base


def reference_codes(model, ids, mask, steps: int, **kwargs) -> tuple[torch.Tensor, float, int]:
    captured = {}
    original = model.audio_encoder.decode

    def grab(codes, *args, **kw):  # keep the codes, skip the (irrelevant) audio decoding
        captured["codes"] = codes
        return SimpleNamespace(audio_values=torch.zeros(1))

    model.audio_encoder.decode = grab
    try:
        with PeakRSS() as mem, torch.inference_mode():
            start = time.perf_counter()
            model.generate(input_ids=ids, attention_mask=mask, guidance_scale=3.0, max_new_tokens=steps,
                           min_new_tokens=steps, **kwargs)
            elapsed = time.perf_counter() - start
    finally:
        model.audio_encoder.decode = original
    return captured["codes"][0], elapsed, mem.delta


def ours_codes(lm, pattern, model, ids, mask, steps: int, **kwargs) -> tuple[torch.Tensor, float, int]:
    with PeakRSS() as mem, torch.inference_mode():
        start = time.perf_counter()
        hidden = model.text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        codes = lm.generate(pattern, steps - 3, condition=hidden, condition_mask=mask, cfg_coef=3.0, **kwargs)
        elapsed = time.perf_counter() - start
    return codes, elapsed, mem.delta


def weight_bytes_per_step(lm, dtype: torch.dtype, int8: bool = False) -> int:
    """Bytes of decoder weights read once per step (embeddings: 4 rows only; cross k/v: not per step)."""
    total = 0
    for name, p in lm.named_parameters():
        if name.startswith(("condition_proj", "emb.")) or ".cross_attn.k_proj" in name or \
                ".cross_attn.v_proj" in name:
            continue
        total += p.numel() * (1 if int8 and p.dim() == 2 else torch.finfo(dtype).bits // 8)
    return total


def implementations(batch: int, dtype: torch.dtype) -> list[str]:
    names = ["transformers", "ours auto", "ours gemm"]
    if dtype == torch.float32:
        names.append("ours weight_left")
    if batch <= (4 if dtype == torch.float32 else 1):  # bf16 rows one at a time are slow on AVX2 CPUs
        names.append("ours rowwise")
    if batch == 1 and dtype == torch.float32:
        names.append("ours int8")
    return names


def run_one(name, model, lm, pattern, ids, mask, steps, **kw):
    if name == "transformers":
        sampling = kw.get("use_sampling", True)
        return reference_codes(model, ids, mask, steps,
                               **({"do_sample": True, "top_k": 250} if sampling else {"do_sample": False}))
    kernel = name.split()[-1]
    return ours_codes(lm, pattern, model, ids, mask, steps, kernel=kernel, **kw)


def main() -> None:
    if "--e2e" in sys.argv:
        from generation_e2e import main as end_to_end  # this folder is on sys.path as the script's

        return end_to_end([a for a in sys.argv[1:] if a != "--e2e"])
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=12, help="sequence steps per generation (>= 4)")
    parser.add_argument("--repeats", type=int, default=2, help="timed rounds (best time is kept)")
    parser.add_argument("--batches", default="1,4,16")
    parser.add_argument("--dtypes", default="fp32,bf16")
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=24)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (peak RSS then counts host memory only)")
    parser.add_argument("--impls", default="", help="subset, e.g. 'ours rowwise,ours gemm'")
    parser.add_argument("--quick", action="store_true", help="batch 1, 8 steps, 1 round")
    parser.add_argument("--e2e", action="store_true",
                        help="end-to-end table instead (generation_e2e.py --help)")
    args = parser.parse_args()
    if args.quick:
        args.batches, args.steps, args.repeats = "1", 8, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batches.split(",")]
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    dtypes = {d: dtypes[d] for d in args.dtypes.split(",")}

    from musicgen.checkpoints.lm_transformers import lm_from_transformers_state
    from musicgen.modules.patterns import get_pattern

    load_before = os.getloadavg()[0]

    model = build_reference(args.dim, args.layers, args.heads)
    lm, _ = lm_from_transformers_state(model.config.to_dict(), model.state_dict(), "reference model")
    pattern = get_pattern("delay", num_codebooks=4)
    bandwidth = read_bandwidth_gbps()
    all_ids = torch.randint(2, 128, (max(batches), 8), generator=torch.Generator().manual_seed(0))
    rows, notes, first_rows = [], [], {}
    for dname, dtype in dtypes.items():
        model.to(args.device, dtype)  # the whole model: both share its (one-layer) text encoder
        lm.to(args.device, dtype)
        for batch in batches:
            ids = all_ids[:batch].to(args.device)  # prompt i (and seed i) is the same at every batch size
            mask = torch.ones_like(ids)
            names = [n for n in implementations(batch, dtype)
                     if not args.impls or n in args.impls.split(",") or n == "transformers"]
            greedy = {n: run_one(n, model, lm, pattern, ids, mask, args.steps, use_sampling=False)[0]
                      for n in names}
            for n in names:
                same = torch.equal(greedy[n], greedy["transformers"])
                if n != "transformers" and n != "ours int8":
                    notes.append(f"{dname} batch {batch}: greedy codes of {n} == transformers: {same}")
                    if dtype == torch.float32:
                        assert same, f"{n} greedy codes differ from transformers (fp32, batch {batch})"
                elif n == "ours int8":
                    agree = (greedy[n] == greedy["transformers"]).float().mean().item()
                    notes.append(f"{dname} batch {batch}: int8 greedy tokens equal to transformers': "
                                 f"{agree:.0%} (approximate by design)")
            best = {n: (float("inf"), 0) for n in names}
            for _ in range(args.repeats):
                for n in names:
                    codes, t, mem = run_one(n, model, lm, pattern, ids, mask, args.steps,
                                            seeds=list(range(batch)), top_k=250)
                    best[n] = (min(best[n][0], t), max(best[n][1], mem))
                    first_rows.setdefault((dname, n, batch), codes[0])
            for n in names:
                sps = args.steps / best[n][0]
                nbytes = weight_bytes_per_step(lm, dtype, int8=n.endswith("int8"))
                rows.append(dict(dtype=dname, batch=batch, name=n, sps=sps, mem=best[n][1],
                                 bw=nbytes * sps / 1e9 / bandwidth))
                print(f"  measured {dname} batch {batch} {n}: {sps:.2f} steps/s", file=sys.stderr, flush=True)
    from musicgen.modules.fast_linear import PackedLinear

    for dname, dtype in dtypes.items():
        probe = PackedLinear(torch.zeros(8, args.dim, dtype=dtype), "auto")
        picks = {b: probe.auto_kernel(torch.zeros(2 * b, 1, args.dim, dtype=dtype)) for b in batches}
        notes.append(f"{dname}: ours auto ran " + ", ".join(f"{k} at batch {b}" for b, k in picks.items()))
        for n in ("ours auto", "ours gemm", "ours rowwise"):
            a, b = first_rows.get((dname, n, 1)), first_rows.get((dname, n, 4))
            if a is not None and b is not None:
                notes.append(f"{dname} {n}: seed-0 clip identical at batch 1 and batch 4: "
                             f"{torch.equal(a, b)}")

    print(f"decoder dim {args.dim}, {args.layers} layers, {args.heads} heads, CFG 3.0 (2 rows per prompt), "
          f"top-k 250, {args.steps} steps, best of {args.repeats}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}; read bandwidth {bandwidth:.1f} GB/s (best plain read); "
          f"load average (1 min) before {load_before:.2f}, after {os.getloadavg()[0]:.2f}")
    print()
    print("| dtype | batch | implementation | steps/s | audio s/s | x transformers | x our best fp32 "
          "| bandwidth fraction | peak RSS increase (MB) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        tf = next(x["sps"] for x in rows if x["dtype"] == r["dtype"] and x["batch"] == r["batch"]
                  and x["name"] == "transformers")
        base = max((x["sps"] for x in rows if x["dtype"] == "fp32" and x["batch"] == r["batch"]
                    and x["name"] in ("ours auto", "ours gemm", "ours rowwise")), default=float("nan"))
        print(f"| {r['dtype']} | {r['batch']} | {r['name']} | {r['sps']:.2f} | "
              f"{r['sps'] * r['batch'] / FRAME_RATE:.3f} | {r['sps'] / tf:.2f} | {r['sps'] / base:.2f} | "
              f"{r['bw']:.2f} | {r['mem'] / 2**20:.0f} |")
    print()
    for line in notes:
        print(f"- {line}")


if __name__ == "__main__":
    main()
