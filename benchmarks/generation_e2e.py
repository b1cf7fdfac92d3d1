"""End-to-end generation speed: ``MusicGen.generate`` vs transformers' ``generate``, phase by phase.

    python benchmarks/generation.py --e2e                       # batch 1 and 4, 30 frames, 2 rounds
    python benchmarks/generation.py --e2e --frames 60 --batches 1,4 --rounds 3 --threads 2

A random ``MusicgenForConditionalGeneration`` the size of musicgen-small (T5-base text encoder: 12
layers, width 768; the 32 kHz EnCodec: 64 filters, ratios 8-5-4-4, 4 codebooks of 2048; decoder:
width 1024, 24 layers, 16 heads) is saved to a temporary folder with a small word-level tokenizer,
and ``MusicGen.from_pretrained`` loads ours from that folder: same weights, same texts.

Both generate ``--frames`` frames (50 per second) for ``--batch`` prompts, CFG 3.0, top-k 250
sampling, text to waveform. First a greedy warm-up call per batch size checks that both give the
same codes (an assertion: tests/musicgen/test_musicgen.py holds the same on tiny models); then the
timed rounds alternate the order (ours first on even rounds) and keep the best total of each.

Phases (seconds of the best round): ``text`` = tokenizing + the text encoder (transformers:
tokenizer call + ``text_encoder``); ``prefill`` = from the end of text encoding to the first
sampled step (our cross-attention k/v and first forward; transformers' first decoder forward);
``decode`` = the remaining steps (steps/s in its own column); ``codec`` = codes -> waveform;
``other`` = the rest of the wall time (Python around the phases).

Bound: the decoder weights read per step (each weight once, fp32; embeddings of 4 rows and the
cross-attention k/v, computed once, excluded) over the read bandwidth measured in this run, at the
start and after every round (a shared machine's bandwidth drifts by tens of percent over minutes;
the best of all is kept), each the best of 3 ``torch.sum`` and 3 compiled read loops over a 512 MiB
float32 tensor with the same threads: bytes read per second (a sum only reads, as a weight product
does). "of bound" = decode steps/s x bytes per step / read bandwidth.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's musicgen, not an install

FRAME_RATE = 50
TEXTS = ["happy rock song with electric guitar and drums", "calm piano melody",
         "lo-fi hip hop beat with soft drums and a warm bass line", "epic orchestral music"]


def build_small(folder: str, seed: int = 0):
    """A random musicgen-small-sized transformers model saved (with a tokenizer) to ``folder``."""
    from transformers import (
        EncodecConfig,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        T5Config,
    )

    from musicgen.testing import tiny_text_tokenizer

    text = T5Config(vocab_size=32128, d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12,
                    dropout_rate=0.0)
    audio = EncodecConfig(sampling_rate=32000, audio_channels=1, num_filters=64,
                          upsampling_ratios=[8, 5, 4, 4],
                          codebook_size=2048, codebook_dim=128, hidden_size=128, num_lstm_layers=2,
                          target_bandwidths=[2.2], normalize=False, use_causal_conv=False,
                          chunk_length_s=None)
    decoder = MusicgenDecoderConfig(vocab_size=2048, max_position_embeddings=2048, num_hidden_layers=24,
                                    ffn_dim=4096, num_attention_heads=16, hidden_size=1024, num_codebooks=4,
                                    pad_token_id=2048, bos_token_id=2048, dropout=0.0)
    config = MusicgenConfig(text_encoder=text.to_dict(), audio_encoder=audio.to_dict(),
                            decoder=decoder.to_dict())
    torch.manual_seed(seed)
    model = MusicgenForConditionalGeneration(config).eval()
    model.generation_config.pad_token_id = 2048
    model.generation_config.decoder_start_token_id = 2048
    model.save_pretrained(folder)
    tiny_text_tokenizer(tuple(" ".join(TEXTS).split())).save_pretrained(folder)
    return model


def read_bandwidth_gbps(megabytes: int = 512) -> float:
    """Bytes read per second by a plain read of ``megabytes`` MiB of float32, GB/s: the best of 3
    ``torch.sum`` and of 3 sums by the compiled read loop (``musicgen.modules.gemv.read_sum``: eight
    independent accumulators per thread; torch's reduction reads slower than a weight product can on
    some CPUs, which would put a decode "above" its bound), alternating, with torch's threads."""
    from musicgen.modules import gemv

    x = torch.ones(megabytes * 2**20 // 4)
    readers = [x.sum] + ([lambda: gemv.read_sum(x)] if gemv.available() else [])
    best = float("inf")
    for _ in range(3):
        for read in readers:
            start = time.perf_counter()
            read()
            best = min(best, time.perf_counter() - start)
    return x.numel() * 4 / best / 1e9


class Clock:
    """Marks named instants; phases are the differences between consecutive marks."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}
        self.decoder_calls = 0

    def mark(self, name: str) -> None:
        self.marks.setdefault(name, time.perf_counter())


def _wrap(obj, attr: str, before=None, after=None):
    original = getattr(obj, attr)

    def wrapped(*a, **kw):
        if before:
            before()
        out = original(*a, **kw)
        if after:
            after()
        return out

    setattr(obj, attr, wrapped)
    return original


def run_ours(ours, texts: list[str], seeds: list[int], greedy: bool) -> tuple[torch.Tensor, Clock]:
    """``ours.generate`` with marks at text end, first step, codec start/end."""
    clock = Clock()
    ours.set_generation_params(duration_s=ours.duration_s, use_sampling=not greedy, top_k=250, cfg_coef=3.0)
    saved = {}
    saved["text"] = _wrap(ours, "_text_condition", after=lambda: clock.mark("text"))
    saved["codec"] = _wrap(ours.codec, "decode", before=lambda: clock.mark("codes"),
                           after=lambda: clock.mark("codec"))
    try:
        clock.mark("start")
        _, tokens = ours.generate(texts, seed=seeds, return_tokens=True,
                                  progress=lambda done, n: clock.mark("first"))
        clock.mark("end")
    finally:
        del ours._text_condition, ours.codec.decode  # back to the class methods
    return tokens, clock


def run_reference(model, tokenizer, texts: list[str], steps: int, greedy: bool) -> tuple[torch.Tensor, Clock]:
    """transformers' ``generate`` (tokenizing included) with the same marks, through hooks."""
    clock = Clock()
    captured = {}

    def on_decoder(*_):
        clock.decoder_calls += 1
        if clock.decoder_calls == 1:
            clock.mark("first")

    hooks = [model.text_encoder.register_forward_hook(lambda *_: clock.mark("text")),
             model.decoder.register_forward_hook(on_decoder)]
    original = model.audio_encoder.decode

    def decode(codes, *a, **kw):
        captured["codes"] = codes
        clock.mark("codes")
        out = original(codes, *a, **kw)
        clock.mark("codec")
        return out

    model.audio_encoder.decode = decode
    sampling = {"do_sample": False} if greedy else {"do_sample": True, "top_k": 250}
    try:
        with torch.inference_mode():
            clock.mark("start")
            inputs = dict(tokenizer(texts, padding=True, return_tensors="pt"))
            model.generate(**inputs, guidance_scale=3.0, max_new_tokens=steps, min_new_tokens=steps,
                           **sampling)
            clock.mark("end")
    finally:
        for h in hooks:
            h.remove()
        del model.audio_encoder.decode
    return captured["codes"][0], clock


def phases(clock: Clock, steps: int) -> dict[str, float]:
    m = clock.marks
    out = {"total": m["end"] - m["start"], "text": m["text"] - m["start"], "prefill": m["first"] - m["text"],
           "decode": m["codes"] - m["first"], "codec": m["codec"] - m["codes"]}
    out["other"] = out["total"] - out["text"] - out["prefill"] - out["decode"] - out["codec"]
    out["steps_s"] = (steps - 1) / out["decode"]
    return out


def decoder_bytes_per_step(lm) -> int:
    """fp32 bytes of the LM weights read once per decoding step."""
    skip = ("condition_proj", "emb.")
    return sum(p.numel() * p.element_size() for n, p in lm.named_parameters()
               if not n.startswith(skip) and ".cross_attn.k_proj" not in n and ".cross_attn.v_proj" not in n)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=30, help="frames per clip (50 per second)")
    parser.add_argument("--batches", default="1,4")
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds (best total kept)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (fp32 throughout)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from transformers import AutoTokenizer

    from musicgen import MusicGen

    load_before = os.getloadavg()[0]
    device = torch.device(args.device)
    bandwidth = read_bandwidth_gbps()
    rows, notes = [], []
    with tempfile.TemporaryDirectory() as folder:
        ref = build_small(folder).to(device)
        ours = MusicGen.from_pretrained(folder, device=device)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        steps = args.frames + ours.num_codebooks - 1
        ours.set_generation_params(duration_s=args.frames / ours.frame_rate)
        nbytes = decoder_bytes_per_step(ours.lm)
        for batch in [int(b) for b in args.batches.split(",")]:
            texts, seeds = (TEXTS * batch)[:batch], list(range(batch))
            a, _ = run_ours(ours, texts, seeds, greedy=True)  # warm-up and parity check
            b, _ = run_reference(ref, tokenizer, texts, steps, greedy=True)
            same = torch.equal(a.cpu(), b.cpu().reshape(a.shape))
            notes.append(f"batch {batch}: greedy codes of ours == transformers: {same}")
            assert same, f"greedy codes differ from transformers at batch {batch}"
            best: dict[str, dict] = {}
            for r in range(args.rounds):
                order = ["ours", "transformers"] if r % 2 == 0 else ["transformers", "ours"]
                for name in order:
                    if name == "ours":
                        _, clock = run_ours(ours, texts, seeds, greedy=False)
                    else:
                        _, clock = run_reference(ref, tokenizer, texts, steps, greedy=False)
                    p = phases(clock, steps)
                    if name not in best or p["total"] < best[name]["total"]:
                        best[name] = p
                bandwidth = max(bandwidth, read_bandwidth_gbps())  # the bound of the same minutes
                print(f"  measured batch {batch} round {r}", file=sys.stderr, flush=True)
            for name in ("transformers", "ours"):
                rows.append(dict(batch=batch, name=name, **best[name]))
    audio_s = args.frames / FRAME_RATE
    bound = bandwidth * 1e9 / nbytes
    print(f"musicgen-small-sized random weights (T5-base text encoder, 32 kHz EnCodec, decoder 1024 x 24), "
          f"fp32, {args.device}, {torch.get_num_threads()} threads, CFG 3.0, top-k 250, {args.frames} frames "
          f"({steps} steps), best of {args.rounds} alternating rounds, torch {torch.__version__}; "
          f"load average (1 min) before {load_before:.2f}, after {os.getloadavg()[0]:.2f}")
    print(f"read bandwidth {bandwidth:.1f} GB/s (best plain read of 512 MiB: torch.sum, compiled read loop); "
          f"decoder weights {nbytes / 1e9:.2f} GB "
          f"per step -> bound {bound:.2f} steps/s")
    print()
    print("| batch | implementation | total s | x transformers | text s | prefill s | decode s | codec s "
          "| other s | decode steps/s | of bound | audio s/s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        tf = next(x for x in rows if x["batch"] == r["batch"] and x["name"] == "transformers")
        print(f"| {r['batch']} | {r['name']} | {r['total']:.2f} | {tf['total'] / r['total']:.2f} | "
              f"{r['text']:.3f} | {r['prefill']:.3f} | {r['decode']:.2f} | {r['codec']:.3f} | "
              f"{r['other']:.3f} | {r['steps_s']:.2f} | {r['steps_s'] / bound:.0%} | "
              f"{audio_s * r['batch'] / r['total']:.3f} |")
    print()
    for line in notes:
        print(f"- {line}")


if __name__ == "__main__":
    main()
