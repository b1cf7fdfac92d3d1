"""EnCodec latents: a tiny transformers EncodecModel saved to disk, loaded offline; the latents are
the ones transformers' own ``encode`` quantises (same codes)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import EncodecConfig, EncodecModel

from bench.embedders.encodec import EncodecEmbedder


@pytest.fixture(scope="module")
def tiny_codec(tmp_path_factory):
    torch.manual_seed(0)
    cfg = EncodecConfig(sampling_rate=32000, audio_channels=1, num_filters=4, upsampling_ratios=[8, 5, 4, 4],
                        hidden_size=16, codebook_size=32, codebook_dim=16, num_lstm_layers=1,
                        target_bandwidths=[2.2], normalize=False, chunk_length_s=None)
    model = EncodecModel(cfg).eval()
    folder = tmp_path_factory.mktemp("encodec")
    model.save_pretrained(folder)
    return model, folder


def test_latents_are_what_transformers_quantises(tiny_codec):
    model, folder = tiny_codec
    emb = EncodecEmbedder(EncodecEmbedder.Params(model=str(folder)))
    assert emb.check() == []
    emb.load()
    x = (0.2 * np.random.default_rng(0).standard_normal(6400)).astype(np.float32)
    lat = emb.embed(x)
    assert lat.shape == (10, 16)
    with torch.no_grad():
        codes = model.encode(torch.from_numpy(x)[None, None], bandwidth=2.2).audio_codes[0, 0]
        ours = model.quantizer.encode(torch.from_numpy(lat).T[None], bandwidth=2.2)[:, 0]
    torch.testing.assert_close(ours, codes)
    assert len(emb.digest()) == 64 and emb.protocol()["hop"] == 640


def test_errors(tiny_codec, tmp_path):
    model, _ = tiny_codec
    emb = EncodecEmbedder()
    emb.set_model(model)
    with pytest.raises(ValueError, match="shorter than the backbone's window of 640"):
        emb.embed(np.zeros(10, np.float32))
    assert "config.json" in EncodecEmbedder(EncodecEmbedder.Params(model=str(tmp_path))).check()[0]


def test_every_builtin_embedder_imports_and_names_itself():
    import importlib

    from bench.api import Embedder
    from bench.embedders import BUILTIN_EMBEDDERS

    for name, target in BUILTIN_EMBEDDERS.items():
        mod, attr = target.split(":")
        cls = getattr(importlib.import_module(mod), attr)
        assert issubclass(cls, Embedder) and cls.name == name and cls.dim > 0 and cls.sample_rate > 0
        assert all(isinstance(line, str) and line for line in cls().check())
