"""``musicgen train RECIPE.yaml``: train a recipe (its parts are built by ``musicgen.train.build``).

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
import sys
from pathlib import Path
from typing import Any

from musicgen.train.build import (
    build_codec,
    build_codec_solver,
    build_lm_solver,
    builtin_path,
    check_pattern_channels,
    export_lm,
    make_text_transform,
    prepare_data,
)
from musicgen.train.recipes import CodecRecipe, LMRecipe, RecipeError, load_recipe, recipe_path

# The recipe builders moved to musicgen.train.build; these stay importable from here.
__all__ = ["build_codec", "builtin_path", "check_pattern_channels", "main", "make_text_transform",
           "prepare_data", "run_recipe"]


def run_recipe(recipe: LMRecipe | CodecRecipe, *, steps: int | None = None, resume: bool = True,
               progress: bool = True, device: str | None = None) -> dict[str, Any]:
    """Train a recipe up to ``steps`` (default: all of it); export when the last step is done."""
    if isinstance(recipe, LMRecipe):
        solver = build_lm_solver(recipe, device)
    else:
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
