"""Metric backbones and FAD: embedding throughput and FAD time vs N.

Prints two tables:
1. embedding throughput per backbone, full-size architectures with random weights (no download):
   seconds of audio embedded per wall-clock second, on ``--clip-s`` second clips;
2. FAD time vs N (clips of ``--frames`` frames, D = 128): ours (streamed sums + eigen square root,
   with and without the 50-replicate bootstrap) against the reference computation fadtk and
   torchmetrics use (all frames in memory, ``np.cov`` + ``scipy.linalg.sqrtm``), alternating in one
   run, with the relative difference of the values. fadtk itself does not install beside this
   project (it pins numpy < 2 and transformers < 5), so its formula is run directly.

Run: ``python benchmarks/metrics.py [--clip-s 10] [--repeats 2] [--threads N]``.
``--vs-reference`` prints instead the backbone table against the reference packages on the same
weights and inputs (``metrics_reference.py``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import scipy.linalg
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's code, not an install


def _time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _random_init(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (p[0].numel() ** -0.5 if p.ndim > 1 else 0.02))
    return module.eval()


def clap_model():
    """A random ``ClapModel`` of the released laion checkpoints' sizes (HTSAT-base + RoBERTa-base)."""
    from transformers import ClapConfig, ClapModel

    cfg = ClapConfig(audio_config={"patch_embeds_hidden_size": 128, "depths": [2, 2, 12, 2],
                                   "hidden_size": 1024}, text_config={"layer_norm_eps": 1e-5})
    return ClapModel(cfg)


def build_embedders(names: tuple[str, ...] = ("vggish", "passt", "clap", "encodec")) -> dict:
    from transformers import EncodecConfig, EncodecModel

    from bench.embedders.clap import ClapEmbedder
    from bench.embedders.encodec import EncodecEmbedder
    from bench.embedders.passt import PasstEmbedder, PasstNet
    from bench.embedders.vggish import VGGishEmbedder, VGGishNet

    out = {}
    if "vggish" in names:
        with torch.device("meta"):
            vgg = VGGishNet()
        out["vggish"] = e = VGGishEmbedder()
        e.set_network(_random_init(vgg.to_empty(device="cpu")))
    if "passt" in names:
        with torch.device("meta"):
            passt = PasstNet()
        out["passt"] = e = PasstEmbedder()
        e.set_network(_random_init(passt.to_empty(device="cpu")))
    if "clap" in names:
        out["clap"] = e = ClapEmbedder()
        e.set_model(clap_model())
    if "encodec" in names:
        codec = EncodecConfig(sampling_rate=32000, audio_channels=1, num_filters=64,
                              upsampling_ratios=[8, 5, 4, 4], codebook_size=2048, codebook_dim=128,
                              hidden_size=128, num_lstm_layers=2, target_bandwidths=[2.2], normalize=False,
                              chunk_length_s=None)
        out["encodec"] = e = EncodecEmbedder()
        e.set_model(EncodecModel(codec))
    return out


def throughput_table(clip_s: float, repeats: int) -> None:
    print(f"\n## Embedding throughput (random weights, {clip_s:g} s clips, best of {repeats})")
    print("| backbone | sample rate | output | seconds | audio s / s |")
    print("|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for name, emb in build_embedders().items():
        wav = (0.1 * rng.standard_normal(int(clip_s * emb.sample_rate))).astype(np.float32)
        shape = emb.embed(wav).shape  # warm-up
        t = _time(lambda e=emb, w=wav: e.embed(w), repeats)
        print(f"| {name} | {emb.sample_rate} | {list(shape)} | {t:.3f} | {clip_s / t:.1f} |")


def _reference_fad(ref: np.ndarray, gen: np.ndarray) -> float:
    mu1, mu2 = ref.mean(0), gen.mean(0)
    s1, s2 = np.cov(ref, rowvar=False), np.cov(gen, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1.dot(s2))
    if not np.isfinite(covmean).all():
        off = np.eye(s1.shape[0]) * 1e-6
        covmean = scipy.linalg.sqrtm((s1 + off).dot(s2 + off))
    covmean = np.real(covmean)
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def _ours_fad(ref: np.ndarray, gen: np.ndarray, n_bootstrap: int) -> float:
    from bench.api import AudioClip, MetricItem, Prompt
    from bench.metrics.fad import FrechetAudioDistance

    m = FrechetAudioDistance(FrechetAudioDistance.Params(n_bootstrap=n_bootstrap, fad_inf_fractions=(1.0,)))
    silent_free = np.ones((1, 8), np.float32)
    for i in range(len(ref)):
        item = MetricItem(Prompt(id=f"p{i}", text=""), AudioClip(silent_free, 16000, f"p{i}", 0))
        m.update(item, {"vggish": {"generated": gen[i], "reference": ref[i]}})
    return m.compute()["fad_vggish"].value


def _fad_row(n: int, frames: int, repeats: int, rng: np.random.Generator) -> str:
    ref = rng.standard_normal((n, frames, 128)) @ (np.eye(128) + 0.1 * rng.standard_normal((128, 128)))
    gen = rng.standard_normal((n, frames, 128)) + 0.2
    runs = {"ours0": lambda: _ours_fad(ref, gen, 0), "ours50": lambda: _ours_fad(ref, gen, 50),
            "ref": lambda: _reference_fad(ref.reshape(-1, 128), gen.reshape(-1, 128))}
    vals: dict[str, float] = {}
    times: dict[str, float] = {}
    for _ in range(repeats):  # alternate the implementations
        for key, fn in runs.items():
            t = time.perf_counter()
            vals[key] = fn()
            times[key] = min(times.get(key, float("inf")), time.perf_counter() - t)
    rel = abs(vals["ours0"] - vals["ref"]) / abs(vals["ref"])
    return f"| {n} | {times['ours0']:.3f} | {times['ours50']:.3f} | {times['ref']:.3f} | {rel:.1e} |"


def fad_table(ns: list[int], frames: int, repeats: int) -> None:
    print(f"\n## FAD time vs N (clips of {frames} frames, D = 128, best of {repeats})")
    print("| N clips | ours, no bootstrap s | ours, 50 bootstrap s | reference (scipy sqrtm) s | rel. diff |")
    print("|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for n in ns:
        print(_fad_row(n, frames, repeats, rng), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip-s", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--fad-n", type=int, nargs="+", default=[100, 500, 2000])
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--skip-embedders", action="store_true")
    ap.add_argument("--vs-reference", action="store_true", help="backbones vs reference packages only")
    ap.add_argument("--clips", type=int, default=8, help="clips per backbone (--vs-reference)")
    ap.add_argument("--rebuild-envs", action="store_true",
                    help="--vs-reference: rebuild the reference packages' venvs (reference_envs.py)")
    ap.add_argument("--device", default="cpu", help="only cpu is measured so far")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if args.device != "cpu":
        raise SystemExit(f"--device {args.device}: the backbone benchmarks run on cpu only so far")
    if args.vs_reference:
        from metrics_reference import main as vs_reference  # benchmarks/, the script's own folder

        return vs_reference(args.clips, args.clip_s, args.repeats, rebuild_envs=args.rebuild_envs)
    if not args.skip_embedders:
        throughput_table(args.clip_s, args.repeats)
    fad_table(args.fad_n, args.frames, args.repeats)


if __name__ == "__main__":
    main()
