"""Train-or-reuse: a MusicGen model made from a training recipe, cached by the recipe's digest.

The ``musicgen`` generator takes ``recipe:`` (a shipped recipe name such as ``lm-small-synthcaps``, or
a recipe YAML path relative to the suite) instead of ``checkpoint:``. The recipe is resolved in four
steps, and the result names the model:

1. the recipe YAML is read as a mapping;
2. ``overrides`` (a nested mapping, e.g. ``{train: {steps: 200}}``) is merged into it key by key;
3. ``pattern`` sets ``pattern: {name: ...}`` and ``size`` merges ``SIZES[size]`` into
   ``model.overrides`` (CPU-scaled stand-ins for the paper's 300M / 1.5B / 3.3B, same order);
4. ``run_dir`` and ``export`` are dropped, and a ``synthcaps`` corpus's ``root`` too (it is placed by
   its own settings, see below); the rest, as canonical JSON, is hashed (sha256).

The model lives in ``CACHE/models/<digest>/`` (``CACHE`` is the run's ``cache/`` folder): ``run/``
(the solver's checkpoints and ``metrics.jsonl``, so an interrupted training resumes), ``model/`` (the
exported MusicGen folder) and ``done.json`` (written last, atomically: the recipe as resolved, the
digest and the final step). A model with ``done.json`` is reused without training; any other state
trains (resuming from ``run/`` when it has checkpoints). A ``synthcaps`` corpus is built once per
data spec under ``CACHE/data/synthcaps-<digest>/`` and shared, with its token cache, by every model
trained on it.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.files import atomic_write_json, sha256_json

#: CPU-scaled LM sizes for the size ablation (merged into a recipe's ``model.overrides``).
SIZES: dict[str, dict[str, int]] = {
    "small": {"dim": 64, "num_heads": 4, "num_layers": 2},
    "medium": {"dim": 128, "num_heads": 4, "num_layers": 3},
    "large": {"dim": 192, "num_heads": 6, "num_layers": 4},
}

DONE_FILE = "done.json"


def merge_overrides(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in: mappings merge key by key, anything else replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_overrides(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve_recipe(recipe: str, base_dir: Path | None = None, overrides: Mapping[str, Any] | None = None,
                   pattern: str | None = None, size: str | None = None) -> dict[str, Any]:
    """The recipe mapping after overrides, pattern and size (steps 1-3 above), not yet placed.

    Raises ``ValueError`` naming the recipe and the bad value (unknown size, pattern, recipe file)."""
    import yaml

    from musicgen.train.recipes import RecipeError, recipe_path

    candidate = Path(base_dir, recipe) if base_dir is not None and not Path(recipe).is_absolute() else None
    try:
        path = candidate if candidate is not None and candidate.is_file() else recipe_path(recipe)
    except RecipeError as e:
        raise ValueError(str(e)) from None
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or data.get("kind") != "lm":
        raise ValueError(f"recipe {path}: train-or-reuse needs an LM recipe (kind: lm)")
    data = merge_overrides(data, overrides or {})
    if pattern is not None:
        from musicgen.modules.patterns import pattern_names

        if pattern not in pattern_names():
            raise ValueError(f"recipe {path}: unknown pattern {pattern!r}; known: {pattern_names()}")
        data["pattern"] = {"name": pattern}
    if size is not None:
        if size not in SIZES:
            raise ValueError(f"recipe {path}: unknown size {size!r}; known: {sorted(SIZES)}")
        model = dict(data.get("model") or {})
        model["overrides"] = {**dict(model.get("overrides") or {}), **SIZES[size]}
        data["model"] = model
    return data


def recipe_digest(data: Mapping[str, Any]) -> str:
    """sha256 hex of a resolved recipe without the fields that only say where things are written."""
    keyed = {k: v for k, v in data.items() if k not in ("run_dir", "export", "device")}
    if isinstance(keyed.get("data"), Mapping) and keyed["data"].get("kind") == "synthcaps":
        keyed["data"] = {k: v for k, v in keyed["data"].items() if k != "root"}
    return sha256_json(keyed)


def place_recipe(data: Mapping[str, Any], cache_dir: Path) -> tuple[str, dict[str, Any], Path]:
    """(digest, the recipe with ``run_dir``/``export``/synthcaps ``root`` inside ``cache_dir``, model
    folder ``cache_dir/models/<digest>``)."""
    digest = recipe_digest(data)
    folder = Path(cache_dir) / "models" / digest
    placed = merge_overrides(data, {"run_dir": str(folder / "run"), "export": str(folder / "model")})
    spec = placed.get("data")
    if isinstance(spec, dict) and spec.get("kind") == "synthcaps":
        corpus = {k: v for k, v in spec.items() if k != "root"}
        spec["root"] = str(Path(cache_dir) / "data" / f"synthcaps-{sha256_json(corpus)[:16]}")
    return digest, placed, folder


def check_recipe(data: Mapping[str, Any], source: str) -> list[str]:
    """Problems with a resolved recipe, without training: schema, a codec folder that exists, and a
    stereo pattern only with a stereo codec."""
    from musicgen.modules.patterns import pattern_channels
    from musicgen.train.recipes import RecipeError, parse_recipe
    from musicgen.train.run import build_codec, builtin_path, check_pattern_channels

    placed = merge_overrides(data, {"run_dir": "unused"})
    try:
        parsed = parse_recipe(placed, source)
    except RecipeError as e:
        return [str(e)]
    if parsed.codec.path is not None:
        try:
            folder = builtin_path(parsed.codec.path)
        except FileNotFoundError as e:
            return [str(e)]
        if not Path(folder).exists():
            return [f"{source}: codec.path {parsed.codec.path} does not exist"]
    if pattern_channels(parsed.pattern.name) == 2 and not parsed.codec.stereo:
        try:  # a stereo pattern needs stereo tokens: only a codec saved as stereo gives them
            check_pattern_channels(parsed.pattern.name, build_codec(parsed.codec).channels, source)
        except (RecipeError, FileNotFoundError, ValueError) as e:
            return [str(e)]
    return []


def trained_model(data: Mapping[str, Any], cache_dir: Path, device: str = "cpu",
                  source: str = "<recipe>", progress: bool = True) -> Path:
    """The exported model folder of a resolved recipe: reused when ``done.json`` is there, else trained
    (resuming a partial run) and marked done."""
    from musicgen.train.recipes import parse_recipe
    from musicgen.train.run import run_recipe

    digest, placed, folder = place_recipe(data, cache_dir)
    if (folder / DONE_FILE).is_file():
        return folder / "model"
    recipe = parse_recipe(placed, source)
    print(f"train-or-reuse: training {source} -> {folder} ({recipe.train.steps} steps)", file=sys.stderr)
    out = run_recipe(recipe, progress=progress, device=device)
    if "export" not in out:
        raise RuntimeError(f"{source}: training stopped at step {out['step']} of {recipe.train.steps}")
    record = {"digest": digest, "source": source, "recipe": data, "step": out["step"],
              "last": out.get("last"), "valid": out.get("valid")}
    atomic_write_json(folder / DONE_FILE, record, indent=1)
    return folder / "model"
