"""Training recipes of the synth evaluators (``synth-tagger``, ``synth-clap``) on synthcaps.

``python -m bench.embedders.synth_train RECIPE.yaml --corpus DIR --out DIR`` builds (or reuses) the
synthcaps corpus the recipe names at ``--corpus``, trains, and writes ``model.safetensors`` plus
``MODEL_CARD.md`` into ``--out``. Training runs on CPU with one thread, deterministic algorithms and
seeded generators, so the same recipe on the same corpus gives the same bytes (see the tests).

Data: every clip of the corpus is read, averaged to mono, resampled to 16 kHz with
``bench.audio.resample`` (the runner's resampler) and turned into a log mel ``[64, frames]`` once.
A step draws ``batch_size`` clips from a seeded permutation of the train split (epochs without
replacement), a random crop of ``crop_windows`` windows (0.96 s each) per clip, and a random gain
of +-``gain_db`` (added to the log mel). Adam on the mean cross-entropy (tagger: every head, every
window) or the symmetric InfoNCE loss (clap).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import yaml
from pydantic import BaseModel, ConfigDict, Field
from safetensors.torch import save_file

from bench.audio import read_audio, resample, to_mono
from bench.embedders.synth_models import (
    FEATURE_STRIDE,
    SAMPLE_RATE,
    WINDOW_FEATURES,
    SynthClap,
    SynthTagger,
    build_vocab,
    encode_texts,
    log_mel,
)
from bench.files import file_digest, git_commit

RECIPES_DIR = Path(__file__).parent / "recipes"
WEIGHTS_FILE = "model.safetensors"
HEADS = ("genre", "instrument", "mode")


class CorpusParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    num_clips: int = 300
    seed: int = 0
    duration_s: float = 10.0
    sample_rate: int = 32000


class Recipe(BaseModel):
    """One training run; every field is recorded in the weights' config and the model card."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    model: Literal["tagger", "clap"]
    name: str
    corpus: CorpusParams = Field(default_factory=CorpusParams)
    seed: int = 0
    steps: int = Field(gt=0)
    batch_size: int = Field(default=32, gt=1)
    crop_windows: int = Field(default=3, gt=0)
    lr: float = Field(default=2e-3, gt=0)
    weight_decay: float = 0.0
    gain_db: float = Field(default=6.0, ge=0)
    channels: int = 96
    dim: int = 64
    word_dim: int = 64
    heads: tuple[str, ...] = HEADS

    @classmethod
    def from_yaml(cls, path: Path) -> Recipe:
        data = yaml.safe_load(Path(path).read_text())
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a recipe must be a YAML mapping, got {type(data).__name__}")
        return cls(**data)


@dataclass
class Corpus:
    """Log mels of every clip (``mels[i]`` ``[64, frames]``) with split, caption and labels."""

    ids: list[str]
    splits: list[str]
    captions: list[str]
    labels: dict[str, list[str]]
    mels: list[torch.Tensor]
    digest: str

    def indices(self, split: str) -> list[int]:
        return [i for i, s in enumerate(self.splits) if s == split]


def class_names() -> dict[str, list[str]]:
    """The label sets of the tagger's heads, fixed by synthcaps' composition tables."""
    from musicgen.train.synthcaps_music import GENRES, SCALES

    return {"genre": [g.name for g in GENRES],
            "instrument": sorted({lead for g in GENRES for lead in g.leads}),
            "mode": sorted(SCALES)}


def load_corpus(root: Path) -> Corpus:
    """Read a built synthcaps corpus (manifest order) into log mels; digest = sha256 over every
    clip's relative path, audio bytes and sidecar bytes."""
    root = Path(root)
    manifest = root / "manifest.jsonl"
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest} not found: build the corpus with "
                                "musicgen.train.synthcaps.build_synthcaps or pass --corpus")
    h = hashlib.sha256()
    out = Corpus([], [], [], {k: [] for k in HEADS}, [], "")
    for line in manifest.read_text().splitlines():
        row = json.loads(line)
        wav_path = root / row["path"]
        meta_path = wav_path.with_suffix(".json")
        for p in (wav_path, meta_path):
            h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes())
        meta = json.loads(meta_path.read_text())
        wav, sr = read_audio(wav_path)
        mono = resample(to_mono(wav), sr, SAMPLE_RATE)
        out.ids.append(row["id"])
        out.splits.append(row["split"])
        out.captions.append(meta["description"])
        for k in HEADS:
            out.labels[k].append(meta["instrument"] if k == "instrument" else meta[k])
        out.mels.append(log_mel(torch.from_numpy(mono)[None])[0])
    out.digest = h.hexdigest()
    return out


class Batches:
    """Seeded epochs over ``indices``; ``next()`` -> (clip indices, cropped log mels ``[B, 64, L]``)."""

    def __init__(self, corpus: Corpus, indices: list[int], recipe: Recipe) -> None:
        self.corpus, self.indices, self.recipe = corpus, indices, recipe
        self.gen = torch.Generator().manual_seed(recipe.seed)
        self.order: list[int] = []
        self.frames = recipe.crop_windows * WINDOW_FEATURES * FEATURE_STRIDE

    def next(self) -> tuple[list[int], torch.Tensor]:
        picked = []
        while len(picked) < self.recipe.batch_size:
            if not self.order:
                self.order = [self.indices[int(i)] for i in torch.randperm(len(self.indices),
                                                                           generator=self.gen)]
            picked.append(self.order.pop())
        crops = []
        for i in picked:
            mel = self.corpus.mels[i]
            span = max(mel.shape[-1] - self.frames, 0)
            start = int(torch.randint(span + 1, (1,), generator=self.gen))
            crop = mel[:, start:start + self.frames]
            if crop.shape[-1] < self.frames:
                crop = torch.nn.functional.pad(crop, (0, self.frames - crop.shape[-1]), value=math.log(1e-6))
            gain = (torch.rand((), generator=self.gen) * 2 - 1) * self.recipe.gain_db * math.log(10) / 10
            crops.append(crop + gain)
        return picked, torch.stack(crops)


def standardise(model: torch.nn.Module, corpus: Corpus, train: list[int]) -> None:
    """Set the audio tower's per-band mean/std from the train split's frames."""
    frames = torch.cat([corpus.mels[i] for i in train], dim=-1).double()
    model.audio.mel_mean.copy_(frames.mean(-1, keepdim=True).float())
    model.audio.mel_std.copy_(frames.std(-1, keepdim=True).clamp(min=1e-3).float())


def tagger_targets(corpus: Corpus, idx: list[int], classes: dict[str, list[str]]) -> dict[str, torch.Tensor]:
    return {k: torch.tensor([classes[k].index(corpus.labels[k][i]) for i in idx]) for k in classes}


def tagger_loss(model: SynthTagger, mels: torch.Tensor, targets: dict[str, torch.Tensor]) -> torch.Tensor:
    _, logits = model(mels)
    losses = [torch.nn.functional.cross_entropy(lg.flatten(0, 1),
                                                targets[k].repeat_interleave(lg.shape[1]))
              for k, lg in logits.items()]
    return torch.stack(losses).mean()


def clap_loss(model: SynthClap, mels: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    a, t = model.embed_audio(mels), model.embed_tokens(ids)
    logits = model.logit_scale.clamp(max=math.log(100.0)).exp() * a @ t.T
    target = torch.arange(len(a))
    return (torch.nn.functional.cross_entropy(logits, target)
            + torch.nn.functional.cross_entropy(logits.T, target)) / 2


def evaluate(model: torch.nn.Module, recipe: Recipe, corpus: Corpus, config: dict,
             split: str) -> dict[str, float]:
    """Whole-clip loss and accuracy per head (tagger) or InfoNCE loss and R@1 (clap) on ``split``."""
    idx = corpus.indices(split)
    if not idx:
        return {}
    width = min(corpus.mels[i].shape[-1] for i in idx)
    mels = torch.stack([corpus.mels[i][:, :width] for i in idx])
    with torch.no_grad():
        if recipe.model == "tagger":
            targets = tagger_targets(corpus, idx, config["classes"])
            out = {"loss": float(tagger_loss(model, mels, targets))}
            _, logits = model(mels)
            for k, lg in logits.items():
                pred = lg.softmax(-1).mean(1).argmax(-1)
                out[f"{k}_accuracy"] = float((pred == targets[k]).float().mean())
            return out
        vocab = {w: i for i, w in enumerate(config["vocab"])}
        ids = encode_texts([corpus.captions[i] for i in idx], vocab)
        sims = model.embed_audio(mels) @ model.embed_tokens(ids).T  # [audio, text]
        diag = torch.arange(len(idx))
        return {"loss": float(clap_loss(model, mels, ids)),
                "text_to_audio_r1": float((sims.argmax(0) == diag).float().mean()),
                "audio_to_text_r1": float((sims.argmax(1) == diag).float().mean()),
                "n": len(idx)}


def build_model(recipe: Recipe, config: dict) -> torch.nn.Module:
    if recipe.model == "tagger":
        return SynthTagger({k: len(config["classes"][k]) for k in recipe.heads}, recipe.channels, recipe.dim)
    return SynthClap(len(config["vocab"]), recipe.channels, recipe.dim, recipe.word_dim)


def train(recipe: Recipe, corpus: Corpus) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Train on the corpus' train split. Returns the model and its config (classes or vocabulary,
    recipe, corpus digest, metrics on every split)."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        torch.manual_seed(recipe.seed)
        train_idx = corpus.indices("train")
        if len(train_idx) < 2:
            raise ValueError(f"{recipe.name}: the corpus has {len(train_idx)} train clips; need >= 2")
        config: dict[str, Any] = {"name": recipe.name, "recipe": recipe.model_dump(mode="json"),
                                  "corpus_digest": corpus.digest}
        if recipe.model == "tagger":
            config["classes"] = {k: class_names()[k] for k in recipe.heads}
        else:
            config["vocab"] = build_vocab([corpus.captions[i] for i in train_idx])
        model = build_model(recipe, config)
        standardise(model, corpus, train_idx)
        opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        batches = Batches(corpus, train_idx, recipe)
        vocab = {w: i for i, w in enumerate(config.get("vocab", []))}
        for _ in range(recipe.steps):
            idx, mels = batches.next()
            if recipe.model == "tagger":
                loss = tagger_loss(model, mels, tagger_targets(corpus, idx, config["classes"]))
            else:
                loss = clap_loss(model, mels, encode_texts([corpus.captions[i] for i in idx], vocab))
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        config["metrics"] = {s: evaluate(model, recipe, corpus, config, s)
                             for s in ("train", "valid", "test")}
        return model, config
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def save_weights(model: torch.nn.Module, config: dict, out_dir: Path) -> Path:
    """``out_dir/model.safetensors`` with the config as one JSON metadata entry; returns the path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / WEIGHTS_FILE
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(path), metadata={"config": json.dumps(config, sort_keys=True)})
    return path


def model_card(config: dict, digest: str, recipe_path: str, commit: str) -> str:
    r = config["recipe"]
    lines = [f"# {config['name']}", "",
             f"An offline evaluator trained by musicgen-bench on synthcaps (`{r['model']}`); not a "
             "published model. Its numbers are only comparable with runs of the same digest.", "",
             f"- weights: `{WEIGHTS_FILE}`, sha256 `{digest}`",
             f"- recipe: `{recipe_path}` ({json.dumps(r, sort_keys=True)})",
             f"- data: synthcaps {json.dumps(r['corpus'], sort_keys=True)}, corpus digest "
             f"`{config['corpus_digest']}`; trained on the train split",
             f"- steps: {r['steps']} (batch {r['batch_size']}, crops of {r['crop_windows']} x 0.96 s)",
             f"- trained at commit: `{commit}`", "", "## Results (whole clips)", "",
             "| split | " + " | ".join(sorted(config["metrics"]["train"])) + " |",
             "|---|" + "---|" * len(config["metrics"]["train"])]
    for split, vals in config["metrics"].items():
        lines.append(f"| {split} | " + " | ".join(f"{vals[k]:.4g}" for k in sorted(vals)) + " |")
    lines += ["", "## Retrain", "", "```",
              f"python -m bench.embedders.synth_train {recipe_path} --corpus /tmp/synthcaps "
              f"--out bench/embedders/weights/{config['name']}", "```",
              "", "CPU, one thread, deterministic: the same recipe and corpus give the same sha256.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recipe", type=Path)
    ap.add_argument("--corpus", type=Path, required=True, help="synthcaps folder (built if absent)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    from musicgen.train.synthcaps import build_synthcaps

    recipe = Recipe.from_yaml(args.recipe)
    c = recipe.corpus
    build_synthcaps(args.corpus, num_clips=c.num_clips, seed=c.seed, duration_s=c.duration_s,
                    sample_rate=c.sample_rate)
    model, config = train(recipe, load_corpus(args.corpus))
    path = save_weights(model, config, args.out)
    digest = file_digest(path)
    try:
        recipe_name = str(args.recipe.resolve().relative_to(Path(__file__).parents[2]))
    except ValueError:
        recipe_name = str(args.recipe)
    card = model_card(config, digest, recipe_name, git_commit() or "unknown")
    (args.out / "MODEL_CARD.md").write_text(card)
    print(json.dumps({"weights": str(path), "sha256": digest, "metrics": config["metrics"]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
