"""Codec checkpoints in three formats -> ``CodecParts`` (config + weights under our key names); our
native format written back.

``read_codec(path)`` finds the format; ``CompressionModel.from_pretrained`` builds the model from what
it returns (this module never builds one):

1. our native folder: ``config.json`` = ``{"format": "musicgen-codec", "format_version": 1,
   "interleave_stereo": bool, "config": CodecConfig fields}`` + ``model.safetensors``;
2. a transformers ``EncodecModel`` folder, or a ``MusicgenForConditionalGeneration`` folder whose
   ``audio_encoder`` is the codec (``codec_transformers``);
3. audiocraft's ``compression_state_dict.bin``, as a file or in a folder (``codec_audiocraft``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from musicgen.checkpoints.codec_audiocraft import read_audiocraft_codec
from musicgen.checkpoints.codec_transformers import read_transformers_codec
from musicgen.checkpoints.files import (
    MissingCheckpointFile,
    atomic_write_json,
    load_state_dict,
    read_json,
    require_file,
    resolve_local,
)
from musicgen.models.codec_config import CodecConfig, CodecParts

if TYPE_CHECKING:
    from torch import nn

NATIVE_FORMAT = "musicgen-codec"
NATIVE_CONFIG = "config.json"
NATIVE_WEIGHTS = "model.safetensors"
AUDIOCRAFT_FILE = "compression_state_dict.bin"
TRANSFORMERS_TYPES = ("encodec", "musicgen", "musicgen_melody")


def read_codec(path: str | os.PathLike[str]) -> CodecParts:
    """The codec checkpoint at ``path`` (folder, file or hub id in the local HF cache), any format."""
    p = resolve_local(path)
    if p.is_file() and p.suffix != ".safetensors":
        return read_audiocraft_codec(p)
    folder = p.parent if p.is_file() else p
    cfg_path = folder / NATIVE_CONFIG
    meta = read_json(cfg_path) if cfg_path.is_file() else None
    if meta is not None and meta.get("format") == NATIVE_FORMAT:
        return read_native_codec(folder, meta)
    if meta is not None and meta.get("model_type") in TRANSFORMERS_TYPES:
        return read_transformers_codec(folder)
    if (folder / AUDIOCRAFT_FILE).is_file():
        return read_audiocraft_codec(folder / AUDIOCRAFT_FILE)
    present = sorted(q.name for q in folder.iterdir()) if folder.is_dir() else []
    raise MissingCheckpointFile(
        f"{str(folder)!r} holds no codec checkpoint we know: expected config.json (native "
        f"'{NATIVE_FORMAT}' or transformers model_type 'encodec'/'musicgen') with its weights, "
        f"or audiocraft's {AUDIOCRAFT_FILE}; the folder holds {present or 'nothing'}"
    )


def read_native_codec(folder: Path, meta: dict[str, Any] | None = None) -> CodecParts:
    """Our native folder (``meta``: its ``config.json`` when already read)."""
    folder = Path(folder)
    meta = read_json(require_file(folder, NATIVE_CONFIG)) if meta is None else meta
    if meta.get("format_version") != 1:
        raise ValueError(
            f"{folder / NATIVE_CONFIG}: format_version {meta.get('format_version')!r}, expected 1"
        )
    weights = require_file(folder, NATIVE_WEIGHTS)
    return CodecParts(CodecConfig.from_dict(meta["config"]), load_state_dict(weights), str(weights),
                      bool(meta.get("interleave_stereo", False)))


def save_codec(codec: nn.Module, folder: str | os.PathLike[str], stereo: bool = False) -> Path:
    """Write a mono ``CompressionModel`` in our native format into ``folder`` (created if needed);
    ``stereo`` records that it is used as the interleaved stereo codec."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in codec.state_dict().items()}
    save_file(state, str(folder / NATIVE_WEIGHTS))
    meta = {"format": NATIVE_FORMAT, "format_version": 1, "interleave_stereo": bool(stereo),
            "config": codec.config.to_dict()}
    atomic_write_json(folder / NATIVE_CONFIG, meta, indent=2, sort_keys=False)
    return folder
