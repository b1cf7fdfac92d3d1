"""Recipe -> the objects that train it: data, codec, LM, conditioner, text transform and solver; and the
export of a trained LM as a MusicGen folder.

``musicgen.train.run`` (``musicgen train``) calls these; baselines that train recipes on demand use
``build_codec`` / ``check_pattern_channels`` to check a recipe before training.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from musicgen.checkpoints.files import BUILTIN_PREFIX, resolve_local
from musicgen.models.codec import CompressionModel, StereoCompressionModel
from musicgen.models.codec_config import CODEC_PRESETS, codec_config
from musicgen.modules.patterns import CodebooksPattern, get_pattern, pattern_channels
from musicgen.train.recipes import CodecRecipe, CodecRef, LMRecipe, RecipeError

if TYPE_CHECKING:
    from musicgen.train.codec_solver import CodecSolver
    from musicgen.train.lm_solver import LMSolver


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
    return resolve_local(path) if str(path).startswith(BUILTIN_PREFIX) else Path(path)


def build_codec(ref: CodecRef) -> torch.nn.Module:
    """The recipe's tokenizer: a saved codec (``path``) or a preset with random weights seeded by ``seed``."""
    if ref.path is not None:
        model = CompressionModel.from_pretrained(builtin_path(ref.path), stereo=True if ref.stereo else None)
    else:
        if ref.preset not in CODEC_PRESETS:
            raise RecipeError(f"codec.preset must be one of {sorted(CODEC_PRESETS)}, got {ref.preset!r}")
        torch.manual_seed(ref.seed)
        model = CompressionModel(codec_config(ref.preset))
        if ref.stereo:
            model = StereoCompressionModel(model)
    if ref.num_codebooks is not None:
        model.set_num_codebooks(ref.num_codebooks)
    return model.eval()


def check_pattern_channels(pattern: str | CodebooksPattern, codec_channels: int,
                           source: str = "recipe") -> None:
    """A stereo pattern (``channels == 2``: it places left/right codebook pairs) needs stereo tokens."""
    channels = pattern.channels if isinstance(pattern, CodebooksPattern) else pattern_channels(pattern)
    name = pattern.name if isinstance(pattern, CodebooksPattern) else pattern
    if channels == 2 and codec_channels != 2:
        raise RecipeError(f"{source}: pattern.name {name!r} needs stereo tokens (the codec on L and R, "
                          f"2K codebooks) but the codec gives {codec_channels} channel(s); set "
                          "codec.stereo: true")


def _metadata_for_text(meta: dict) -> dict:
    """Sidecars that split key and mode (synthcaps) read as ``key: A minor`` in merged metadata."""
    if "mode" in meta and isinstance(meta.get("key"), str) and not meta["key"].endswith(meta["mode"]):
        return {**meta, "key": f"{meta['key']} {meta['mode']}"}
    return meta


def make_text_transform(spec: Any):
    """Metadata merge, description dropout and word dropout (``TextAugmenter``) with the solver's
    per-step RNG, so that resumed runs draw the same texts."""
    from musicgen.models.text_augment import TextAugmenter

    augmenter = TextAugmenter(merge_metadata_p=spec.merge_metadata_p,
                              drop_description_p=spec.drop_description_p,
                              word_dropout_p=spec.word_dropout_p, cfg_dropout_p=0.0)

    def transform(texts: Sequence[str | None], metas: Sequence[dict], rng: random.Random) -> list[str | None]:
        augmenter.rng = rng
        return augmenter.batch(list(texts), [_metadata_for_text(m) for m in metas])

    return transform


def build_lm_solver(recipe: LMRecipe, device: str | None = None) -> LMSolver:
    """Everything an LM recipe names, assembled into an ``LMSolver`` (not yet resumed or trained)."""
    from musicgen.models.lm import LMModel, lm_config
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


def build_codec_solver(recipe: CodecRecipe, device: str | None = None) -> CodecSolver:
    """The codec, data and solver a codec recipe names (random initial weights seeded by ``seed``)."""
    from musicgen.train.codec_solver import CodecSolver
    from musicgen.train.datasets import AudioDataset

    if recipe.model.preset not in CODEC_PRESETS:
        raise ValueError(f"codec model.preset must be one of {sorted(CODEC_PRESETS)}, "
                         f"got {recipe.model.preset!r}")
    torch.manual_seed(recipe.train.seed)
    codec = CompressionModel(codec_config(recipe.model.preset, **recipe.model.overrides))
    root = prepare_data(recipe.data, codec.sample_rate)
    manifest = getattr(recipe.data, "manifest", None)
    kwargs = dict(duration_s=recipe.train.segment_s, sample_rate=codec.sample_rate, channels=codec.channels,
                  seed=recipe.train.seed, manifest=manifest)
    train = AudioDataset(root, "train", **kwargs)
    try:
        valid = AudioDataset(root, "valid", **kwargs)
    except ValueError:
        valid = None
    return CodecSolver(codec, train, recipe.train, recipe.run_dir, valid=valid,
                       device=device or recipe.device)
