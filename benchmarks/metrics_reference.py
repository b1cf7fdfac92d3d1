"""Evaluation backbones against their reference packages, same weights and inputs, alternating.

    python benchmarks/metrics.py --vs-reference [--clips 8] [--clip-s 10] [--repeats 2] [--threads 1]

Rows (audio seconds per wall-clock second, best of ``--repeats`` alternating rounds, and the largest
absolute difference of the outputs):
- VGGish (``vggish-relu`` head) vs torchvggish 0.2: its network built by ``torchvggish._vgg`` with
  random fan-in-scaled weights, the same state dict loaded into ours; torchvggish runs its own front
  end and network one clip per call (its API), ours ``embed_batch`` over all clips.
- EnCodec decode: our codec (``musicgen.models.codec``) vs transformers' ``EncodecModel.decode`` on
  the 32 kHz MusicGen config with the same random weights, the codes of the same clips.
- PaSST vs hear21passt and LAION CLAP vs laion_clap: these references cannot be installed beside
  this project (hear21passt needs torchaudio, whose last release 2.11.1 does not load under torch
  2.13: tried in a fresh venv; laion_clap pins numpy < 2), so they would run in their own virtual
  environments with an older torch; that runner is NOT IMPLEMENTED: the rows say so and give our own
  throughput (random full-size weights, ``embed_batch``) without a ratio. So does the EnCodec
  embedder (encoder latents), which is transformers' own encoder.
The summary line gives audio-seconds per second of each of our embedders.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from bench.embedders.common import embed_clips


def _best(fn, repeats: int, times: list[float]) -> object:
    out = None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out


def _alternate(ours, ref, repeats: int) -> tuple[float, float, object, object]:
    """Best seconds of ``ours`` and ``ref`` over ``repeats`` rounds (order alternating), and outputs."""
    t_ours: list[float] = []
    t_ref: list[float] = []
    out_ours = out_ref = None
    for r in range(repeats):
        for name in (("ours", "ref") if r % 2 == 0 else ("ref", "ours")):
            if name == "ours":
                out_ours = _best(ours, 1, t_ours)
            else:
                out_ref = _best(ref, 1, t_ref)
    return min(t_ours), min(t_ref), out_ours, out_ref


def _clips(n: int, seconds: float, sample_rate: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return [(0.3 * np.sin(2 * np.pi * (220 + 55 * i) * t)
             + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
            for i in range(n)]


def vggish_row(clips: int, clip_s: float, repeats: int) -> dict:
    from torchvggish import torchvggish as tv
    from torchvggish import vggish_input

    from bench.embedders.vggish import VGGishNet, VGGishReluEmbedder

    with torch.device("meta"):
        ref = tv._vgg(postprocess=False).eval()
        net = VGGishNet()
    ref.to_empty(device="cpu")
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in ref.parameters():
            fan_in = p[0].numel() if p.ndim > 1 else 1
            p.copy_(torch.randn(p.shape, generator=g) / fan_in**0.5 * (1.0 if p.ndim > 1 else 0.1))
    net.load_state_dict(ref.state_dict(), assign=True)
    ours = VGGishReluEmbedder()
    ours.set_network(net)
    wavs = _clips(clips, clip_s, 16000)

    def run_ref():
        with torch.inference_mode():
            return [ref(vggish_input.waveform_to_examples(w, 16000)).numpy() for w in wavs]

    embed_clips(ours, wavs[:1])  # warm-up
    run_ref()
    t_o, t_r, a, b = _alternate(lambda: embed_clips(ours, wavs), run_ref, repeats)
    diff = max(float(np.abs(x - y).max()) for x, y in zip(a, b))
    return dict(backbone="VGGish (relu head)", reference="torchvggish 0.2", ours=clips * clip_s / t_o,
                ref=clips * clip_s / t_r, diff=diff)


def encodec_row(clips: int, clip_s: float, repeats: int) -> dict:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from codec import build_pair  # benchmarks/codec.py: the same random weights in both

    hf, ours = build_pair()
    wav = torch.from_numpy(np.stack(_clips(clips, clip_s, 32000)))[:, None]
    with torch.inference_mode():
        codes = ours.encode(wav)
        run_ours = lambda: ours.decode(codes)  # noqa: E731
        run_ref = lambda: hf.decode(codes[None], [None]).audio_values  # noqa: E731
        run_ours()
        run_ref()
        t_o, t_r, a, b = _alternate(run_ours, run_ref, repeats)
    return dict(backbone="EnCodec 32 kHz decode", reference=f"transformers EncodecModel (batch {clips})",
                ours=clips * clip_s / t_o, ref=clips * clip_s / t_r, diff=float((a - b).abs().max()))


REFERENCE_NOT_RUN = {
    "passt": "hear21passt: not run (torchaudio 2.11.1, its dependency, fails to load under torch 2.13 in a "
             "fresh venv; a torch-2.11 venv and a runner on the same weights: NOT IMPLEMENTED)",
    "clap": "laion_clap: not run (pins numpy < 2 and needs its own torch; its venv runner: NOT IMPLEMENTED)",
    "encodec": "none: our encoder is transformers' own",
}


def own_rows(clips: int, clip_s: float, repeats: int) -> list[dict]:
    """PaSST and CLAP: our throughput only (their reference runner is not implemented)."""
    from metrics import build_embedders  # benchmarks/metrics.py: full-size random weights

    embedders = build_embedders()
    rows = []
    for name, ref in REFERENCE_NOT_RUN.items():
        emb = embedders[name]
        wavs = _clips(clips, clip_s, emb.sample_rate)
        embed_clips(emb, wavs[:1])
        times: list[float] = []
        _best(lambda e=emb, w=wavs: embed_clips(e, w), repeats, times)
        names = {"passt": "PaSST", "clap": "LAION CLAP", "encodec": "EnCodec latents"}
        rows.append(dict(backbone=names[name],
                         reference=ref, ours=clips * clip_s / min(times), ref=None, diff=None))
    return rows


def main(clips: int, clip_s: float, repeats: int) -> None:
    print(f"\n## Backbones vs reference packages ({clips} clips of {clip_s:g} s, random weights, "
          f"best of {repeats} alternating rounds, {torch.get_num_threads()} threads)")
    print("| backbone | reference | ours audio s/s | reference audio s/s | x reference | max abs diff |")
    print("|---|---|---|---|---|---|")
    rows = [vggish_row(clips, clip_s, repeats), encodec_row(clips, clip_s, repeats)]
    for r in rows:
        print(f"| {r['backbone']} | {r['reference']} | {r['ours']:.1f} | {r['ref']:.1f} | "
              f"{r['ours'] / r['ref']:.2f} | {r['diff']:.1e} |", flush=True)
    for r in own_rows(clips, clip_s, repeats):
        rows.append(r)
        print(f"| {r['backbone']} | {r['reference']} | {r['ours']:.1f} | - | - | - |", flush=True)
    print("\nsummary, our audio-seconds per second: "
          + ", ".join(f"{r['backbone']} {r['ours']:.1f}" for r in rows))
