"""Weights files the benchmark writes in the references' layouts: our loaders read them back to the
same networks (tiny sizes here), the laion renaming is the exact inverse of the loader's, and a row
whose reference venv could not be built says why."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from transformers import ClapConfig, ClapModel

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import metrics_reference  # noqa: E402
from reference_envs import ReferenceEnvError  # noqa: E402
from reference_weights import transformers_to_laion, write_clap_weights, write_passt_weights  # noqa: E402

from bench.embedders.clap import (
    IGNORED_KEYS,
    ClapEmbedder,
    clap_input_wav,
    clap_log_mel,
    laion_to_transformers,
)
from bench.embedders.passt import PasstConfig, PasstEmbedder, PasstNet, passt_log_mel

TINY_PASST = PasstConfig(embed_dim=32, depth=2, num_heads=2, mlp_dim=64, num_classes=10)


def _tiny_clap() -> ClapModel:
    torch.manual_seed(0)
    cfg = ClapConfig(audio_config={"patch_embeds_hidden_size": 8, "depths": [1, 1, 1, 1],
                                   "num_attention_heads": [1, 1, 2, 2], "hidden_size": 64},
                     text_config={"vocab_size": 300, "hidden_size": 64, "num_hidden_layers": 1,
                                  "num_attention_heads": 1, "intermediate_size": 32,
                                  "max_position_embeddings": 80, "layer_norm_eps": 1e-5},
                     projection_dim=16)
    return ClapModel(cfg).eval()


def test_laion_renaming_inverts_the_loaders():
    state = _tiny_clap().state_dict()
    laion = transformers_to_laion(state)
    assert all(k.startswith("module.") for k in laion)
    qkv = laion["module.audio_branch.layers.0.blocks.0.attn.qkv.weight"]
    prefix = "audio_model.audio_encoder.layers.0.blocks.0.attention.self."
    fused = torch.cat([state[prefix + n + ".weight"] for n in ("query", "key", "value")])
    torch.testing.assert_close(qkv, fused)
    # RoBERTa keeps its names
    assert "module.text_branch.encoder.layer.0.attention.output.dense.weight" in laion
    assert "module.audio_branch.bn0.running_var" in laion and "module.audio_projection.2.bias" in laion
    back = laion_to_transformers(laion)
    kept = {k for k in state if not IGNORED_KEYS.search(k)}
    assert set(back) == kept
    for k in kept:
        torch.testing.assert_close(back[k], state[k], rtol=0, atol=0)


def test_clap_file_loads_into_our_embedder(tmp_path):
    model = _tiny_clap()
    path = write_clap_weights(tmp_path / "clap.pt", model)
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"state_dict", "epoch"}
    bn = raw["state_dict"]["module.audio_branch.bn0.running_mean"]
    assert (bn < -20).all() and (bn > -60).all()
    emb = ClapEmbedder(ClapEmbedder.Params(checkpoint=str(path)))
    emb.load()
    x = (0.1 * np.random.default_rng(0).standard_normal(48000 * 2)).astype(np.float32)
    with torch.no_grad():
        mel = clap_log_mel(clap_input_wav(x))[None, None]
        expected = model.get_audio_features(input_features=mel).pooler_output.numpy()
    np.testing.assert_allclose(emb.embed(x), expected, atol=1e-5)


def test_passt_file_is_a_plain_state_dict_our_loader_reads(tmp_path):
    path = write_passt_weights(tmp_path / "passt.pt", seed=3, config=TINY_PASST)
    state = torch.load(path, weights_only=True)
    assert set(state) == set(PasstNet(TINY_PASST).state_dict())
    assert abs(float(state["norm.weight"].mean()) - 1.0) < 0.1  # LayerNorm gains near 1, not near 0
    emb = PasstEmbedder(PasstEmbedder.Params(checkpoint=str(path), num_heads=2))
    emb.load()
    net = PasstNet(TINY_PASST).eval()
    net.load_state_dict(state)
    x = (0.1 * np.random.default_rng(1).standard_normal(32000)).astype(np.float32)
    with torch.no_grad():
        expected = net(passt_log_mel(torch.from_numpy(x)[None])[:, None]).numpy()
    np.testing.assert_allclose(emb.embed(x), expected, atol=1e-5)


def test_timed_outputs_report_their_own_clock():
    times: list[float] = []
    assert metrics_reference._best(lambda: metrics_reference.Timed("out", 0.25), 2, times) == "out"
    assert times == [0.25, 0.25]
    t_o, t_r, a, b = metrics_reference._alternate(lambda: 1, lambda: metrics_reference.Timed(2, 7.0), 3)
    assert (t_r, a, b) == (7.0, 1, 2) and 0 <= t_o < 1


def _tiny_passt_embedder(name: str, folder: Path):
    path = write_passt_weights(folder / "passt.pt", config=TINY_PASST)
    emb = PasstEmbedder(PasstEmbedder.Params(checkpoint=str(path), num_heads=2))
    emb.load()
    return emb, path


def test_row_without_its_venv_says_why(monkeypatch, capsys):
    monkeypatch.setattr(metrics_reference, "_ours_from_file", _tiny_passt_embedder)
    why = ReferenceEnvError("hear21passt: pip could not install torchaudio==2.9.1 (asked for ...): no match")
    row = metrics_reference.venv_row("passt", why, clips=2, clip_s=0.5, repeats=1)
    assert row["ref"] is None and row["diff"] is None and row["ours"] > 0
    assert row["reference"] == f"hear21passt: NOT RUN: {why}"
    metrics_reference._print_row(row)
    out = capsys.readouterr().out
    assert out.startswith("| PaSST | hear21passt: NOT RUN: hear21passt: pip could not install "
                          "torchaudio==2.9.1")
    assert out.rstrip().endswith("| - | - | - |")


def test_row_with_a_missing_interpreter_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(metrics_reference, "_ours_from_file", _tiny_passt_embedder)
    python = tmp_path / "bin" / "python"
    row = metrics_reference.venv_row("passt", python, clips=1, clip_s=0.5, repeats=1)
    assert row["ref"] is None
    assert f"hear21passt: NOT RUN: passt: no Python interpreter at {python}" in row["reference"]
