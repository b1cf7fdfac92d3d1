"""Random full-size weights written once, in each reference's published checkpoint layout, so our
loader and the reference read the same file.

- PaSST: a plain state dict with hear21passt's parameter names (the layout of
  ``passt-s-f128-20sec-p16-s10-ap.474-swa.pt``), which is what ``PasstNet`` holds: matrices scaled
  by fan-in, LayerNorm gains ``1 + 0.1 N(0, 1)``, biases and tokens ``0.02 N(0, 1)``.
- LAION CLAP: ``{"state_dict": {"module.<laion key>": ...}, "epoch": 0}`` as in the laion_clap
  checkpoints (e.g. ``630k-audioset-best.pt``), from a random ``ClapModel`` of the HTSAT-base +
  RoBERTa-base sizes renamed by ``transformers_to_laion`` (the inverse of
  ``bench.embedders.clap.laion_to_transformers``, fused ``qkv`` rebuilt). Keys the reference
  computes itself (its STFT and mel kernels, attention masks, position indices) are not written; its
  batch-norm statistics are set to log-mel-like values so the input is not left unnormalised.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from bench.embedders.clap import IGNORED_KEYS

AUDIO = "audio_model.audio_encoder."
#: transformers -> laion names inside the audio tower, in this order (".attention.output.dense."
#: before ".output.dense.", which is also the RoBERTa text tower's own name and is kept there)
_AUDIO_NAMES = ((".attention.output.dense.", ".attn.proj."), (".intermediate.dense.", ".mlp.fc1."),
                (".output.dense.", ".mlp.fc2."), (".layernorm_before.", ".norm1."),
                (".layernorm_after.", ".norm2."), (".batch_norm.", ".bn0."))
_PROJECTIONS = ((".linear1.", ".0."), (".linear2.", ".2."))
_QKV = re.compile(r"\.attention\.self\.(query|key|value)\.")


def _laion_key(key: str) -> str:
    if key.startswith(AUDIO):
        key = "audio_branch." + key[len(AUDIO):]
        for new, old in _AUDIO_NAMES:
            key = key.replace(new, old)
    elif key.startswith("text_model."):
        key = "text_branch." + key[len("text_model."):]
    elif key.startswith(("audio_projection.", "text_projection.")):
        for new, old in _PROJECTIONS:
            key = key.replace(new, old)
    return key


def transformers_to_laion(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A ``ClapModel`` state dict -> laion CLAP keys with the ``module.`` prefix; the audio tower's
    ``query``/``key``/``value`` are concatenated into ``qkv``; keys matching ``IGNORED_KEYS`` (what
    the reference computes or trains only) are left out."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if IGNORED_KEYS.search(key):
            continue
        if key.startswith(AUDIO) and _QKV.search(key):
            if ".attention.self.query." not in key:
                continue  # key and value join query's qkv below
            parts = [state[key.replace(".query.", f".{n}.")] for n in ("query", "key", "value")]
            fused = _laion_key(key).replace(".attention.self.query.", ".attn.qkv.")
            out["module." + fused] = torch.cat(parts, dim=0).clone()
            continue
        new = _laion_key(key)
        if new.startswith("audio_branch."):
            new = new.replace(".attention.self.", ".attn.")
        out["module." + new] = value.clone()
    return out


def _fill(module: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim > 1 and "pos_embed" not in name and "token" not in name:
                p.copy_(torch.randn(p.shape, generator=g) * p[0].numel() ** -0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
        for m in module.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.copy_(1.0 + 0.1 * torch.randn(m.weight.shape, generator=g))


def write_passt_weights(path: Path, seed: int = 0, config=None) -> Path:
    """A random PaSST (``passt_20sec`` sizes unless a ``PasstConfig`` is given) saved as a plain
    state dict with hear21passt's names."""
    from bench.embedders.passt import PasstConfig, PasstNet

    with torch.device("meta"):
        net = PasstNet(config or PasstConfig())
    net.to_empty(device="cpu")
    _fill(net, seed)
    torch.save(net.state_dict(), path)
    return path


def write_clap_weights(path: Path, model) -> Path:
    """``model`` (a ``ClapModel``) saved in the laion_clap checkpoint layout, with log-mel-like
    batch-norm statistics (mean -60..-20 dB, variance 50..200)."""
    g = torch.Generator().manual_seed(1)
    bn = model.audio_model.audio_encoder.batch_norm
    with torch.no_grad():
        bn.running_mean.copy_(-60 + 40 * torch.rand(bn.running_mean.shape, generator=g))
        bn.running_var.copy_(50 + 150 * torch.rand(bn.running_var.shape, generator=g))
    torch.save({"state_dict": transformers_to_laion(model.state_dict()), "epoch": 0}, path)
    return path
