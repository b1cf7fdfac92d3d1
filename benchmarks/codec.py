"""Codec speed on CPU: ours vs transformers' EncodecModel on the same random weights (32 kHz config).

Encode and decode speed in seconds of audio per wall-clock second (higher is better), median over
``--repeats`` runs, the two implementations alternating within each repeat so load changes hit both.
Also checks that both give identical codes on the benchmark input.

    python benchmarks/codec.py [--seconds 5] [--batch 1] [--repeats 5] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def build_pair(seed: int = 0):
    from transformers import EncodecConfig, EncodecModel

    from musicgen.checkpoints.codec_transformers import (
        codec_config_from_transformers,
        convert_transformers_codec_state,
    )
    from musicgen.checkpoints.files import load_state_strict
    from musicgen.models.codec import CompressionModel
    from musicgen.testing import ENCODEC_32KHZ

    config = EncodecConfig(**ENCODEC_32KHZ)
    torch.manual_seed(seed)
    hf = EncodecModel(config).eval()
    with torch.no_grad():
        for name, buf in hf.named_buffers():
            if name.endswith("codebook.embed"):
                buf.normal_()
    ours = CompressionModel(codec_config_from_transformers(config.to_dict())).eval()
    load_state_strict(ours, convert_transformers_codec_state(hf.state_dict()), "transformers")
    return hf, ours


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    hf, ours = build_pair()
    n = int(args.seconds * 32000)
    wav = 0.1 * torch.randn(args.batch, 1, n, generator=torch.Generator().manual_seed(0))
    audio_s = args.seconds * args.batch
    times: dict[tuple[str, str], list[float]] = {}
    with torch.inference_mode():
        hf_enc = lambda: hf.encode(wav, bandwidth=2.2).audio_codes[0]  # noqa: E731
        ours_enc = lambda: ours.encode(wav)  # noqa: E731
        codes = ours_enc()  # warm-up, and the parity check
        assert torch.equal(codes, hf_enc()), "codes differ between implementations"
        hf_dec = lambda: hf.decode(codes[None], [None]).audio_values  # noqa: E731
        ours_dec = lambda: ours.decode(codes)  # noqa: E731
        for r in range(args.repeats):
            order = [("transformers", hf_enc, hf_dec), ("ours", ours_enc, ours_dec)]
            if r % 2:
                order.reverse()
            for name, enc, dec in order:
                times.setdefault((name, "encode"), []).append(timed(enc)[0])
                times.setdefault((name, "decode"), []).append(timed(dec)[0])
    print(
        f"codec speed, MusicGen 32 kHz EnCodec config, CPU, {torch.get_num_threads()} threads, "
        f"batch {args.batch} x {args.seconds:g} s, median of {args.repeats} (audio seconds per second)"
    )
    print(f"{'':<8} {'ours':>10} {'transformers':>13} {'ratio':>7}")
    for op in ("encode", "decode"):
        o = audio_s / statistics.median(times[("ours", op)])
        t = audio_s / statistics.median(times[("transformers", op)])
        print(f"{op:<8} {o:>10.2f} {t:>13.2f} {o / t:>7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
