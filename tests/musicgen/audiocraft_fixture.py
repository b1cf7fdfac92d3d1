"""Audiocraft-layout MusicGen folders built in tests from tiny transformers models (random weights):
``state_dict.bin`` (``best_state`` in audiocraft's key names, ``xp.cfg`` YAML), a released-style
``compression_state_dict.bin`` (``{"pretrained": <codec folder>}``) and the T5 encoder wherever the
test wants it (inside the folder, in a Hugging Face cache under some spelling, elsewhere)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from musicgen.testing import (
    tiny_text_tokenizer,
    tiny_transformers_musicgen,
    tiny_transformers_musicgen_melody,
)


def audiocraft_lm_state(model) -> dict[str, torch.Tensor]:
    """transformers MusicGen decoder weights in audiocraft's layout (fused q/k/v, audiocraft names)."""
    dec = model.decoder.model.decoder
    out = {f"emb.{k}.weight": e.weight for k, e in enumerate(dec.embed_tokens)}
    out.update({f"linears.{k}.weight": h.weight for k, h in enumerate(model.decoder.lm_heads)})
    out["out_norm.weight"], out["out_norm.bias"] = dec.layer_norm.weight, dec.layer_norm.bias
    for i, layer in enumerate(dec.layers):
        p = f"transformer.layers.{i}."
        attns = [("self_attn", layer.self_attn)]
        if hasattr(layer, "encoder_attn"):  # MusicGen-Melody has no cross-attention
            attns.append(("cross_attention", layer.encoder_attn))
        for name, attn in attns:
            out[p + name + ".in_proj_weight"] = torch.cat([attn.q_proj.weight, attn.k_proj.weight,
                                                           attn.v_proj.weight])
            out[p + name + ".out_proj.weight"] = attn.out_proj.weight
        norms = [("norm1", layer.self_attn_layer_norm), ("norm2", layer.final_layer_norm)]
        if hasattr(layer, "encoder_attn_layer_norm"):
            norms.append(("norm_cross", layer.encoder_attn_layer_norm))
        for name, norm in norms:
            out[p + name + ".weight"], out[p + name + ".bias"] = norm.weight, norm.bias
        out[p + "linear1.weight"], out[p + "linear2.weight"] = layer.fc1.weight, layer.fc2.weight
    proj = "condition_provider.conditioners.description.output_proj."
    out[proj + "weight"], out[proj + "bias"] = model.enc_to_dec_proj.weight, model.enc_to_dec_proj.bias
    if hasattr(model, "audio_enc_to_dec_proj"):
        wav = "condition_provider.conditioners.self_wav.output_proj."
        out[wav + "weight"] = model.audio_enc_to_dec_proj.weight
        out[wav + "bias"] = model.audio_enc_to_dec_proj.bias
    return {k: v.detach().clone() for k, v in out.items()}


def save_t5(model, dest: Path) -> Path:
    """The tiny transformers MusicGen's T5 encoder + tokenizer as a ``save_pretrained`` folder."""
    model.text_encoder.save_pretrained(str(dest))
    tiny_text_tokenizer().save_pretrained(str(dest))
    return dest


def cache_snapshot(cache: Path, repo_id: str) -> Path:
    """An empty snapshot folder of ``repo_id`` in Hugging Face cache ``cache`` (``refs/main`` set)."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text("0123abcd")
    snap = repo / "snapshots" / "0123abcd"
    snap.mkdir(parents=True, exist_ok=True)
    return snap


def write_audiocraft_folder(model, hf_folder: Path, dest: Path,
                            xp_cfg: str = "transformer_lm:\n  num_heads: 4\n", t5: bool = True) -> Path:
    """``dest`` as an audiocraft MusicGen folder of the tiny transformers ``model`` saved in
    ``hf_folder``; with ``t5`` its encoder goes to ``dest/t5``."""
    dest.mkdir(parents=True, exist_ok=True)
    torch.save({"best_state": audiocraft_lm_state(model), "xp.cfg": xp_cfg}, dest / "state_dict.bin")
    torch.save({"pretrained": str(hf_folder)}, dest / "compression_state_dict.bin")
    if t5:
        save_t5(model, dest / "t5")
    return dest


@pytest.fixture(scope="module")
def hf_model(tmp_path_factory):
    """``(model, folder)``: a tiny transformers MusicGen saved in ``folder`` (no tokenizer there)."""
    folder = tmp_path_factory.mktemp("hf_musicgen")
    return tiny_transformers_musicgen(folder, seed=1), folder


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache at ``tmp_path / "hub"`` (``HF_HUB_CACHE``)."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    (tmp_path / "hub").mkdir()
    return tmp_path / "hub"


@pytest.fixture(scope="module")
def hf_melody(tmp_path_factory):
    """``(model, folder)``: a tiny transformers MusicGen-Melody saved with its tokenizer in ``folder``."""
    folder = tmp_path_factory.mktemp("hf_melody")
    model = tiny_transformers_musicgen_melody(folder, seed=0)
    tiny_text_tokenizer().save_pretrained(str(folder))
    return model, folder
