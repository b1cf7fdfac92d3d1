"""float32 front ends (the default) against the same front ends in float64, on music-like clips: the
backbone outputs ``embed`` returns stay within 1e-5 (absolute) of what the float64 log mel gives."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.embedders.passt import PasstConfig, PasstEmbedder, PasstNet, passt_log_mel
from bench.embedders.vggish import VGGishNet, VGGishReluEmbedder, vggish_examples

TOL = 1e-5


def _music(seconds: float, sample_rate: int, peak: float, noise: bool, seed: int = 0) -> np.ndarray:
    """Notes of 5 partials (a new one every 0.5 s, decaying), optional noise 30 dB down, peak ``peak``."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    out = np.zeros_like(t)
    for start in np.arange(0.0, seconds, 0.5):
        f0 = rng.choice([196.0, 220.0, 261.6, 329.6, 392.0, 440.0])
        tt = t - start
        env = np.where(tt >= 0, np.minimum(tt / 0.01, 1.0) * np.exp(-3.0 * np.maximum(tt, 0)), 0.0)
        out += env * sum(np.sin(2 * np.pi * k * f0 * tt) / k for k in range(1, 6))
    if noise:
        out += rng.standard_normal(t.size) * np.sqrt(np.mean(out**2)) * 10 ** (-30 / 20)
    return (peak * out / np.abs(out).max()).astype(np.float32)


KINDS = [(0.9, True), (0.003, True), (0.3, False)]  # loud, quiet (-50 dBFS), clean tones


@pytest.mark.parametrize("peak,noise", KINDS)
def test_vggish_float32_front_end_matches_float64(peak, noise):
    torch.manual_seed(0)
    net = VGGishNet()
    net.embeddings = torch.nn.Sequential(torch.nn.Linear(12288, 64), torch.nn.ReLU(),
                                         torch.nn.Linear(64, 128))
    e = VGGishReluEmbedder()
    e.set_network(net.eval())
    x = _music(2.0, 16000, peak, noise)
    mel64 = vggish_examples(x, torch.float64)
    assert vggish_examples(x).dtype == mel64.dtype == torch.float32  # the arithmetic's dtype differs
    assert (vggish_examples(x) - mel64).abs().max() < 1e-3
    with torch.no_grad():
        expected = torch.relu(net(mel64)).numpy()
    np.testing.assert_allclose(e.embed(x), expected, atol=TOL, rtol=0)


@pytest.mark.parametrize("peak,noise", KINDS)
def test_passt_float32_front_end_matches_float64(peak, noise):
    torch.manual_seed(0)
    net = PasstNet(PasstConfig(embed_dim=64, depth=2, num_heads=2, mlp_dim=128, num_classes=16)).eval()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "pos_embed" in name or "token" in name:
                p.normal_(0, 0.5)
    e = PasstEmbedder()
    e.set_network(net)
    x = _music(2.0, 32000, peak, noise)
    mel64 = passt_log_mel(torch.from_numpy(x)[None], torch.float64)
    assert (passt_log_mel(torch.from_numpy(x)[None]) - mel64).abs().max() < 1e-4
    with torch.no_grad():
        expected = net(mel64[:, None]).numpy()
    np.testing.assert_allclose(e.embed(x), expected, atol=TOL, rtol=0)


@pytest.mark.parametrize("peak,noise", KINDS)
def test_clap_float32_front_end_matches_float64(peak, noise):
    from transformers import ClapConfig, ClapModel

    from bench.embedders.clap import ClapEmbedder, clap_input_wav, clap_log_mel

    torch.manual_seed(0)
    cfg = ClapConfig(audio_config={"patch_embeds_hidden_size": 8, "depths": [1, 1, 1, 1],
                                   "num_attention_heads": [1, 1, 2, 2], "hidden_size": 64},
                     text_config={"vocab_size": 16, "hidden_size": 16, "num_hidden_layers": 1,
                                  "num_attention_heads": 1, "intermediate_size": 16}, projection_dim=32)
    model = ClapModel(cfg).eval()
    with torch.no_grad():  # a trained-like input normalisation (log mel around -40 dB, std 20 dB)
        model.audio_model.audio_encoder.batch_norm.running_mean.fill_(-40.0)
        model.audio_model.audio_encoder.batch_norm.running_var.fill_(400.0)
    e = ClapEmbedder()
    e.set_model(model)
    x = _music(3.0, 48000, peak, noise)
    mel64 = clap_log_mel(clap_input_wav(x), torch.float64)
    # dB of bands near the float32 FFT's noise floor (clean tones: > 100 dB below the peak) move most
    assert (clap_log_mel(clap_input_wav(x)) - mel64).abs().max() < (1e-3 if noise else 0.1)
    with torch.no_grad():
        expected = model.get_audio_features(input_features=mel64[None, None]).pooler_output.numpy()
    np.testing.assert_allclose(e.embed(x), expected, atol=TOL, rtol=0)


def test_batched_clap_front_end_equals_one_clip_at_a_time():
    from bench.embedders.clap import clap_input_wav, clap_log_mel

    clips = np.stack([clap_input_wav(_music(s, 48000, 0.5, True, seed=s)) for s in (2, 4)])
    batched = clap_log_mel(clips)
    assert batched.shape == (2, 1001, 64)
    for clip, mel in zip(clips, batched):
        torch.testing.assert_close(mel, clap_log_mel(clip), atol=1e-5, rtol=0)
