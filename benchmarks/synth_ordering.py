"""Do the synth evaluators order the controls? FAD/KL/CLAP score of reference, retrieval and noise.

``python -m benchmarks.synth_ordering [--corpus DIR] [--split test]`` (from the repository root)
builds (or reuses) the default synthcaps corpus (300 clips, seed 0, 10 s) and prints one table,
computed through the metric classes (``FrechetAudioDistance`` on ``synth-tagger``,
``KLDivergence`` on ``synth-tagger-logits``, ``ClapScore`` on ``synth-clap``) over the prompts of
one split:

- every prompt's reference clip (FAD's reference set, KL's pair) is the FIRST half of its own audio;
- ``reference`` returns the SECOND half of the prompt's own audio (same piece, other excerpt: a
  reference identical to the reference set would score FAD = KL = 0 by construction);
- ``retrieval`` returns the second half of the train clip whose caption is nearest by TF-IDF
  (``baselines.retrieval.TfidfIndex``; the prompt's own clip is excluded);
- ``noise`` returns white noise at -20 dBFS RMS (``baselines.controls.NoiseGenerator``);
- ``shuffled`` (CLAP score only): the reference control's audio paired with another prompt's text
  (a seeded derangement).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from baselines.controls import NoiseGenerator
from baselines.retrieval import TfidfIndex
from bench.api import AudioClip, MetricItem, Prompt
from bench.audio import read_audio, resample, to_mono
from bench.embedders.synth import SynthClapEmbedder, SynthTaggerEmbedder, SynthTaggerLogitsEmbedder
from bench.metrics.clap_score import ClapScore, ClapScoreParams
from bench.metrics.fad import FADParams, FrechetAudioDistance
from bench.metrics.kl import KLDivergence, KLParams

EMBEDDERS = {"synth-tagger": SynthTaggerEmbedder, "synth-tagger-logits": SynthTaggerLogitsEmbedder,
             "synth-clap": SynthClapEmbedder}


def read_corpus(root: Path) -> list[dict]:
    """Manifest rows with the sidecar's description and the mono audio ``[T]`` at the corpus rate."""
    rows = []
    for line in (root / "manifest.jsonl").read_text().splitlines():
        row = json.loads(line)
        wav, sr = read_audio(root / row["path"])
        meta = json.loads((root / row["path"]).with_suffix(".json").read_text())
        rows.append({**row, "text": meta["description"], "meta": meta, "wav": to_mono(wav), "sr": sr})
    return rows


def derangement(n: int, seed: int) -> np.ndarray:
    """A seeded permutation with no fixed point (n >= 2)."""
    rng = np.random.default_rng(seed)
    while True:
        perm = rng.permutation(n)
        if not np.any(perm == np.arange(n)):
            return perm


def control_clips(rows: list[dict], prompt_splits: tuple[str, ...], pool_splits: tuple[str, ...],
                  seed: int = 0) -> tuple[list[Prompt], list[AudioClip], dict[str, list[AudioClip]]]:
    """Prompts, their reference clips (first halves) and each control's clips (see module doc)."""
    prompts_rows = [r for r in rows if r["split"] in prompt_splits]
    pool = [r for r in rows if r["split"] in pool_splits]
    index = TfidfIndex([r["text"] for r in pool])
    prompts, refs, out = [], [], {"reference": [], "retrieval": [], "noise": []}
    for r in prompts_rows:
        half = r["wav"].shape[-1] // 2
        p = Prompt(r["id"], r["text"])
        prompts.append(p)
        refs.append(AudioClip(r["wav"][None, :half].copy(), r["sr"], r["id"], seed))
        out["reference"].append(AudioClip(r["wav"][None, half:2 * half].copy(), r["sr"], r["id"], seed))
        scores = index.scores(r["text"])
        scores[[i for i, q in enumerate(pool) if q["id"] == r["id"]]] = -np.inf
        near = pool[int(np.argmax(scores))]
        nh = near["wav"].shape[-1] // 2
        out["retrieval"].append(AudioClip(near["wav"][None, nh:nh + half].copy(), near["sr"], r["id"], seed,
                                          meta={"source": near["id"]}))
    duration_s = refs[0].duration_s
    noise = NoiseGenerator(NoiseGenerator.Params(sample_rate=rows[0]["sr"]))
    out["noise"] = noise.generate(prompts, seed, duration_s)
    return prompts, refs, out


def embed_all(embedders: dict, clip: AudioClip) -> dict[str, np.ndarray]:
    """Each embedder's features of ``clip`` (resampled once per embedder rate, as the runner does)."""
    mono = {rate: resample(to_mono(clip.wav), clip.sample_rate, rate)
            for rate in {e.sample_rate for e in embedders.values()}}
    return {name: e.embed(mono[e.sample_rate]) for name, e in embedders.items()}


def ordering_table(rows: list[dict], prompt_splits: tuple[str, ...] = ("test",),
                   pool_splits: tuple[str, ...] = ("train",),
                   weights: dict[str, str] | None = None) -> dict[str, dict[str, float]]:
    """``{control: {"fad": .., "kl": .., "clap_score": ..}}`` (lower FAD/KL, higher CLAP is better)."""
    embedders = {}
    for name, cls in EMBEDDERS.items():
        e = cls(cls.Params(weights=(weights or {}).get(name, "")))
        e.load()
        embedders[name] = e
    prompts, refs, controls = control_clips(rows, prompt_splits, pool_splits)
    ref_feats = [embed_all(embedders, c) for c in refs]
    gen_feats = {control: [embed_all(embedders, c) for c in clips] for control, clips in controls.items()}
    perm = derangement(len(prompts), seed=0)
    controls["shuffled"] = [controls["reference"][i] for i in perm]
    gen_feats["shuffled"] = [gen_feats["reference"][i] for i in perm]
    table: dict[str, dict[str, float]] = {}
    for control, clips in controls.items():
        fad = FrechetAudioDistance(FADParams(embedder="synth-tagger", n_bootstrap=2))
        kl = KLDivergence(KLParams(embedder="synth-tagger-logits", n_bootstrap=2))
        clap = ClapScore(ClapScoreParams(embedder="synth-clap", n_bootstrap=2))
        clap.set_text_encoder(embedders["synth-clap"].embed_text)
        for prompt, ref, ref_f, clip, gen_f in zip(prompts, refs, ref_feats, clips, gen_feats[control],
                                                   strict=True):
            feats = {n: {"generated": gen_f[n], "reference": ref_f[n]} for n in embedders}
            item = MetricItem(prompt, clip, ref)
            clap.update(item, feats)
            if control != "shuffled":
                fad.update(item, feats)
                kl.update(item, feats)
        row = {"clap_score": clap.compute()["clap_score"].value}
        if control != "shuffled":
            row["fad"] = fad.compute()["fad_synth-tagger"].value
            row["kl"] = kl.compute()["kl"].value
        table[control] = row
    return table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=Path("/tmp/synthcaps"),
                    help="synthcaps folder (built with the default parameters if absent)")
    ap.add_argument("--split", default="test")
    args = ap.parse_args(argv)
    from musicgen.train.synthcaps import build_synthcaps

    rows = read_corpus(build_synthcaps(args.corpus))
    table = ordering_table(rows, (args.split,))
    n = sum(r["split"] == args.split for r in rows)
    print(f"synthcaps {args.split} split, {n} prompts; reference set = first halves of the prompts' audio")
    print(f"{'control':<10} {'FAD synth-tagger':>17} {'KL synth-tagger':>16} {'CLAP synth-clap':>16}")
    for control, row in table.items():
        fad, kl = row.get("fad"), row.get("kl")
        print(f"{control:<10} {'-' if fad is None else f'{fad:.4f}':>17} "
              f"{'-' if kl is None else f'{kl:.4f}':>16} {row['clap_score']:>16.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
