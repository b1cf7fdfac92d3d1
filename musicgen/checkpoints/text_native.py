"""Our native format of a text conditioner: a folder with

    text_conditioner.json          the conditioner's ``config()``: ``{"type": "lut" | "t5" | "sentence", ..}``
    text_conditioner.safetensors   its trainable weights (everything but a frozen ``encoder.*``)
    encoder/                       a pretrained encoder + tokenizer (``save_pretrained`` layout), if copied

``build_text_conditioner(config)`` turns a ``config()`` dict back into a conditioner (random trainable
weights); ``load_text_conditioner`` then loads the weights. Saving then loading gives identical outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from musicgen.checkpoints.files import (
    atomic_write_json,
    load_state_dict,
    load_state_strict,
    read_json,
    require_file,
)
from musicgen.models.conditioners import LUTConditioner, TextConditioner
from musicgen.models.text_conditioners import SentenceConditioner, T5Conditioner

CONFIG_NAME = "text_conditioner.json"
WEIGHTS_NAME = "text_conditioner.safetensors"
PRETRAINED = {"t5": T5Conditioner, "sentence": SentenceConditioner}


def build_text_conditioner(config: dict[str, Any], folder: Path | None = None) -> TextConditioner:
    """A text conditioner from its ``config()`` dict (random projection weights).

    Pretrained encoders are read from ``config["encoder_path"]`` (resolved against ``folder``).
    """
    kind = config.get("type")
    if kind == "lut":
        return LUTConditioner(config["vocabulary"], config["dim"], config["output_dim"],
                              config.get("max_length", 64), bool(config.get("keep_sharps", False)),
                              int(config.get("number_features", 0)))
    if kind in PRETRAINED:
        path = Path(config["encoder_path"])
        if folder is not None and not path.is_absolute():
            path = Path(folder) / path
        return PRETRAINED[kind].from_pretrained(path, **{k: v for k, v in config.items()
                                                         if k not in ("type", "encoder_path")})
    raise ValueError(f"unknown text conditioner type {kind!r}; expected one of 'lut', 't5', 'sentence'")


def save_text_conditioner(cond: TextConditioner, folder: str | Path, copy_encoder: bool = True) -> Path:
    """Write ``cond`` to ``folder``: config JSON + trainable weights in safetensors.

    For pretrained encoders the frozen encoder and tokenizer are saved to ``folder/encoder`` when
    ``copy_encoder`` (self-contained folder), else the config keeps the original encoder path.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = cond.config()
    if config["type"] in PRETRAINED and copy_encoder:
        cond.save_encoder(folder / "encoder")  # type: ignore[attr-defined]
        config["encoder_path"] = "encoder"
    trainable = {k: v.detach().contiguous().cpu() for k, v in cond.state_dict().items()
                 if not k.startswith("encoder.")}
    save_file(trainable, str(folder / WEIGHTS_NAME))
    atomic_write_json(folder / CONFIG_NAME, config, sort_keys=False)
    return folder


def load_text_conditioner(folder: str | Path) -> TextConditioner:
    """Read a folder written by ``save_text_conditioner``; a missing file raises naming it."""
    folder = Path(folder)
    config = read_json(require_file(folder, CONFIG_NAME))
    state = load_state_dict(require_file(folder, WEIGHTS_NAME))
    cond = build_text_conditioner(config, folder)
    load_state_strict(cond, state, str(folder / WEIGHTS_NAME), "text conditioner weights", skip=("encoder.",))
    return cond
