"""Our own LM format: a folder with ``lm.safetensors`` (the :class:`LMModel` state dict, our key names)
and ``lm_config.json`` (``{"format": "musicgen-bench-lm", "version": 1, "config": LMConfig fields}``).
Saving then loading gives bit-identical weights."""

from __future__ import annotations

import json
from pathlib import Path

from musicgen.checkpoints.files import load_state_dict, read_json, require_file, resolve_local
from musicgen.checkpoints.lm_transformers import load_lm_state
from musicgen.models.lm import LMConfig, LMModel

FORMAT = "musicgen-bench-lm"
VERSION = 1
WEIGHTS = "lm.safetensors"
CONFIG = "lm_config.json"


def save_lm(lm: LMModel, folder: str | Path) -> Path:
    """Write ``lm`` into ``folder`` (created if needed); returns the folder."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in lm.state_dict().items()}
    save_file(state, str(folder / WEIGHTS), metadata={"format": FORMAT})
    doc = {"format": FORMAT, "version": VERSION, "config": lm.config.to_dict()}
    (folder / CONFIG).write_text(json.dumps(doc, indent=2))
    return folder


def load_lm(path_or_id: str | Path) -> LMModel:
    """Read an LM saved by :func:`save_lm`."""
    folder = resolve_local(path_or_id)
    doc = read_json(require_file(folder, CONFIG, "It is written by musicgen.checkpoints.lm_native.save_lm."))
    if doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise ValueError(f"{folder / CONFIG}: format {doc.get('format')!r} version {doc.get('version')!r}; "
                         f"expected {FORMAT!r} version {VERSION}")
    lm = LMModel(LMConfig.from_dict(doc["config"]))
    state = load_state_dict(require_file(folder, WEIGHTS, "It is written beside lm_config.json by save_lm."))
    load_lm_state(lm, state, source=str(folder / WEIGHTS))
    return lm
