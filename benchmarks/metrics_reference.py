"""Evaluation backbones against their reference packages, same weights and inputs, alternating.

    python benchmarks/metrics.py --vs-reference [--clips 8] [--clip-s 10] [--repeats 2] [--threads 1]

Rows (audio seconds per wall-clock second, best of ``--repeats`` alternating rounds, and the largest
absolute difference of the outputs):
- VGGish (``vggish-relu`` head) vs torchvggish 0.2: its network built by ``torchvggish._vgg`` with
  random fan-in-scaled weights, the same state dict loaded into ours; torchvggish runs its own front
  end and network one clip per call (its API), ours ``embed_batch`` over all clips.
- EnCodec decode: our codec (``musicgen.models.codec``) vs transformers' ``EncodecModel.decode`` on
  the 32 kHz MusicGen config with the same random weights, the codes of the same clips.
- PaSST vs hear21passt 0.0.26 and LAION CLAP vs laion_clap 1.1.7: these cannot be installed beside
  this project (hear21passt needs torchaudio, whose releases stopped at 2.11 with a pinned torch that
  is not ours; laion_clap pins numpy < 2), so each runs in its own venv (``reference_envs.py``:
  built on first use under ~/.cache/musicgen-bench/reference-envs, reused, ``--rebuild-envs`` to
  redo) through ``reference_runner.py``, a persistent process (``reference_client.py``) whose
  start-up and model load are not timed. Both sides load ONE weights file written here in the
  reference's checkpoint layout (``reference_weights.py``, random full-size weights; ours through
  its real loader) and embed the same clips; rounds alternate between our in-process
  ``embed_batch`` and a call into the runner (its own wall time of the reference API call). The
  reference gets all clips in one call (its API batches them). When a venv cannot be built or the
  runner fails, the row says why (pip's or the runner's error) and gives our throughput alone.
  Parity needs clips the two protocols treat alike: PaSST up to 20 s (hear21passt averages
  overlapping windows beyond), CLAP up to 10 s (laion_clap crops longer clips at random).
- EnCodec latents: transformers' own encoder, so no reference row of its own.
The summary line gives audio-seconds per second of each of our embedders.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.embedders.common import embed_clips


@dataclass(frozen=True)
class Timed:
    """An output with the seconds its producer measured itself (a reference runner's own clock)."""

    value: object
    seconds: float


def _best(fn, repeats: int, times: list[float]) -> object:
    out = None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        elapsed = time.perf_counter() - t
        if isinstance(out, Timed):
            out, elapsed = out.value, out.seconds
        times.append(elapsed)
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


def own_rows(clips: int, clip_s: float, repeats: int) -> list[dict]:
    """EnCodec latents: our throughput only (the reference is transformers' own encoder)."""
    from metrics import build_embedders  # benchmarks/metrics.py: full-size random weights

    emb = build_embedders(("encodec",))["encodec"]
    wavs = _clips(clips, clip_s, emb.sample_rate)
    embed_clips(emb, wavs[:1])
    times: list[float] = []
    _best(lambda: embed_clips(emb, wavs), repeats, times)
    return [dict(backbone="EnCodec latents", reference="none: our encoder is transformers' own",
                 ours=clips * clip_s / min(times), ref=None, diff=None)]


#: our backbone -> (table name, reference venv, runner backend, longest clip with the same protocol)
VENV_REFERENCES = {"passt": ("PaSST", "hear21passt", "passt", 20.0),
                   "clap": ("LAION CLAP", "laion_clap", "clap", 10.0)}


def _ours_from_file(name: str, folder: Path):
    """Our embedder loaded (through its real loader) from a weights file in the reference's layout."""
    from reference_weights import write_clap_weights, write_passt_weights

    if name == "passt":
        from bench.embedders.passt import PasstEmbedder

        path = write_passt_weights(folder / "passt-s-f128-20sec-random.pt")
        emb = PasstEmbedder(PasstEmbedder.Params(checkpoint=str(path)))
    else:
        from metrics import clap_model

        from bench.embedders.clap import ClapEmbedder

        path = write_clap_weights(folder / "clap-htsat-base-random.pt", clap_model())
        emb = ClapEmbedder(ClapEmbedder.Params(checkpoint=str(path)))
    emb.load()
    return emb, path


def reference_pythons(rebuild: bool = False) -> dict[str, Path | Exception]:
    """Each venv reference's interpreter (its venv built first where needed), or why it has none."""
    from reference_envs import ReferenceEnvError, ensure_env

    out: dict[str, Path | Exception] = {}
    for name, (_, env_name, _, _) in VENV_REFERENCES.items():
        try:
            out[name] = ensure_env(env_name, rebuild=rebuild)
        except ReferenceEnvError as e:
            out[name] = e
    return out


def venv_row(name: str, python: Path | Exception, clips: int, clip_s: float, repeats: int) -> dict:
    """Ours vs the reference package run by ``python`` (its venv's); when ``python`` is the error
    that kept the venv from being built, or the runner fails, the row's text says so."""
    from reference_client import ReferenceProcess, ReferenceRunnerError
    from reference_envs import ReferenceEnvError

    label, env_name, backend, max_s = VENV_REFERENCES[name]
    with tempfile.TemporaryDirectory(prefix=f"vs-{name}-") as tmp:
        emb, weights = _ours_from_file(name, Path(tmp))
        wavs = _clips(clips, clip_s, emb.sample_rate)
        embed_clips(emb, wavs[:1])  # warm-up
        row = dict(backbone=label, ref=None, diff=None)
        try:
            if isinstance(python, Exception):
                raise python
            with ReferenceProcess(python, backend, weights, threads=torch.get_num_threads()) as proc:
                batch = np.stack(wavs)
                proc.embed(batch)  # warm-up
                t_o, t_r, a, b = _alternate(lambda: embed_clips(emb, wavs),
                                            lambda: Timed(*proc.embed(batch)), repeats)
                info = proc.info["versions"]
        except (ReferenceEnvError, ReferenceRunnerError) as e:
            times: list[float] = []
            _best(lambda: embed_clips(emb, wavs), repeats, times)
            return {**row, "reference": f"{env_name}: NOT RUN: {e}", "ours": clips * clip_s / min(times)}
    ours_out = np.concatenate([np.asarray(x).reshape(1, -1) for x in a])
    diff = float(np.abs(ours_out - b).max()) if clip_s <= max_s else None
    others = ", ".join(f"{k} {v}" for k, v in info.items() if k != env_name)
    return {**row, "reference": f"{env_name} {info[env_name]} (own venv: {others})",
            "ours": clips * clip_s / t_o, "ref": clips * clip_s / t_r, "diff": diff}


def _print_row(r: dict) -> None:
    ref = f"{r['ref']:.1f}" if r["ref"] is not None else "-"
    ratio = f"{r['ours'] / r['ref']:.2f}" if r["ref"] is not None else "-"
    past_window = "n/a (clips past the reference's window)"
    diff = f"{r['diff']:.1e}" if r["diff"] is not None else ("-" if r["ref"] is None else past_window)
    print(f"| {r['backbone']} | {r['reference']} | {r['ours']:.1f} | {ref} | {ratio} | {diff} |", flush=True)


def main(clips: int, clip_s: float, repeats: int, rebuild_envs: bool = False) -> None:
    pythons = reference_pythons(rebuild_envs)  # before the table: a first build prints its progress
    print(f"\n## Backbones vs reference packages ({clips} clips of {clip_s:g} s, random weights, "
          f"best of {repeats} alternating rounds, {torch.get_num_threads()} threads)")
    print("| backbone | reference | ours audio s/s | reference audio s/s | x reference | max abs diff |")
    print("|---|---|---|---|---|---|")
    rows = [vggish_row(clips, clip_s, repeats)]
    _print_row(rows[-1])
    rows.append(encodec_row(clips, clip_s, repeats))
    _print_row(rows[-1])
    for name, python in pythons.items():
        rows.append(venv_row(name, python, clips, clip_s, repeats))
        _print_row(rows[-1])
    for row in own_rows(clips, clip_s, repeats):
        rows.append(row)
        _print_row(row)
    print("\nsummary, our audio-seconds per second: "
          + ", ".join(f"{r['backbone']} {r['ours']:.1f}" for r in rows))
