"""Load a transformers ``EncodecModel`` folder (or the codec inside a ``MusicgenForConditionalGeneration``).

Key names are ours already except weight normalisation: transformers 4.3x+ saves
``*.conv.parametrizations.weight.original0`` (g) and ``original1`` (v); older releases saved
``*.conv.weight_g`` / ``weight_v``. Both load. A MusicGen folder holds the codec under the
``audio_encoder`` sub-config and the ``audio_encoder.`` key prefix.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from musicgen.checkpoints.files import MissingCheckpointFile, load_state_dict, read_json, require_file
from musicgen.models.codec_config import CodecConfig, CodecParts

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def codec_config_from_transformers(cfg: dict[str, Any], source: str = "config.json") -> CodecConfig:
    """Our ``CodecConfig`` from an ``EncodecConfig`` dict; unsupported options raise with their name."""
    if cfg.get("normalize", False):
        raise NotImplementedError(f"{source}: normalize=true (input renormalisation) is not supported")
    if cfg.get("chunk_length_s") is not None:
        raise NotImplementedError(
            f"{source}: chunk_length_s={cfg['chunk_length_s']} (chunked encoding) is not supported"
        )
    norm = cfg.get("norm_type", "weight_norm")
    if norm != "weight_norm":
        raise NotImplementedError(f"{source}: norm_type={norm!r} is not supported (only weight_norm)")
    hidden = cfg.get("hidden_size", 128)
    if cfg.get("codebook_dim") not in (None, hidden):
        raise NotImplementedError(f"{source}: codebook_dim={cfg['codebook_dim']} != hidden_size={hidden}")
    sr = cfg.get("sampling_rate", 24000)
    ratios = list(cfg.get("upsampling_ratios", [8, 5, 4, 2]))
    codebook_size = cfg.get("codebook_size", 1024)
    frame_rate = math.ceil(sr / math.prod(ratios))
    bandwidths = cfg.get("target_bandwidths", [1.5, 3.0, 6.0, 12.0, 24.0])
    num_codebooks = int(1000 * bandwidths[-1] // (frame_rate * math.ceil(math.log2(codebook_size))))
    return CodecConfig(
        sample_rate=sr,
        channels=cfg.get("audio_channels", 1),
        dimension=hidden,
        n_filters=cfg.get("num_filters", 32),
        ratios=ratios,
        residual_layers=cfg.get("num_residual_layers", 1),
        kernel_size=cfg.get("kernel_size", 7),
        last_kernel_size=cfg.get("last_kernel_size", 7),
        residual_kernel_size=cfg.get("residual_kernel_size", 3),
        dilation_base=cfg.get("dilation_growth_rate", 2),
        compress=cfg.get("compress", 2),
        lstm_layers=cfg.get("num_lstm_layers", 2),
        causal=cfg.get("use_causal_conv", True),
        pad_mode=cfg.get("pad_mode", "reflect"),
        true_skip=not cfg.get("use_conv_shortcut", True),
        trim_right_ratio=cfg.get("trim_right_ratio", 1.0),
        codebook_size=codebook_size,
        num_codebooks=num_codebooks,
    )


def convert_transformers_codec_state(
    state: dict[str, torch.Tensor], prefix: str = ""
) -> dict[str, torch.Tensor]:
    """transformers ``EncodecModel`` keys (either weight-norm naming) -> our keys.

    Keys outside ``prefix`` are dropped (the text encoder and LM of a MusicGen folder).
    """
    out = {}
    for key, value in state.items():
        if not key.startswith(prefix):
            continue
        key = key[len(prefix) :]
        key = key.replace(".parametrizations.weight.original0", ".weight_g")
        key = key.replace(".parametrizations.weight.original1", ".weight_v")
        out[key] = value
    return out


def read_transformers_codec(folder: Path) -> CodecParts:
    """The config and weights (our key names) of a transformers folder (``config.json`` + weights)."""
    folder = Path(folder)
    cfg = read_json(require_file(folder, "config.json"))
    prefix = ""
    if cfg.get("model_type") in ("musicgen", "musicgen_melody"):
        if "audio_encoder" not in cfg:
            raise ValueError(f"{folder / 'config.json'}: a MusicGen config without 'audio_encoder'")
        cfg, prefix = cfg["audio_encoder"], "audio_encoder."
    config = codec_config_from_transformers(cfg, str(folder / "config.json"))
    weights = next((folder / name for name in WEIGHT_FILES if (folder / name).is_file()), None)
    if weights is None:
        raise MissingCheckpointFile(
            f"{folder}: no weights file; expected one of {list(WEIGHT_FILES)} beside config.json "
            f"(the folder holds: {sorted(q.name for q in folder.iterdir())})"
        )
    state = convert_transformers_codec_state(load_state_dict(weights), prefix)
    return CodecParts(config, state, str(weights))
