"""``Embedder.embed_batch``: several clips in one call give each clip's ``embed`` output."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.api import Embedder
from bench.embedders.common import embed_clips
from bench.embedders.vggish import VGGishEmbedder, VGGishNet, VGGishReluEmbedder


def _small_vggish() -> VGGishNet:
    torch.manual_seed(0)
    with torch.device("meta"):
        net = VGGishNet()
    net.features.to_empty(device="cpu")
    for m in net.features:
        if isinstance(m, torch.nn.Conv2d):
            m.reset_parameters()
    net.embeddings = torch.nn.Sequential(torch.nn.Linear(12288, 16), torch.nn.ReLU(),
                                         torch.nn.Linear(16, 128))
    return net.eval()


def _clips() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (16000, 40000, 16000 * 3 + 123)]


@pytest.mark.parametrize("cls", [VGGishEmbedder, VGGishReluEmbedder])
def test_vggish_batch_equals_one_clip_at_a_time(cls):
    e = cls(cls.Params(batch_size=3))  # batches that cross clip boundaries
    e.set_network(_small_vggish())
    clips = _clips()
    batched = e.embed_batch(clips)
    assert [b.shape for b in batched] == [(1, 128), (2, 128), (3, 128)]
    for clip, b in zip(clips, batched):
        np.testing.assert_allclose(b, e.embed(clip), atol=1e-5, rtol=0)


def test_vggish_batch_names_the_short_clip():
    e = VGGishReluEmbedder()
    e.set_network(_small_vggish())
    with pytest.raises(ValueError, match="vggish"):
        e.embed_batch([_clips()[0], np.zeros(100, np.float32)])


def test_embed_clips_uses_embed_batch_where_there_is_one():
    class Lengths(Embedder):
        name = "lengths"

        def load(self, device: str = "cpu") -> None:
            pass

        def embed(self, wav):
            return np.full((1, 1), len(wav), np.float32)

    class Batched(Lengths):
        def embed_batch(self, wavs):
            return [np.full((1, 1), -len(w), np.float32) for w in wavs]

    wavs = [np.zeros(3), np.zeros(5)]
    assert [o.item() for o in embed_clips(Lengths(), wavs)] == [3, 5]
    assert [o.item() for o in embed_clips(Batched(), wavs)] == [-3, -5]


def test_passt_batch_equals_one_clip_at_a_time(monkeypatch):
    from bench.embedders import passt

    monkeypatch.setattr(passt, "SEGMENT_BATCH", 2)  # full segments of different clips share calls
    torch.manual_seed(0)
    net = passt.PasstNet(passt.PasstConfig(embed_dim=32, depth=1, num_heads=2, mlp_dim=64, num_classes=10))
    e = passt.PasstEmbedder()
    e.set_network(net.eval())
    rng = np.random.default_rng(0)
    clips = [(0.1 * rng.standard_normal(int(32000 * s))).astype(np.float32) for s in (41.0, 20.0, 1.0, 20.5)]
    batched = e.embed_batch(clips)
    assert [b.shape for b in batched] == [(3, 10), (1, 10), (1, 10), (2, 10)]
    for clip, b in zip(clips, batched):
        np.testing.assert_allclose(b, e.embed(clip), atol=1e-5, rtol=0)


def test_clap_batch_equals_one_clip_at_a_time(monkeypatch):
    from transformers import ClapConfig, ClapModel

    from bench.embedders import clap

    monkeypatch.setattr(clap, "CLIP_BATCH", 2)
    torch.manual_seed(0)
    cfg = ClapConfig(audio_config={"patch_embeds_hidden_size": 8, "depths": [1, 1, 1, 1],
                                   "num_attention_heads": [1, 1, 2, 2], "hidden_size": 64},
                     text_config={"vocab_size": 16, "hidden_size": 16, "num_hidden_layers": 1,
                                  "num_attention_heads": 1, "intermediate_size": 16}, projection_dim=16)
    e = clap.ClapEmbedder()
    e.set_model(ClapModel(cfg))
    rng = np.random.default_rng(0)
    clips = [(0.1 * rng.standard_normal(int(48000 * s))).astype(np.float32) for s in (3.0, 10.0, 12.0)]
    batched = e.embed_batch(clips)
    assert [b.shape for b in batched] == [(1, 16)] * 3
    for clip, b in zip(clips, batched):
        np.testing.assert_allclose(b, e.embed(clip), atol=1e-5, rtol=0)


def test_encodec_batch_equals_one_clip_at_a_time(monkeypatch):
    from transformers import EncodecConfig, EncodecModel

    from bench.embedders import encodec

    monkeypatch.setattr(encodec, "CLIP_BATCH", 2)
    torch.manual_seed(0)
    model = EncodecModel(EncodecConfig(sampling_rate=32000, audio_channels=1, num_filters=4,
                                       upsampling_ratios=[4, 2], hidden_size=8, codebook_dim=8,
                                       num_lstm_layers=1, chunk_length_s=None))
    e = encodec.EncodecEmbedder()
    e.set_model(model)
    rng = np.random.default_rng(0)
    clips = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (800, 1600, 800, 800, 808)]
    batched = e.embed_batch(clips)
    assert [b.shape for b in batched] == [(100, 8), (200, 8), (100, 8), (100, 8), (101, 8)]
    for clip, b in zip(clips, batched):
        np.testing.assert_allclose(b, e.embed(clip), atol=1e-5, rtol=0)
