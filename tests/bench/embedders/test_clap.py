"""LAION CLAP: front end vs transformers' ClapFeatureExtractor, laion-layout loading into ClapModel
(random tiny weights written in the laion layout by an inverse renaming written here), text tower
through a tiny RoBERTa-style tokenizer built offline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, RobertaTokenizer

from bench.embedders.clap import ClapEmbedder, clap_input_wav, clap_log_mel, clap_mel_filters
from tests.bench.embedders.numpy_pickles import pickled_globals, save_naming_numpy_module


def _bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), 256))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])}
    for ch in _bytes_to_unicode():
        vocab.setdefault(ch, len(vocab))
    merges = [("Ġ", "p"), ("i", "a"), ("p", "ia"), ("Ġp", "ia")]
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    tok = RobertaTokenizer(vocab=vocab, merges=merges)
    folder = tmp_path_factory.mktemp("roberta_tiny")
    tok.save_pretrained(folder)
    return folder, len(vocab)


def _tiny_model(vocab_size, seed=0):
    torch.manual_seed(seed)
    cfg = ClapConfig(audio_config={"patch_embeds_hidden_size": 8, "depths": [1, 1, 1, 1],
                                   "num_attention_heads": [1, 1, 2, 2], "hidden_size": 64},
                     text_config={"vocab_size": vocab_size, "hidden_size": 64, "num_hidden_layers": 1,
                                  "num_attention_heads": 1, "intermediate_size": 32,
                                  "max_position_embeddings": 80, "layer_norm_eps": 1e-5},
                     projection_dim=16)
    model = ClapModel(cfg).eval()
    with torch.no_grad():  # non-trivial batch-norm statistics
        bn = model.audio_model.audio_encoder.batch_norm
        bn.running_mean.uniform_(-60, -20)
        bn.running_var.uniform_(50, 200)
    return model


def _to_laion(model: ClapModel) -> dict:
    """Inverse of the documented renames, written key by key; plus keys only the original has."""
    out = {}
    sd = model.state_dict()
    for k, v in sd.items():
        orig = k
        if "relative_position_index" in k or k.endswith(("token_type_ids",)):
            continue
        k = k.replace("audio_model.audio_encoder.", "audio_branch.").replace("text_model.", "text_branch.")
        k = k.replace("_projection.linear1.", "_projection.0.")
        k = k.replace("_projection.linear2.", "_projection.2.")
        if k.startswith("audio_branch."):
            for new, old in ((".layernorm_before.", ".norm1."), (".layernorm_after.", ".norm2."),
                             (".attention.output.dense.", ".attn.proj."),
                             (".intermediate.dense.", ".mlp.fc1."),
                             (".output.dense.", ".mlp.fc2."), (".batch_norm.", ".bn0.")):
                k = k.replace(new, old)
            if ".attention.self.query." in k:
                base = k.replace(".attention.self.query.", ".attn.qkv.")
                names = (orig, orig.replace(".query.", ".key."), orig.replace(".query.", ".value."))
                out["module." + base] = torch.cat([sd[n] for n in names])
                continue
            if ".attention.self.key." in k or ".attention.self.value." in k:
                continue
            k = k.replace(".attention.self.", ".attn.")
        out["module." + k] = v.clone()
    out["module.audio_branch.logmel_extractor.melW"] = clap_mel_filters().T.float()
    out["module.audio_branch.spectrogram_extractor.stft.conv_real.weight"] = torch.zeros(513, 1, 1024)
    out["module.audio_branch.tscam_conv.weight"] = torch.zeros(527, 64, 2, 3)
    out["module.audio_branch.layers.0.blocks.0.attn_mask"] = torch.zeros(4, 64, 64)
    out["module.text_transform.sequential.0.weight"] = torch.zeros(16, 16)
    return out


def _save_laion(path, state, numpy_module="numpy.core.multiarray"):
    """The laion file as released: saved under numpy 1.x, so its scalars name ``numpy.core``."""
    save_naming_numpy_module({"epoch": np.int64(15), "state_dict": state,
                              "optimizer": {"lr": np.float64(1e-4)}}, path, numpy_module)


def _hf_features(x):
    fe = ClapFeatureExtractor(frequency_min=50, truncation="rand_trunc", padding="repeatpad")
    return fe(x, sampling_rate=48000, return_tensors="pt")["input_features"]


def _audio(seconds, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(48000 * seconds)) / 48000
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.mark.parametrize("seconds", [3.3, 10.0])
def test_front_end_matches_clap_feature_extractor(seconds):
    x = _audio(seconds)
    ours = clap_log_mel(clap_input_wav(x)).numpy()
    ref = _hf_features(x)[0, 0].numpy()
    assert ours.shape == ref.shape == (1001, 64)
    np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=1e-5)


def test_crop_is_deterministic_and_recorded():
    x = _audio(12.0)
    np.testing.assert_array_equal(clap_input_wav(x), x[48000:48000 + 480000])
    np.testing.assert_array_equal(clap_input_wav(x, "start"), x[:480000])
    short = _audio(0.3)
    rep = clap_input_wav(short)
    assert rep.shape == (480000,) and np.all(rep[33 * 14400:] == 0)  # 33 repeats, then zeros
    np.testing.assert_array_equal(rep[14400:28800], short)
    with pytest.raises(ValueError, match="empty"):
        clap_input_wav(np.zeros(0))


def test_laion_checkpoint_loads_into_clap_model(tmp_path, tokenizer_dir):
    folder, vocab_size = tokenizer_dir
    model = _tiny_model(vocab_size)
    path = tmp_path / "clap.pt"
    _save_laion(path, _to_laion(model))
    assert "numpy.core.multiarray.scalar" in pickled_globals(path)
    emb = ClapEmbedder(ClapEmbedder.Params(checkpoint=str(path), tokenizer=str(folder)))
    assert emb.check() == []
    emb.load()
    x = _audio(4.0)
    with torch.no_grad():
        ref_audio = model.get_audio_features(input_features=_hf_features(x)).pooler_output.numpy()
    ours = emb.embed(x)
    assert ours.shape == (1, 16)
    np.testing.assert_allclose(ours, ref_audio, atol=1e-4)
    texts = ["pia pia", "a calm piano"]
    tok = RobertaTokenizer.from_pretrained(folder)(texts, padding="max_length", max_length=77,
                                                     truncation=True, return_tensors="pt")
    with torch.no_grad():
        ref_text = model.get_text_features(input_ids=tok["input_ids"],
                                           attention_mask=tok["attention_mask"]).pooler_output.numpy()
    np.testing.assert_allclose(emb.embed_text(texts), ref_text, atol=1e-4)
    assert len(emb.digest()) == 64 and emb.protocol()["checkpoint_digest"] == emb.digest()
    assert "center crop" in emb.protocol()["longer"]


def test_bad_checkpoints_are_refused(tmp_path, tokenizer_dir):
    folder, vocab_size = tokenizer_dir
    state = _to_laion(_tiny_model(vocab_size))
    cases = {"missing": {k: v for k, v in state.items() if "audio_projection.0.weight" not in k},
             "unexpected": {**state, "module.audio_branch.extra_layer.weight": torch.zeros(2)},
             "mel": {**state, "module.audio_branch.logmel_extractor.melW": torch.ones(513, 64)}}
    for name, bad in cases.items():
        path = tmp_path / f"{name}.pt"
        _save_laion(path, bad)
        with pytest.raises(ValueError, match="missing \\[|mel filters"):
            ClapEmbedder(ClapEmbedder.Params(checkpoint=str(path))).load()
    assert "clap.pt" in ClapEmbedder(ClapEmbedder.Params(checkpoint=str(tmp_path / "clap.pt"))).check()[0]
