"""Load the LM of an audiocraft ``state_dict.bin`` (the exported MusicGen format) into :class:`LMModel`.

The file (read with ``weights_only=True``) is a dict with ``best_state`` (the LM's flat state dict;
a nested ``{"model": ...}`` is accepted too) and ``xp.cfg`` (the training config as a YAML string).
Keys: ``emb.k.weight``; ``transformer.layers.i.self_attn.in_proj_weight`` (q, k, v stacked ``[3D, D]``),
``self_attn.out_proj.weight``, ``cross_attention.in_proj_weight`` / ``out_proj.weight``, ``norm1``,
``norm_cross``, ``norm2``, ``linear1``, ``linear2``; ``out_norm``; ``linears.k.weight``; the text
condition projection ``condition_provider.conditioners.description.output_proj``.

Sizes come from the tensors' shapes. The number of heads and the activation are not visible in the
shapes: they come from ``xp.cfg`` (``transformer_lm.num_heads`` / ``activation``) when present, else
``max(1, dim // 64)`` heads (true of every released size) and GELU. Other conditioners' weights (e.g. the
melody ``self_wav`` projection) are returned in ``extras`` for the pipeline.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
import yaml

from musicgen.checkpoints.files import load_state_dict, require_file, resolve_local
from musicgen.checkpoints.lm_transformers import load_lm_state
from musicgen.models.lm import LMConfig, LMModel

COND_PROJ = "condition_provider.conditioners.description.output_proj."
_LAYER_RENAMES = {"cross_attention": "cross_attn"}


def _read_cfg(pkg: dict[str, Any], path: Path) -> dict[str, Any]:
    cfg = pkg.get("xp.cfg")
    if cfg is None:
        return {}
    if isinstance(cfg, str):
        try:
            cfg = yaml.safe_load(cfg)
        except yaml.YAMLError as e:
            raise ValueError(f"{path}: 'xp.cfg' is not valid YAML ({e})") from e
    return cfg if isinstance(cfg, dict) else {}


def lm_config_from_audiocraft(state: dict[str, torch.Tensor], cfg: dict[str, Any] | None = None,
                              source: str = "state_dict.bin") -> LMConfig:
    """:class:`LMConfig` from audiocraft LM weights (shapes) and optionally its ``xp.cfg`` dict."""
    cfg = cfg or {}
    tlm = cfg.get("transformer_lm", {}) or {}
    for key in ("emb.0.weight", "linears.0.weight", "transformer.layers.0.linear1.weight"):
        if key not in state:
            raise ValueError(f"{source}: key {key!r} is missing; not an audiocraft MusicGen LM state dict "
                             f"(first keys: {sorted(state)[:5]})")
    unsupported = {name: tlm[name] for name, ok in (("positional_embedding", "sin"), ("max_period", 10000),
                                                    ("positional_scale", 1), ("layer_scale", None))
                   if name in tlm and tlm[name] != ok}
    if unsupported:
        raise ValueError(f"{source}: xp.cfg transformer_lm settings {unsupported} are not supported "
                         "(this LM uses sinusoidal positions, max period 10000, scale 1, no LayerScale)")
    if any(".layer_scale" in k for k in state):
        raise ValueError(f"{source}: LayerScale weights are not supported by this LM")
    card_plus_one, dim = state["emb.0.weight"].shape
    num_codebooks = len({k.split(".")[1] for k in state if re.match(r"emb\.\d+\.weight$", k)})
    num_layers = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("transformer.layers."))
    cond = state.get(COND_PROJ + "weight")
    activation = tlm.get("activation", "gelu")
    return LMConfig(
        dim=int(dim), num_heads=int(tlm.get("num_heads", max(1, dim // 64))), num_layers=num_layers,
        card=int(card_plus_one) - 1, num_codebooks=num_codebooks,
        ffn_dim=int(state["transformer.layers.0.linear1.weight"].shape[0]),
        activation={"gelu": "gelu", "relu": "relu"}.get(activation, activation),
        cross_attention="transformer.layers.0.cross_attention.in_proj_weight" in state,
        cond_dim=int(cond.shape[1]) if cond is not None else None)


def _unwrap_mha(key: str) -> str:
    return key.replace(".self_attn.mha.", ".self_attn.").replace(".cross_attention.mha.", ".cross_attention.")


def convert_audiocraft_state(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor],
                                                                       dict[str, torch.Tensor]]:
    """``(lm_state, extras)``: audiocraft LM keys renamed to ours (fused q/k/v split), the rest apart.

    Attention weights come in either of audiocraft's layouts: ``self_attn.in_proj_weight`` (its custom
    attention, ``memory_efficient``/``custom``, the released models) or ``self_attn.mha.in_proj_weight``
    (``torch.nn.MultiheadAttention``, a model trained without them); audiocraft loads both alike."""
    out: dict[str, torch.Tensor] = {}
    extras: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        key = _unwrap_mha(key)
        if key.startswith(COND_PROJ):
            out["condition_proj." + key[len(COND_PROJ):]] = value
        elif key.startswith(("emb.", "linears.", "out_norm.")):
            out[key] = value
        elif key.startswith("transformer.layers."):
            m = re.match(r"transformer\.layers\.(\d+)\.(self_attn|cross_attention)\.in_proj_weight$", key)
            if m:
                i, part = m.groups()
                base = f"transformer.layers.{i}.{_LAYER_RENAMES.get(part, part)}"
                for name, part_weight in zip(("q", "k", "v"), value.chunk(3, dim=0)):
                    out[f"{base}.{name}_proj.weight"] = part_weight
            else:
                out[key.replace(".cross_attention.", ".cross_attn.")] = value
        else:
            extras[key] = value
    return out, extras


def load_audiocraft_lm(path: str | Path) -> tuple[LMModel, dict[str, torch.Tensor]]:
    """``(lm, extras)`` from an audiocraft ``state_dict.bin`` (or a folder holding one)."""
    lm, extras, _ = load_audiocraft_lm_with_cfg(path)
    return lm, extras


def load_audiocraft_lm_with_cfg(path: str | Path) -> tuple[LMModel, dict[str, torch.Tensor], dict[str, Any]]:
    """``(lm, extras, xp_cfg)``: also the parsed ``xp.cfg`` (``{}`` when absent), whose other fields
    (text encoder name, segment duration, ...) the pipeline reads."""
    path = resolve_local(path)
    if path.is_dir():
        path = require_file(path, "state_dict.bin", "It is the LM file of an audiocraft MusicGen checkpoint "
                                                    "(e.g. facebook/musicgen-small in audiocraft's layout).")
    pkg = load_state_dict(path)
    if "best_state" not in pkg:
        raise ValueError(f"{path}: no 'best_state' entry (found {sorted(pkg)[:8]}); "
                         "not an exported audiocraft LM")
    state = pkg["best_state"]
    if "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    cfg = _read_cfg(pkg, path)
    state = {_unwrap_mha(k): v for k, v in state.items()}
    lm = LMModel(lm_config_from_audiocraft(state, cfg, str(path)))
    ours, extras = convert_audiocraft_state(state)
    load_lm_state(lm, ours, source=str(path))
    return lm, extras, cfg
