"""How often generated audio follows a synthcaps caption: built-in model vs the same model untrained.

For each caption of the synthcaps test split, generate ``--duration`` seconds with a fixed seed and
measure, with librosa:

- scale fraction: share of chroma energy on the caption's key scale (7 of 12 pitch classes; about 0.58
  for audio that ignores the key); a "key hit" is a chroma argmax on the scale;
- tempo hit: librosa's global tempo estimate within 5 % of the caption's BPM (or of half/double it,
  counted separately as an octave hit), for captions with drums.

Usage: python benchmarks/builtin_caption_following.py MODEL_FOLDER --corpus runs/data/synthcaps
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def score(wav: np.ndarray, sr: int, meta: dict) -> dict:
    import librosa

    chroma = librosa.feature.chroma_stft(y=wav, sr=sr, n_fft=4096, hop_length=1024, tuning=0.0).sum(1)
    scale = [NAMES.index(p) for p in meta["scale"]]
    out = {"scale_fraction": float(chroma[scale].sum() / max(chroma.sum(), 1e-9)),
           "key_hit": int(np.argmax(chroma)) in scale}
    if meta["drums"] in ("four_on_the_floor", "backbeat", "boom_bap"):
        onset = librosa.onset.onset_strength(y=wav, sr=sr)
        tempo = float(librosa.feature.tempo(onset_envelope=onset, sr=sr)[0])
        bpm = meta["bpm"]
        out["tempo_hit"] = abs(tempo - bpm) / bpm < 0.05
        out["tempo_octave_hit"] = any(abs(tempo - f * bpm) / (f * bpm) < 0.05 for f in (0.5, 1.0, 2.0))
    return out


def evaluate(model, metas: list[dict], duration_s: float, seed: int) -> dict:
    model.set_generation_params(duration_s=duration_s)
    rows = []
    for i, meta in enumerate(metas):
        wav = model.generate([meta["description"]], seed=seed + i)[0].mean(0).numpy()
        rows.append(score(wav, model.sample_rate, meta))
    summary = {"n": len(rows), "scale_fraction": float(np.mean([r["scale_fraction"] for r in rows])),
               "key_hit_rate": float(np.mean([r["key_hit"] for r in rows]))}
    tempo = [r for r in rows if "tempo_hit" in r]
    if tempo:
        summary["tempo_n"] = len(tempo)
        summary["tempo_hit_rate"] = float(np.mean([r["tempo_hit"] for r in tempo]))
        summary["tempo_octave_hit_rate"] = float(np.mean([r["tempo_octave_hit"] for r in tempo]))
    return summary


def main() -> None:
    from musicgen.models.musicgen import MusicGen

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--corpus", default="runs/data/synthcaps")
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    corpus = Path(args.corpus)
    metas = [json.loads(p.read_text()) for p in sorted((corpus / "test").glob("*.json"))][: args.limit]
    trained = MusicGen.from_pretrained(args.model)
    untrained = MusicGen.from_pretrained(args.model)
    torch.manual_seed(args.seed)
    for module in (untrained.lm, untrained.text_conditioner):
        for m in module.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
    print(f"{len(metas)} synthcaps test captions, {args.duration} s each, seeds {args.seed}..")
    print(f"{'model':<10} {'scale frac':>10} {'key hit':>8} {'tempo hit':>10} {'tempo x2/÷2':>12} (n tempo)")
    for name, model in (("builtin", trained), ("untrained", untrained)):
        s = evaluate(model.eval(), metas, args.duration, args.seed)
        nan = float("nan")
        print(f"{name:<10} {s['scale_fraction']:>10.3f} {s['key_hit_rate']:>8.2f} "
              f"{s.get('tempo_hit_rate', nan):>10.2f} {s.get('tempo_octave_hit_rate', nan):>12.2f}"
              f" ({s.get('tempo_n', 0)})")


if __name__ == "__main__":
    main()
