"""Load the LM of a transformers MusicGen / MusicGen-Melody directory into :class:`LMModel`.

A ``MusicgenForConditionalGeneration`` directory holds ``config.json`` (sub-configs ``text_encoder``,
``audio_encoder``, ``decoder``) and ``model.safetensors`` (or shards with
``model.safetensors.index.json``). Decoder keys live under ``decoder.model.decoder.`` (``embed_tokens.k``,
``layers.i.{self_attn,encoder_attn}.{q,k,v,out}_proj``, ``self_attn_layer_norm``,
``encoder_attn_layer_norm``, ``final_layer_norm``, ``fc1``, ``fc2``, ``layer_norm``) and
``decoder.lm_heads.k``; the text condition projection is ``enc_to_dec_proj`` (absent when the text
encoder already has the decoder's width).

MusicGen-Melody (``model_type`` ``musicgen_melody``) has no cross-attention: its text and chroma
projections (``enc_to_dec_proj``, ``audio_enc_to_dec_proj``) feed the prefix, so they are returned in
``extras`` for the pipeline rather than placed in the LM.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch

from musicgen.checkpoints.files import (
    load_state_dict,
    load_state_strict,
    read_json,
    require_file,
    resolve_local,
)
from musicgen.models.lm import LMConfig, LMModel

_LAYER_RENAMES = {
    "self_attn_layer_norm": "norm1",
    "encoder_attn_layer_norm": "norm_cross",
    "final_layer_norm": "norm2",
    "encoder_attn": "cross_attn",
    "fc1": "linear1",
    "fc2": "linear2",
}
_ACTIVATIONS = {"gelu": "gelu", "relu": "relu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh"}


def _weights_file(folder: Path) -> Path:
    for name in ("model.safetensors", "model.safetensors.index.json"):
        if (folder / name).is_file():
            return folder / name
    return require_file(folder, "model.safetensors",
                        "A transformers MusicGen directory holds config.json and model.safetensors "
                        "(save_pretrained, or `huggingface-cli download facebook/musicgen-small`).")


def lm_config_from_transformers(config: dict) -> LMConfig:
    """:class:`LMConfig` from a transformers MusicGen(-Melody) ``config.json`` dict."""
    if "decoder" not in config:
        raise ValueError("config.json has no 'decoder' sub-config: not a transformers MusicGen directory "
                         f"(model_type={config.get('model_type')!r})")
    dec = config["decoder"]
    melody = config.get("model_type") == "musicgen_melody"
    act = dec.get("activation_function", "gelu")
    if act not in _ACTIVATIONS:
        raise ValueError(f"config.json decoder.activation_function={act!r} is not supported; "
                         f"expected one of {sorted(_ACTIVATIONS)}")
    text_cfg = config.get("text_encoder", {})
    text_dim = text_cfg.get("d_model") or text_cfg.get("hidden_size")
    has_proj = (not melody and text_dim is not None and text_dim != dec["hidden_size"]
                and dec.get("cross_attention_hidden_size") is None)
    dim = dec["hidden_size"]
    return LMConfig(
        dim=dim, num_heads=dec["num_attention_heads"], num_layers=dec["num_hidden_layers"],
        card=dec["vocab_size"], num_codebooks=dec["num_codebooks"], ffn_dim=dec["ffn_dim"],
        activation=_ACTIVATIONS[act], cross_attention=not melody, cond_dim=text_dim if has_proj else None,
        max_positions=max(int(dec.get("max_position_embeddings", 2048)), 2048),
        embed_scale=dim ** 0.5 if dec.get("scale_embedding") else 1.0)


def _rename(key: str) -> str | None:
    if key.startswith("decoder.lm_heads."):
        return "linears." + key[len("decoder.lm_heads."):]
    if key.startswith("enc_to_dec_proj."):
        return "condition_proj." + key[len("enc_to_dec_proj."):]
    prefix = "decoder.model.decoder."
    if not key.startswith(prefix):
        return None
    key = key[len(prefix):]
    if key.startswith("embed_tokens."):
        return "emb." + key[len("embed_tokens."):]
    if key.startswith("layer_norm."):
        return "out_norm." + key[len("layer_norm."):]
    m = re.match(r"layers\.(\d+)\.([a-z_0-9]+)\.(.*)", key)
    if m:
        i, part, rest = m.groups()
        return f"transformer.layers.{i}.{_LAYER_RENAMES.get(part, part)}.{rest}"
    return key


def load_transformers_lm(path_or_id: str | Path) -> tuple[LMModel, dict[str, torch.Tensor]]:
    """``(lm, extras)`` from a transformers MusicGen(-Melody) directory.

    ``extras`` holds the tensors that are neither the text/audio encoders nor the LM (for Melody:
    ``enc_to_dec_proj.*`` and ``audio_enc_to_dec_proj.*``).
    """
    folder = resolve_local(path_or_id)
    config = read_json(require_file(folder, "config.json", "It comes with the transformers checkpoint."))
    lm_config = lm_config_from_transformers(config)  # config errors before reading the weights
    return lm_from_transformers_state(config, load_state_dict(_weights_file(folder)), str(folder), lm_config)


def lm_from_transformers_state(config: dict, raw: Mapping[str, torch.Tensor], source: str = "state dict",
                               lm_config: LMConfig | None = None) -> tuple[LMModel, dict[str, torch.Tensor]]:
    """``(lm, extras)`` from an in-memory transformers config dict and state dict (see the loader)."""
    lm = LMModel(lm_config or lm_config_from_transformers(config))
    melody = config.get("model_type") == "musicgen_melody"
    state: dict[str, torch.Tensor] = {}
    extras: dict[str, torch.Tensor] = {}
    for key, value in raw.items():
        if key.startswith(("text_encoder.", "audio_encoder.")):
            continue
        if melody and key.startswith(("enc_to_dec_proj.", "audio_enc_to_dec_proj.")):
            extras[key] = value
            continue
        new = _rename(key)
        if new is None:
            extras[key] = value
        else:
            state[new] = value
    load_lm_state(lm, state, source=source)
    return lm, extras


def load_lm_state(lm: LMModel, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy ``state`` (our key names) into ``lm`` strictly (:func:`load_state_strict`), then eval mode."""
    load_state_strict(lm, state, source, "the LM weights")
    lm.eval()
