"""float32 vs float64 audio front ends of the metric backbones, measured on the embeddings.

For VGGish, PaSST and LAION CLAP the log-mel front end runs once in float64 and once in float32 on the
same music-like clips; both go through the same full-size network (random fan-in-scaled weights, as
``metrics.py``). Printed per backbone and clip kind: the largest absolute difference of the log mel,
of the backbone's output (VGGish 128-d pre-activation embedding, PaSST logits, CLAP L2-normalised
512-d embedding, its input batch norm set to mean -40 dB and std 20 dB as a trained one would
normalise), and that output's largest magnitude (for a relative reading). Random weights are a proxy:
a trained network may amplify the input difference differently; the log-mel column bounds that input.

Clip kinds (``music_like``): harmonic notes (5 partials, 1/k amplitudes, a new note every 0.5 s with
attack/decay) plus noise 30 dB below, peak-normalised to 0.9 (loud), 0.1 and 0.003 (quiet, -50 dBFS);
and the same notes without noise at 0.3 (clean: the float32 FFT's noise floor shows most there).

    python benchmarks/front_end_precision.py [--seconds 6] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's code, not an install
sys.path.insert(0, str(Path(__file__).resolve().parent))

KINDS = {"loud": (0.9, True), "normal": (0.1, True), "quiet": (0.003, True), "clean": (0.3, False)}


def music_like(seconds: float, sample_rate: int, peak: float, noise: bool, seed: int = 0) -> np.ndarray:
    """Mono float32 ``[seconds * sample_rate]``: notes of 5 harmonics (+ noise 30 dB down), peak ``peak``."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    out = np.zeros(n)
    note = int(0.5 * sample_rate)
    scale = 220.0 * 2 ** (np.array([0, 2, 4, 5, 7, 9, 11, 12]) / 12)
    for start in range(0, n, note):
        f0 = rng.choice(scale) * rng.choice([0.5, 1.0, 2.0])
        seg = slice(start, min(n, start + 2 * note))  # notes ring into the next one
        tt = t[seg] - t[start]
        env = np.minimum(tt / 0.01, 1.0) * np.exp(-3.0 * tt)
        for k in range(1, 6):
            if k * f0 < sample_rate / 2:
                out[seg] += env * np.sin(2 * np.pi * k * f0 * tt + rng.uniform(0, 2 * np.pi)) / k
    if noise:
        out += rng.standard_normal(n) * np.sqrt(np.mean(out**2)) * 10 ** (-30 / 20)
    return (peak * out / np.abs(out).max()).astype(np.float32)


@torch.inference_mode()
def outputs(name: str, embedder, wav: np.ndarray, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(log mel, backbone output) of ``wav`` with the front end in ``dtype``."""
    if name == "vggish":
        from bench.embedders.vggish import vggish_examples

        mel = vggish_examples(wav, dtype)
        return mel, embedder.net(mel)
    if name == "passt":
        from bench.embedders.passt import passt_log_mel

        mel = passt_log_mel(torch.from_numpy(wav)[None], dtype)
        return mel, embedder.net(mel[:, None])
    from bench.embedders.clap import clap_input_wav, clap_log_mel

    mel = clap_log_mel(clap_input_wav(wav), dtype)
    return mel, embedder.model.get_audio_features(input_features=mel[None, None]).pooler_output


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from metrics import build_embedders  # benchmarks/metrics.py: full-size random weights

    embedders = build_embedders()
    with torch.no_grad():  # trained-like input normalisation: log mel around -40 dB, std 20 dB
        bn = embedders["clap"].model.audio_model.audio_encoder.batch_norm
        bn.running_mean.fill_(-40.0)
        bn.running_var.fill_(400.0)
    print(f"## float32 vs float64 front end ({args.seconds:g} s music-like clips, random full-size weights)")
    print("| backbone | clip | max abs diff log mel | max abs diff output | max abs output |")
    print("|---|---|---|---|---|")
    for name in ("vggish", "passt", "clap"):
        emb = embedders[name]
        for kind, (peak, noise) in KINDS.items():
            wav = music_like(args.seconds, emb.sample_rate, peak, noise)
            mel64, out64 = outputs(name, emb, wav, torch.float64)
            mel32, out32 = outputs(name, emb, wav, torch.float32)
            print(f"| {name} | {kind} (peak {peak:g}) | {(mel64 - mel32).abs().max():.1e} | "
                  f"{(out64 - out32).abs().max():.1e} | {out64.abs().max():.2f} |", flush=True)


if __name__ == "__main__":
    main()
