"""``musicgen train RECIPE.yaml``: build data, codec, model and solver from a recipe and train.

The run folder (``run_dir``) gets ``metrics.jsonl`` (every logged metric, one JSON object per line),
``checkpoints/`` (resumed automatically unless ``--no-resume``) and, when the last step is done, the
exported model (``export``, default ``run_dir/model``): for an LM recipe a MusicGen folder in our native
format (LM with the EMA weights, the recipe's codec, the trained text conditioner), for a codec recipe
a ``CompressionModel`` folder (EMA-free: the codec is exported as trained).

Data: ``synthcaps`` is built (or reused) at the codec's sample rate; an ``audio_folder`` is used as is.
LM recipes encode ``train`` and ``valid`` once into a token cache (``token_cache``, default
``{data.root}/.tokens``) keyed by the codec's digest.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from musicgen.train.recipes import CodecRecipe, CodecRef, LMRecipe, RecipeError, load_recipe, recipe_path


def prepare_data(spec: Any, sample_rate: int) -> Path:
    """The dataset folder of a recipe's ``data`` section (building synthcaps when asked)."""
    if spec.kind == "synthcaps":
        from musicgen.train.synthcaps import build_synthcaps

        return build_synthcaps(spec.root, num_clips=spec.num_clips, seed=spec.seed,
                               duration_s=spec.duration_s, sample_rate=sample_rate)
    if not Path(spec.root).is_dir():
        raise FileNotFoundError(f"data.root {spec.root} does not exist")
    return Path(spec.root)


def builtin_path(path: str | Path) -> Path:
    """``builtin:NAME`` -> the package folder ``musicgen/builtin/NAME``; other paths unchanged."""
    from musicgen.checkpoints.files import BUILTIN_PREFIX, resolve_local

    return resolve_local(path) if str(path).startswith(BUILTIN_PREFIX) else Path(path)


def build_codec(ref: CodecRef) -> torch.nn.Module:
    from musicgen.models import codec as codec_module

    if ref.path is not None:
        model = codec_module.CompressionModel.from_pretrained(builtin_path(ref.path),
                                                              stereo=True if ref.stereo else None)
    else:
        presets = {"tiny": codec_module.tiny_config, "musicgen_32khz": codec_module.musicgen_32khz_config}
        if ref.preset not in presets:
            raise RecipeError(f"codec.preset must be one of {sorted(presets)}, got {ref.preset!r}")
        torch.manual_seed(ref.seed)
        model = codec_module.CompressionModel(presets[ref.preset]())
        if ref.stereo:
            model = codec_module.StereoCompressionModel(model)
    if ref.num_codebooks is not None:
        model.set_num_codebooks(ref.num_codebooks)
    return model.eval()


def check_pattern_channels(pattern: str, codec_channels: int, source: str = "recipe") -> None:
    """A stereo pattern (``stereo_*``) places left/right codebook pairs: it needs stereo tokens."""
    if pattern.startswith("stereo_") and codec_channels != 2:
        raise RecipeError(f"{source}: pattern.name {pattern!r} needs stereo tokens (the codec on L and R, "
                          f"2K codebooks) but the codec gives {codec_channels} channel(s); set "
                          "codec.stereo: true")


def _metadata_for_text(meta: dict) -> dict:
    """Sidecars that split key and mode (synthcaps) read as ``key: A minor`` in merged metadata."""
    if "mode" in meta and isinstance(meta.get("key"), str) and not meta["key"].endswith(meta["mode"]):
        return {**meta, "key": f"{meta['key']} {meta['mode']}"}
    return meta


def make_text_transform(spec: Any):
    """Metadata merge, description dropout and word dropout (pipeline's ``TextAugmenter``) with the
    solver's per-step RNG, so that resumed runs draw the same texts."""
    from musicgen.models.text_augment import TextAugmenter

    augmenter = TextAugmenter(merge_metadata_p=spec.merge_metadata_p,
                              drop_description_p=spec.drop_description_p,
                              word_dropout_p=spec.word_dropout_p, cfg_dropout_p=0.0)

    def transform(texts: Sequence[str | None], metas: Sequence[dict], rng: random.Random) -> list[str | None]:
        augmenter.rng = rng
        return augmenter.batch(list(texts), [_metadata_for_text(m) for m in metas])

    return transform


def build_lm_solver(recipe: LMRecipe, device: str | None = None):
    """Everything an LM recipe names, assembled into an ``LMSolver`` (not yet resumed or trained)."""
    from musicgen.models.lm import LMModel, lm_config
    from musicgen.modules.patterns import get_pattern
    from musicgen.train.datasets import AudioDataset
    from musicgen.train.lm_solver import LMSolver
    from musicgen.train.token_cache import TokenCache, build_token_cache

    codec = build_codec(recipe.codec)
    check_pattern_channels(recipe.pattern.name, codec.channels, str(recipe.run_dir))
    root = prepare_data(recipe.data, codec.sample_rate)
    cache_root = recipe.token_cache or root / ".tokens"
    manifest = getattr(recipe.data, "manifest", None)
    caches = {}
    for split in ("train", "valid"):
        try:
            ds = AudioDataset(root, split, duration_s=None, sample_rate=codec.sample_rate,
                              channels=codec.channels, manifest=manifest)
        except ValueError:
            if split == "train":
                raise
            continue  # no validation split: validation is skipped
        caches[split] = TokenCache(build_token_cache(ds, codec, cache_root))
    train = caches["train"]
    conditioner = None
    overrides = dict(recipe.model.overrides)
    if recipe.conditioner.kind == "lut":
        from musicgen.models.conditioners import LUTConditioner
        from musicgen.models.text_augment import TextAugmenter

        meta_text = TextAugmenter(keep_field_p=1.0).metadata_text
        corpus = [it["description"] for it in train.items] + \
                 [meta_text(_metadata_for_text(it["metadata"])) for it in train.items]
        cond_dim = int(overrides.pop("cond_dim", recipe.conditioner.dim))
        conditioner = LUTConditioner.from_corpus(corpus, recipe.conditioner.dim, cond_dim,
                                                 min_count=recipe.conditioner.min_count,
                                                 max_length=recipe.conditioner.max_length,
                                                 keep_sharps=recipe.conditioner.keep_sharps,
                                                 number_features=recipe.conditioner.number_features)
        overrides.update(cross_attention=True, cond_dim=cond_dim)
    else:
        overrides.update(cross_attention=False, cond_dim=None)
    torch.manual_seed(recipe.train.seed)
    lm = LMModel(lm_config(recipe.model.preset, card=train.card, num_codebooks=train.num_codebooks,
                           **overrides))
    options = {"delays": recipe.pattern.delays} if recipe.pattern.delays is not None else {}
    pattern = get_pattern(recipe.pattern.name, num_codebooks=train.num_codebooks, **options)
    transform = make_text_transform(recipe.text) if conditioner is not None else None
    solver = LMSolver(lm, pattern, train, recipe.train, recipe.run_dir, valid=caches.get("valid"),
                      conditioner=conditioner, text_transform=transform, device=device or recipe.device,
                      extra_state={"recipe": recipe.model_dump(mode="json")})
    solver.codec = codec
    return solver


def export_lm(solver: Any, recipe: LMRecipe) -> Path:
    """Save a MusicGen folder with the EMA weights (native format of ``musicgen_formats``)."""
    from musicgen.models.musicgen import MusicGen

    folder = Path(recipe.export or Path(recipe.run_dir) / "model")
    with solver.ema.swapped(solver.model):
        model = MusicGen(solver.lm, solver.codec, solver.conditioner, pattern=solver.pattern,
                         name=Path(recipe.run_dir).name)
        ref = str(recipe.codec.path or "")  # a Path in the recipe; the folder records it as text
        codec_ref = ref if ref.startswith("builtin:") else None
        model.save_pretrained(str(folder), codec_ref=codec_ref)
    return folder


def run_recipe(recipe: LMRecipe | CodecRecipe, *, steps: int | None = None, resume: bool = True,
               progress: bool = True, device: str | None = None) -> dict[str, Any]:
    """Train a recipe up to ``steps`` (default: all of it); export when the last step is done."""
    if isinstance(recipe, LMRecipe):
        solver = build_lm_solver(recipe, device)
    else:
        from musicgen.train.codec_solver import build_codec_solver

        solver = build_codec_solver(recipe, device)
    if resume and solver.resume():
        print(f"resumed {recipe.run_dir} at step {solver.step}", file=sys.stderr)
    last = solver.train(until_step=steps, progress=progress)
    out: dict[str, Any] = {"step": solver.step, "last": last}
    if solver.step >= recipe.train.steps:
        out["valid"] = solver.validate() if getattr(solver, "valid_data", None) is not None else {}
        out["export"] = str(export_lm(solver, recipe) if isinstance(recipe, LMRecipe)
                            else solver.export(recipe.export or Path(recipe.run_dir) / "model"))
    return out


def main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="musicgen train", description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe", help="a recipe YAML file, or the name of a shipped recipe")
    parser.add_argument("--steps", type=int, default=None, help="stop after this step (resume later)")
    parser.add_argument("--no-resume", action="store_true", help="ignore existing checkpoints")
    parser.add_argument("--device", default=None, help="override the recipe's device (cpu, cuda, cuda:1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    ns = parser.parse_args(args)
    try:
        recipe = load_recipe(recipe_path(ns.recipe))
    except RecipeError as e:
        print(f"musicgen train: {e}", file=sys.stderr)
        return 2
    out = run_recipe(recipe, steps=ns.steps, resume=not ns.no_resume, progress=not ns.no_progress,
                     device=ns.device)
    print(f"step {out['step']}: " + ", ".join(f"{k}={v:.4g}" for k, v in out["last"].items()
                                               if isinstance(v, float)))
    if "export" in out:
        print(f"exported {out['export']}")
    return 0
