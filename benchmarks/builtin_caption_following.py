"""How often audio follows a synthcaps caption: reference audio, codec round trip, built-in, untrained.

Rows (``--rows``, default all four), each scored the same way on the first ``--duration`` seconds:

- ``reference``: the real synthcaps test clip (the ceiling of what the scoring can see);
- ``codec``: that clip encoded and decoded by the model's codec (the ceiling of what any LM over this
  codec's tokens can reach);
- ``builtin``: the model generating from the clip's caption (seed ``--seed + i``, top-k 250, CFG 3,
  ``--temperature``, default 1);
- ``untrained``: the same model with its LM and text conditioner re-initialised (seeded).

Scores per clip, with librosa (chroma_stft, n_fft 4096, hop 1024, tuning fixed at 0):

- ``scale frac``: share of chroma energy on the caption's key scale (7 of 12 pitch classes; about
  0.58 for audio that ignores the key);
- ``scale match``: the diatonic scale (12 rotations of the major scale; relative major/minor share
  one) holding the most chroma energy is the caption's scale (chance 1/12);
- ``key hit``: chroma argmax on the caption's scale (chance 7/12; weak, kept for comparison);
- ``tempo hit``: librosa's global tempo within 5 % of the caption's BPM (``x2/÷2`` also accepts half
  or double), for captions with a regular beat (four-on-the-floor, backbeat, boom bap).

Each cell is the mean over clips with a 95 % bootstrap interval (2000 resamples of clips); the last
lines give the paired bootstrap interval of ``builtin - untrained`` on the same captions.

Usage (the model's own corpus, built by its recipe; numbers in the built-in model's MODEL_CARD.md)::

    python benchmarks/builtin_caption_following.py musicgen/builtin/musicgen-synthcaps-small \
        --corpus runs/data/synthcaps-5k-5s --limit 240 --duration 4

Choose decoding settings on ``--split valid`` and report on the test split (the built-in's
temperature 0.5 was chosen so, see its MODEL_CARD.md).

Findings with the built-in codec (240 captions, 4 s): the reference rates real audio highly (scale
fraction 0.76, scale match 0.57, tempo hit 0.92), so the scores work on 4 s clips; the codec round trip
keeps tempo (0.75) but loses much of the key (scale fraction 0.66, scale match 0.28): the codec, not the
scoring, caps how well any LM over its tokens can follow a key.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
MAJOR = (0, 2, 4, 5, 7, 9, 11)
BEAT_DRUMS = ("four_on_the_floor", "backbeat", "boom_bap")
ROWS = ("reference", "codec", "builtin", "untrained")
METRICS = (("scale_fraction", "scale frac", "{:.3f}"), ("scale_match", "scale match", "{:.2f}"),
           ("key_hit", "key hit", "{:.2f}"), ("tempo_hit", "tempo hit", "{:.2f}"),
           ("tempo_octave_hit", "tempo x2/÷2", "{:.2f}"))


def best_scale(chroma: np.ndarray) -> frozenset[int]:
    """The pitch classes of the diatonic scale (of 12) holding the most of ``chroma [12]``."""
    sets = [frozenset((r + s) % 12 for s in MAJOR) for r in range(12)]
    return max(sets, key=lambda s: float(chroma[list(s)].sum()))


def score(wav: np.ndarray, sr: int, meta: dict) -> dict:
    """The scores of one mono clip ``wav [T]`` against its caption's attributes ``meta``."""
    import librosa

    chroma = librosa.feature.chroma_stft(y=wav, sr=sr, n_fft=4096, hop_length=1024, tuning=0.0).sum(1)
    scale = [NAMES.index(p) for p in meta["scale"]]
    out = {"scale_fraction": float(chroma[scale].sum() / max(chroma.sum(), 1e-9)),
           "scale_match": float(best_scale(chroma) == frozenset(scale)),
           "key_hit": float(int(np.argmax(chroma)) in scale)}
    if meta["drums"] in BEAT_DRUMS:
        onset = librosa.onset.onset_strength(y=wav, sr=sr)
        tempo = float(librosa.feature.tempo(onset_envelope=onset, sr=sr)[0])
        bpm = meta["bpm"]
        out["tempo_hit"] = float(abs(tempo - bpm) / bpm < 0.05)
        out["tempo_octave_hit"] = float(any(abs(tempo - f * bpm) / (f * bpm) < 0.05 for f in (0.5, 1.0, 2.0)))
    return out


def bootstrap(values: np.ndarray, rng: np.random.Generator, n: int = 2000) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the mean of ``values [N]``."""
    means = values[rng.integers(0, len(values), size=(n, len(values)))].mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def reference_audio(corpus: Path, metas: list[dict], duration_s: float) -> Iterator[tuple[np.ndarray, int]]:
    import soundfile as sf

    for meta in metas:
        wav, sr = sf.read(corpus / meta["split"] / f"{meta['id']}.wav", dtype="float32")
        if wav.ndim > 1:
            wav = wav.mean(1)
        need = int(round(duration_s * sr))
        if wav.shape[0] < need:
            raise ValueError(f"{meta['id']} is {wav.shape[0] / sr:g} s, shorter than --duration "
                             f"{duration_s:g}")
        yield wav[:need], sr


def codec_audio(codec: torch.nn.Module, corpus: Path, metas: list[dict], duration_s: float
                ) -> Iterator[tuple[np.ndarray, int]]:
    for wav, sr in reference_audio(corpus, metas, duration_s):
        x = torch.from_numpy(wav)[None, None]
        with torch.no_grad():
            y = codec.decode(codec.encode(x, sr), length=x.shape[-1])
        yield y[0].mean(0).numpy(), codec.sample_rate


def generated_audio(model, metas: list[dict], duration_s: float, seed: int, temperature: float = 1.0
                    ) -> Iterator[tuple[np.ndarray, int]]:
    model.set_generation_params(duration_s=duration_s, top_k=250, cfg_coef=3.0, temperature=temperature)
    for i, meta in enumerate(metas):
        yield model.generate([meta["description"]], seed=seed + i)[0].mean(0).numpy(), model.sample_rate


def untrained_copy(folder: str, seed: int):
    """The model at ``folder`` with its LM and text conditioner re-initialised (seeded)."""
    from musicgen.models.musicgen import MusicGen

    model = MusicGen.from_pretrained(folder)
    torch.manual_seed(seed)
    for module in (model.lm, model.text_conditioner):
        for m in module.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
    return model.eval()


def table(rows: dict[str, list[dict]], seed: int) -> list[str]:
    """Mean [95 % bootstrap interval] per row and metric, then paired builtin - untrained."""
    rng = np.random.default_rng(seed)
    lines = [f"{'row':<10} " + " ".join(f"{label:>20}" for _, label, _ in METRICS)]
    for name, scores in rows.items():
        cells = []
        for key, _, fmt in METRICS:
            vals = np.array([s[key] for s in scores if key in s])
            if not len(vals):
                cells.append(f"{'-':>20}")
                continue
            lo, hi = bootstrap(vals, rng)
            cells.append(f"{fmt.format(vals.mean())} [{fmt.format(lo)},{fmt.format(hi)}]".rjust(20))
        lines.append(f"{name:<10} " + " ".join(cells))
    if "builtin" in rows and "untrained" in rows:
        lines.append("paired builtin - untrained, mean [95 % bootstrap interval]:")
        for key, label, _ in METRICS:
            pairs = [(a[key], b[key]) for a, b in zip(rows["builtin"], rows["untrained"]) if key in a]
            if pairs:
                d = np.array([a - b for a, b in pairs])
                lo, hi = bootstrap(d, rng)
                lines.append(f"  {label:<12} {d.mean():+.3f} [{lo:+.3f}, {hi:+.3f}] (n={len(d)})")
    return lines


def main() -> None:
    from musicgen.models.musicgen import MusicGen

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--corpus", default="runs/data/synthcaps")
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--split", default="test", choices=("test", "valid", "train"),
                        help="captions of this split (choose decoding settings on valid, report on test)")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (both models)")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated subset of {ROWS}")
    parser.add_argument("--json", type=Path, default=None, help="also write the per-clip scores here")
    parser.add_argument("--load", type=Path, action="append", default=[],
                        help="take rows from an earlier --json file (same captions) instead of computing "
                             "them (rows computed in parallel processes; repeatable)")
    args = parser.parse_args()
    rows = args.rows.split(",")
    if unknown := sorted(set(rows) - set(ROWS)):
        parser.error(f"unknown rows {unknown}; expected a subset of {ROWS}")
    torch.set_num_threads(1)
    corpus = Path(args.corpus)
    metas = [json.loads(p.read_text()) for p in sorted((corpus / args.split).glob("sc*.json"))][: args.limit]
    if not metas:
        raise SystemExit(f"no {args.split} clips in {corpus / args.split}")
    trained = MusicGen.from_pretrained(args.model).eval()
    sources: dict[str, Callable[[], Iterator[tuple[np.ndarray, int]]]] = {
        "reference": lambda: reference_audio(corpus, metas, args.duration),
        "codec": lambda: codec_audio(trained.codec, corpus, metas, args.duration),
        "builtin": lambda: generated_audio(trained, metas, args.duration, args.seed, args.temperature),
        "untrained": lambda: generated_audio(untrained_copy(args.model, args.seed), metas, args.duration,
                                             args.seed, args.temperature),
    }
    n_beat = sum(m["drums"] in BEAT_DRUMS for m in metas)
    print(f"{len(metas)} synthcaps {args.split} captions of {corpus} ({n_beat} with a beat), "
          f"first {args.duration:g} s, seeds {args.seed}..{args.seed + len(metas) - 1}, top-k 250, CFG 3.0, "
          f"temperature {args.temperature:g}")
    loaded: dict[str, list[dict]] = {}
    for path in args.load:
        doc = json.loads(path.read_text())
        if doc["ids"] != [m["id"] for m in metas]:
            raise SystemExit(f"{path} scored other captions than these {len(metas)} "
                             "(--corpus / --limit differ)")
        loaded.update(doc["scores"])
    scores = {name: loaded[name] if name in loaded else
              [score(wav, sr, meta) for (wav, sr), meta in zip(sources[name](), metas)] for name in rows}
    print("\n".join(table(scores, args.seed)))
    if args.json is not None:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "ids": [m["id"] for m in metas], "scores": scores}, indent=1))


if __name__ == "__main__":
    main()
