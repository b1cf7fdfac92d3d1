"""End-to-end text-to-music speed: ``MusicGen.generate`` vs transformers' ``generate`` on the same weights.

A random ``MusicgenForConditionalGeneration`` (T5 text encoder, EnCodec, decoder; sizes below) is
saved to a temporary folder and loaded by both. Each round times both pipelines (alternating
order) generating ``--duration`` seconds for ``--batch`` prompts, greedy, with classifier-free
guidance 3.0; the table gives the median seconds per call and seconds of audio per second, and
checks that both produced the same codes (they must, see tests/musicgen/test_musicgen.py).

Run from the repository root: ``python benchmarks/pipeline.py [--size tiny|small-ish] [--duration 2]
[--batch 2] [--rounds 3] [--threads N]``. ``small-ish`` is the 32 kHz codec with a 512-wide,
8-layer decoder (a reduced musicgen-small; random weights).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

SIZES = {
    "tiny": dict(sr=8000, ratios=[4, 2], filters=4, card=16, dim=32, layers=2, heads=4, text=24),
    "small-ish": dict(sr=32000, ratios=[8, 5, 4, 4], filters=16, card=2048, dim=512, layers=8, heads=8,
                      text=64),
}


def build(folder: str, size: str) -> torch.nn.Module:
    from transformers import (
        EncodecConfig,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
    )

    from musicgen.testing import tiny_t5_config, tiny_text_tokenizer

    s = SIZES[size]
    hop = 1
    for r in s["ratios"]:
        hop *= r
    frame_rate = s["sr"] // hop
    bits = (s["card"] - 1).bit_length()
    audio = EncodecConfig(audio_channels=1, sampling_rate=s["sr"], num_filters=s["filters"],
                          upsampling_ratios=s["ratios"], codebook_size=s["card"], codebook_dim=64,
                          hidden_size=64, num_lstm_layers=1, num_residual_layers=1,
                          target_bandwidths=[4 * bits * frame_rate / 1000], normalize=False,
                          use_causal_conv=False, chunk_length_s=None)
    decoder = MusicgenDecoderConfig(vocab_size=s["card"], max_position_embeddings=2048,
                                    num_hidden_layers=s["layers"], ffn_dim=4 * s["dim"],
                                    num_attention_heads=s["heads"], hidden_size=s["dim"], num_codebooks=4,
                                    pad_token_id=s["card"], bos_token_id=s["card"], dropout=0.0)
    config = MusicgenConfig(text_encoder=tiny_t5_config(d_model=s["text"]).to_dict(),
                            audio_encoder=audio.to_dict(), decoder=decoder.to_dict())
    torch.manual_seed(0)
    model = MusicgenForConditionalGeneration(config).eval()
    model.generation_config.pad_token_id = s["card"]
    model.generation_config.decoder_start_token_id = s["card"]
    model.save_pretrained(folder)
    tiny_text_tokenizer().save_pretrained(folder)
    return model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--duration", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from transformers import AutoTokenizer

    from musicgen import MusicGen

    texts = (["happy rock song with electric guitar and drums", "calm piano melody"]
             * args.batch)[: args.batch]
    with tempfile.TemporaryDirectory() as folder:
        ref = build(folder, args.size)
        ours = MusicGen.from_pretrained(folder)
        frames = int(round(args.duration * ours.frame_rate))
        ours.set_generation_params(duration_s=frames / ours.frame_rate, use_sampling=False, cfg_coef=3.0)
        tokens = dict(AutoTokenizer.from_pretrained(folder)(texts, padding=True, return_tensors="pt"))

        def run_ours() -> torch.Tensor:
            return ours.generate(texts)

        def run_ref() -> torch.Tensor:
            with torch.no_grad():
                return ref.generate(**tokens, do_sample=False, guidance_scale=3.0, max_new_tokens=frames + 3)

        times: dict[str, list[float]] = {"ours": [], "transformers": []}
        same = True
        for r in range(args.rounds):
            order = [("ours", run_ours), ("transformers", run_ref)]
            outs = {}
            for name, fn in order if r % 2 == 0 else order[::-1]:
                t0 = time.perf_counter()
                outs[name] = fn()
                times[name].append(time.perf_counter() - t0)
            same = same and bool((outs["ours"] - outs["transformers"]).abs().max() < 1e-4)
    audio_s = args.batch * frames / ours.frame_rate
    print(f"size={args.size} batch={args.batch} duration={frames / ours.frame_rate:g}s "
          f"threads={torch.get_num_threads()} rounds={args.rounds} same_audio={same}")
    print(f"{'pipeline':<14}{'median s/call':>14}{'audio s per s':>15}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:<14}{med:>14.3f}{audio_s / med:>15.2f}")


if __name__ == "__main__":
    main()
