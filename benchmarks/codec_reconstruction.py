"""Reconstruction of a codec on synthcaps test clips: SNR (dB) and chroma correlation, vs the same
codec untrained (random weights, seed 0).

Usage: python benchmarks/codec_reconstruction.py CODEC_FOLDER --corpus runs/data/synthcaps
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch


def measure(codec, clips: list[tuple[np.ndarray, int]]) -> tuple[float, float]:
    import librosa

    snrs, cors = [], []
    for x, sr in clips:
        with torch.no_grad():
            y = codec.decode(codec.encode(torch.from_numpy(x)[None, None]), length=len(x))[0, 0].numpy()
        snrs.append(10 * np.log10((x**2).sum() / max(((x - y) ** 2).sum(), 1e-12)))
        cx = librosa.feature.chroma_stft(y=x, sr=sr, tuning=0.0).sum(1)
        cy = librosa.feature.chroma_stft(y=y, sr=sr, tuning=0.0).sum(1)
        cors.append(np.corrcoef(cx, cy)[0, 1])
    return float(np.median(snrs)), float(np.median(cors))


def main() -> None:
    from musicgen.models.codec import CompressionModel

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("codec")
    parser.add_argument("--corpus", default="runs/data/synthcaps")
    parser.add_argument("--limit", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    trained = CompressionModel.from_pretrained(args.codec).eval()
    torch.manual_seed(0)
    untrained = CompressionModel(trained.config).eval()
    clips = []
    for meta_path in sorted((Path(args.corpus) / "test").glob("*.json"))[: args.limit]:
        meta = json.loads(meta_path.read_text())
        x, sr = sf.read(meta_path.with_suffix(".wav"), dtype="float32")
        if sr != trained.sample_rate:
            raise SystemExit(f"{meta['id']}: corpus is at {sr} Hz, codec at {trained.sample_rate} Hz")
        clips.append((x[: int(args.seconds * sr)], sr))
    print(f"{len(clips)} synthcaps test clips, first {args.seconds} s each (medians)")
    print(f"{'codec':<10} {'SNR dB':>8} {'chroma corr':>12}")
    for name, codec in (("trained", trained), ("untrained", untrained)):
        snr, cor = measure(codec, clips)
        print(f"{name:<10} {snr:>8.2f} {cor:>12.3f}")


if __name__ == "__main__":
    main()
