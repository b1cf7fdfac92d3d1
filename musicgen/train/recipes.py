"""Training recipes: YAML files validated whole by pydantic models (unknown keys are errors).

``load_recipe(path)`` returns an ``LMRecipe`` or a ``CodecRecipe`` (chosen by ``kind``); any problem
raises ``RecipeError`` naming the file, the key path (``train.lrr``) and what was expected. Relative
paths in a recipe are resolved against the current directory. Shipped recipes live in
``musicgen/recipes/*.yaml``; ``recipe_path("lm-small-synthcaps")`` finds one by name.

An LM recipe::

    kind: lm
    run_dir: runs/lm-small            # metrics.jsonl, checkpoints/, the exported model
    data: {kind: synthcaps, root: data/synthcaps, num_clips: 300}   # or {kind: audio_folder, root: ...}
    codec: {path: musicgen/builtin/codec-small}                     # or {preset: tiny, seed: 0} (random)
                                                                    # stereo: true -> L/R interleaved, 2K
    model: {preset: tiny, overrides: {dim: 64}}                     # LMConfig preset + fields
    pattern: {name: delay}
    conditioner: {kind: lut, dim: 64}                               # or {kind: none}
    text: {merge_metadata_p: 0.25, drop_description_p: 0.5, word_dropout_p: 0.3}
    train: {steps: 2000, batch_size: 16, segment_frames: 250, lr: 1e-3, ...}   # LMTrainConfig

A codec recipe has ``kind: codec``, ``run_dir``, ``data``, ``model`` (codec preset + overrides) and
``train`` (``CodecSolverConfig``).
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from musicgen.train.lm_solver import LMTrainConfig


class RecipeError(ValueError):
    """A recipe file that cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SynthcapsData(_Strict):
    """The synthetic corpus, built (or reused) at ``root`` at the codec's sample rate."""

    kind: Literal["synthcaps"]
    root: Path
    num_clips: int = Field(300, ge=3)
    seed: int = 0
    duration_s: float = Field(10.0, gt=0)


class AudioFolderData(_Strict):
    """An audio folder with JSON sidecars and ``train``/``valid`` sub-folders (or a manifest)."""

    kind: Literal["audio_folder"]
    root: Path
    manifest: Path | None = None


DataSpec = Annotated[SynthcapsData | AudioFolderData, Field(discriminator="kind")]


class CodecRef(_Strict):
    """The codec that makes the tokens: a saved model folder, or a preset with random weights.

    ``stereo: true`` runs the (mono) codec on the left and the right channel, as MusicGen's stereo
    models do (``StereoCompressionModel``: codes ``[L0, R0, L1, R1, ...]``, so the LM sees 2 K
    codebooks); mono audio files are then read as dual mono (left = right). ``num_codebooks`` counts
    the codebooks of one channel."""

    path: Path | None = None
    preset: str | None = None
    seed: int = 0
    num_codebooks: int | None = Field(None, ge=1)
    stereo: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> CodecRef:
        if (self.path is None) == (self.preset is None):
            raise ValueError("give exactly one of codec.path (a saved codec folder) or codec.preset")
        return self


class ModelSpec(_Strict):
    preset: str = "tiny"
    overrides: dict[str, Any] = Field(default_factory=dict)


class PatternSpec(_Strict):
    name: str = "delay"
    delays: list[int] | None = None


class ConditionerSpec(_Strict):
    kind: Literal["lut", "none"] = "lut"
    dim: int = Field(64, ge=1)
    max_length: int = Field(64, ge=1)
    min_count: int = Field(1, ge=1)
    keep_sharps: bool = False  # "C#" and "C" are different words (see conditioners.split_words)
    number_features: int = Field(0, ge=0)  # numbers (BPM) as log-scale features, 0 = off (LUTConditioner)


class TextSpec(_Strict):
    """Text augmentation before condition dropout (paper: 0.25 / 0.5 / 0.3)."""

    merge_metadata_p: float = Field(0.25, ge=0, le=1)
    drop_description_p: float = Field(0.5, ge=0, le=1)
    word_dropout_p: float = Field(0.3, ge=0, le=1)


class LMRecipe(_Strict):
    kind: Literal["lm"]
    run_dir: Path
    device: str = "cpu"
    data: DataSpec
    token_cache: Path | None = None  # default: {data.root}/.tokens
    codec: CodecRef
    model: ModelSpec = ModelSpec()
    pattern: PatternSpec = PatternSpec()
    conditioner: ConditionerSpec = ConditionerSpec()
    text: TextSpec = TextSpec()
    train: LMTrainConfig = LMTrainConfig()
    export: Path | None = None  # default: {run_dir}/model


class CodecSolverConfig(_Strict):
    """The ``train`` section of a codec recipe: the codec objective's settings plus the loop's."""

    steps: int = Field(1000, ge=1)
    batch_size: int = Field(8, ge=1)
    segment_s: float = Field(1.0, gt=0)  # the paper trains the codec on 1 s crops
    lr: float = Field(3e-4, gt=0)
    betas: tuple[float, float] = (0.5, 0.9)
    weights: dict[str, float] = Field(
        default_factory=lambda: {"l1": 0.1, "mel": 2.0, "stft": 0.0, "adv": 4.0, "feat": 4.0})
    commitment_weight: float = Field(1.0, ge=0)
    balance: bool = True
    adversarial: bool = False
    grad_clip: float = Field(0.0, ge=0)
    seed: int = 0
    log_every: int = Field(10, ge=1)
    valid_every: int = Field(0, ge=0)  # 0: only at the end
    checkpoint_every: int = Field(0, ge=0)  # 0: only at the end
    keep_checkpoints: int = Field(2, ge=1)
    valid_batches: int = Field(2, ge=1)


class CodecRecipe(_Strict):
    kind: Literal["codec"]
    run_dir: Path
    device: str = "cpu"
    data: DataSpec
    model: ModelSpec = ModelSpec()
    train: CodecSolverConfig = CodecSolverConfig()
    export: Path | None = None  # default: {run_dir}/model


Recipe = LMRecipe | CodecRecipe
_KINDS = {"lm": LMRecipe, "codec": CodecRecipe}


def _describe(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            lines.append(f"{source}: unknown key {where!r}")
        else:
            lines.append(f"{source}: {where}: {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


def parse_recipe(data: Any, source: str = "<recipe>") -> Recipe:
    """Validate a recipe given as a mapping (``source`` names it in errors)."""
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: a recipe is a mapping of keys, got {type(data).__name__}")
    kind = data.get("kind")
    if kind not in _KINDS:
        raise RecipeError(f"{source}: kind must be one of {sorted(_KINDS)}, got {kind!r}")
    try:
        return _KINDS[kind].model_validate(data)
    except ValidationError as e:
        raise RecipeError(_describe(e, source)) from None


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe YAML file."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise RecipeError(f"{path}: not valid YAML: {e}") from None
    return parse_recipe(data, str(path))


def recipe_path(name_or_path: str) -> Path:
    """A recipe file: an existing path, or the name of a shipped recipe (``musicgen/recipes``)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = importlib.resources.files("musicgen") / "recipes"
    name = name_or_path if name_or_path.endswith(".yaml") else f"{name_or_path}.yaml"
    candidate = Path(str(shipped)) / name
    if candidate.is_file():
        return candidate
    names = sorted(p.stem for p in Path(str(shipped)).glob("*.yaml"))
    raise RecipeError(f"no recipe file {name_or_path!r}; shipped recipes: {names}")
