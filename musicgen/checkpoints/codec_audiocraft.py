"""Load audiocraft's ``compression_state_dict.bin``.

The file is a torch pickle (read with ``weights_only=True``) holding either
``{"best_state": state_dict, "xp.cfg": YAML text, ...}`` (a trained EnCodec) or
``{"pretrained": "facebook/encodec_32khz"}`` (what released MusicGen folders hold), which we resolve
as a transformers EncodecModel in the local Hugging Face cache.

Key mapping (audiocraft -> ours): ``{encoder,decoder}.model.N.conv.conv.X`` -> ``....layers.N.conv.X``,
``...block.M.conv.conv.X`` -> ``...block.M.conv.X``, ``shortcut.conv.conv.X`` -> ``shortcut.conv.X``,
``decoder.model.N.convtr.convtr.X`` -> ``decoder.layers.N.conv.X``, ``model.N.lstm.*`` ->
``layers.N.lstm.*``, ``quantizer.vq.layers.N._codebook.X`` -> ``quantizer.layers.N.codebook.X``.
Weight normalisation is stored as ``weight_g``/``weight_v`` as ours. The hyper-parameters come from
``xp.cfg`` (``sample_rate``, ``channels``, ``seanet.*``, ``rvq.*``); where it is absent the
MusicGen 32 kHz defaults apply.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
import yaml

from musicgen.checkpoints.codec_transformers import read_transformers_codec
from musicgen.checkpoints.files import load_state_dict, resolve_local
from musicgen.models.codec_config import CodecConfig, CodecParts

_RENAMES = [
    (re.compile(r"^(encoder|decoder)\.model\.(\d+)\."), r"\1.layers.\2."),
    (re.compile(r"\.conv\.conv\."), ".conv."),
    (re.compile(r"\.convtr\.convtr\."), ".conv."),
    (re.compile(r"^quantizer\.vq\.layers\.(\d+)\._codebook\."), r"quantizer.layers.\1.codebook."),
]


def convert_audiocraft_codec_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """audiocraft ``EncodecModel`` state-dict keys -> ours."""
    out = {}
    for key, value in state.items():
        for pattern, repl in _RENAMES:
            key = pattern.sub(repl, key)
        out[key] = value
    return out


_INTERPOLATION = re.compile(r"^\$\{([\w.]+)\}$")


def resolve_interpolations(cfg: Any, root: Any | None = None, source: str = "xp.cfg", depth: int = 0) -> Any:
    """Replace OmegaConf references such as ``"${encodec.causal}"`` by the values they point to.

    ``xp.cfg`` is saved with ``OmegaConf.to_yaml`` (unresolved), so values like ``seanet.causal``
    are references into the same config. Only whole-value ``${a.b.c}`` references are supported.
    """
    root = cfg if root is None else root
    if depth > 20:
        raise ValueError(f"{source}: interpolation cycle")
    if isinstance(cfg, dict):
        return {k: resolve_interpolations(v, root, source, depth) for k, v in cfg.items()}
    if isinstance(cfg, list):
        return [resolve_interpolations(v, root, source, depth) for v in cfg]
    if isinstance(cfg, str) and (m := _INTERPOLATION.match(cfg)):
        node = root
        for part in m.group(1).split("."):
            if not isinstance(node, dict) or part not in node:
                raise ValueError(f"{source}: {cfg} points to nothing")
            node = node[part]
        return resolve_interpolations(node, root, source, depth + 1)
    return cfg


def codec_config_from_audiocraft(cfg: dict[str, Any], source: str) -> CodecConfig:
    """Our ``CodecConfig`` from audiocraft's experiment config (the parsed ``xp.cfg``)."""
    cfg = resolve_interpolations(cfg, source=source)
    c = CodecConfig()
    seanet = dict(cfg.get("seanet") or {})
    # encoder/decoder sub-sections override the shared seanet section in audiocraft
    seanet.update({k: v for k, v in (seanet.pop("encoder", None) or {}).items()})
    decoder = seanet.pop("decoder", None) or {}
    rvq = cfg.get("rvq") or {}
    encodec = cfg.get("encodec") or {}
    if encodec.get("renormalize", False):
        raise NotImplementedError(f"{source}: encodec.renormalize=true is not supported")
    if seanet.get("norm", "weight_norm") != "weight_norm":
        raise NotImplementedError(f"{source}: seanet.norm={seanet['norm']!r} is not supported")
    if seanet.get("disable_norm_outer_blocks", 0):
        raise NotImplementedError(f"{source}: seanet.disable_norm_outer_blocks is not supported")
    if rvq.get("dimension") not in (None, seanet.get("dimension", c.dimension)):
        raise NotImplementedError(f"{source}: rvq.dimension differs from seanet.dimension (projections)")
    return CodecConfig(
        sample_rate=int(cfg.get("sample_rate", c.sample_rate)),
        channels=int(cfg.get("channels", c.channels)),
        dimension=seanet.get("dimension", c.dimension),
        n_filters=seanet.get("n_filters", c.n_filters),
        ratios=list(seanet.get("ratios", c.ratios)),
        residual_layers=seanet.get("n_residual_layers", c.residual_layers),
        kernel_size=seanet.get("kernel_size", c.kernel_size),
        last_kernel_size=seanet.get("last_kernel_size", c.last_kernel_size),
        residual_kernel_size=seanet.get("residual_kernel_size", c.residual_kernel_size),
        dilation_base=seanet.get("dilation_base", c.dilation_base),
        compress=seanet.get("compress", c.compress),
        lstm_layers=seanet.get("lstm", c.lstm_layers),
        causal=seanet.get("causal", c.causal),
        pad_mode=seanet.get("pad_mode", c.pad_mode),
        true_skip=seanet.get("true_skip", c.true_skip),
        trim_right_ratio=decoder.get("trim_right_ratio", seanet.get("trim_right_ratio", c.trim_right_ratio)),
        codebook_size=rvq.get("bins", c.codebook_size),
        num_codebooks=rvq.get("n_q", c.num_codebooks),
        decay=rvq.get("decay", c.decay),
        kmeans_init=rvq.get("kmeans_init", c.kmeans_init),
        kmeans_iters=rvq.get("kmeans_iters", c.kmeans_iters),
        threshold_ema_dead_code=rvq.get("threshold_ema_dead_code", c.threshold_ema_dead_code),
        q_dropout=rvq.get("q_dropout", c.q_dropout),
    )


def read_audiocraft_codec(path: Path) -> CodecParts:
    """The config and weights (our key names) of ``compression_state_dict.bin``."""
    path = Path(path)
    pkg = load_state_dict(path)
    if not isinstance(pkg, dict):
        raise ValueError(
            f"{path}: expected a dict with 'best_state' or 'pretrained', got {type(pkg).__name__}"
        )
    if "pretrained" in pkg:
        name = str(pkg["pretrained"]).removeprefix("//pretrained/")
        return read_transformers_codec(resolve_local(name))
    if "best_state" not in pkg:
        raise ValueError(f"{path}: no 'best_state' (nor 'pretrained') entry; keys are {sorted(pkg)}")
    state = pkg["best_state"]
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # a training checkpoint rather than an exported one
    raw_cfg = pkg.get("xp.cfg")
    cfg = yaml.safe_load(raw_cfg) if isinstance(raw_cfg, str) else (raw_cfg or {})
    return CodecParts(codec_config_from_audiocraft(cfg, str(path)), convert_audiocraft_codec_state(state),
                      str(path))
