"""Generation speed: our LM decode loop vs transformers' MusicGen on the same random weights.

    python benchmarks/generation.py --steps 12 --repeats 2

Builds a random ``MusicgenForConditionalGeneration`` with a musicgen-small-sized decoder (dim 1024,
24 layers, 16 heads, card 2048, 4 codebooks, cross-attention; a one-layer T5 of width 768 and a tiny
EnCodec so that only the decoder costs time), loads the same decoder weights into our ``LMModel``,
checks that greedy decoding with CFG gives identical codes, then times sampling (CFG 3.0, top-k 250,
delay pattern) alternating ours / transformers, ``--repeats`` times each. Steps per second count
sequence steps (one forward of the [cond; null] batch each); seconds of audio per second assume
50 frames per second. The bandwidth fraction is (decoder weight bytes x steps/s) / measured copy
bandwidth. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's musicgen, not an install


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


def reference_codes(model, ids, mask, steps: int, **kwargs) -> tuple[torch.Tensor, float]:
    captured = {}
    original = model.audio_encoder.decode

    def grab(codes, *args, **kw):  # keep the codes, skip the (irrelevant) audio decoding
        captured["codes"] = codes
        return SimpleNamespace(audio_values=torch.zeros(1))

    model.audio_encoder.decode = grab
    try:
        start = time.perf_counter()
        with torch.inference_mode():
            model.generate(input_ids=ids, attention_mask=mask, guidance_scale=3.0, max_new_tokens=steps,
                           min_new_tokens=steps, **kwargs)
        elapsed = time.perf_counter() - start
    finally:
        model.audio_encoder.decode = original
    return captured["codes"][0], elapsed


def ours_codes(lm, pattern, model, ids, mask, steps: int, **kwargs) -> tuple[torch.Tensor, float]:
    start = time.perf_counter()
    with torch.inference_mode():
        hidden = model.text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        codes = lm.generate(pattern, steps - 3, condition=hidden, condition_mask=mask, cfg_coef=3.0, **kwargs)
    return codes, time.perf_counter() - start


def copy_bandwidth_gbps(megabytes: int = 512) -> float:
    src = torch.ones(megabytes * 2**20 // 4)
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        dst.copy_(src)
        best = min(best, time.perf_counter() - start)
    return src.numel() * 4 / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=12, help="sequence steps per generation (>= 4)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=24)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--no-bf16", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from musicgen.checkpoints.lm_transformers import lm_from_transformers_state
    from musicgen.modules.patterns import get_pattern

    model = build_reference(args.dim, args.layers, args.heads)
    lm, _ = lm_from_transformers_state(model.config.to_dict(), model.state_dict(), "reference model")
    pattern = get_pattern("delay", num_codebooks=4)
    decoder_bytes = sum(p.numel() * p.element_size() for n, p in lm.named_parameters()
                        if not n.startswith("condition_proj"))
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(2, 128, (args.batch, 8), generator=g)
    mask = torch.ones_like(ids)

    ref, _ = reference_codes(model, ids, mask, args.steps, do_sample=False)
    ours, _ = ours_codes(lm, pattern, model, ids, mask, args.steps, use_sampling=False)
    greedy_equal = torch.equal(ref, ours)

    times: dict[str, list[float]] = {"transformers fp32": [], "ours fp32": []}
    sample = dict(top_k=250)
    for _ in range(args.repeats):
        times["transformers fp32"].append(
            reference_codes(model, ids, mask, args.steps, do_sample=True, **sample)[1])
        times["ours fp32"].append(
            ours_codes(lm, pattern, model, ids, mask, args.steps, seeds=list(range(args.batch)), **sample)[1])
    bandwidth = copy_bandwidth_gbps()
    rows = [(name, args.steps / min(t), decoder_bytes) for name, t in times.items()]
    if not args.no_bf16:
        lm_bf16 = lm.to(torch.bfloat16)
        t = [ours_codes(lm_bf16, pattern, model, ids, mask, args.steps, seeds=list(range(args.batch)),
                        **sample)[1] for _ in range(args.repeats)]
        rows.append(("ours bf16", args.steps / min(t), decoder_bytes // 2))

    print(f"decoder dim {args.dim}, {args.layers} layers, batch {args.batch}, CFG 3.0 (2x rows), top-k 250, "
          f"{args.steps} steps, best of {args.repeats}, {torch.get_num_threads()} threads; "
          f"greedy codes identical to transformers: {greedy_equal}; copy bandwidth {bandwidth:.1f} GB/s; "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB")
    print("| implementation | steps/s | audio s/s | x transformers | bandwidth fraction |")
    print("|---|---|---|---|---|")
    base = rows[0][1]
    for name, sps, nbytes in rows:
        print(f"| {name} | {sps:.2f} | {sps * args.batch / 50:.3f} | {sps / base:.2f} | "
              f"{nbytes * sps / 1e9 / bandwidth:.2f} |")


if __name__ == "__main__":
    main()
