"""PaSST: parity with an independent re-computation (numpy front end with loop-built Kaldi banks,
torch's own ``TransformerEncoderLayer`` and an unfold-based patch embedding), on random weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.embedders.passt import (
    PasstConfig,
    PasstEmbedder,
    PasstNet,
    passt_log_mel,
    passt_segments,
)

CFG = PasstConfig(embed_dim=32, depth=2, num_heads=2, mlp_dim=64, num_classes=10)


def _net(seed=0):
    torch.manual_seed(seed)
    net = PasstNet(CFG)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "pos_embed" in name or "token" in name:
                p.normal_(0, 0.5)
    return net.eval()


def _numpy_log_mel(x):
    x = np.asarray(x, np.float64)
    y = np.convolve(x, [1.0, -0.97], mode="valid")  # y[n] = x[n+1] - 0.97 x[n]
    yp = np.pad(y, 512, mode="reflect")
    n_frames = 1 + (len(yp) - 1024) // 320
    win = np.zeros(1024)
    win[112:912] = np.hanning(800)
    frames = np.stack([yp[i * 320:i * 320 + 1024] * win for i in range(n_frames)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # [frames, 513]
    mel_of = lambda f: 1127.0 * np.log(1.0 + f / 700.0)  # noqa: E731
    lo, hi = mel_of(0.0), mel_of(15000.0)
    step = (hi - lo) / 129
    banks = np.zeros((128, 513))
    for m in range(128):
        left, centre, right = lo + m * step, lo + (m + 1) * step, lo + (m + 2) * step
        for i in range(512):
            b = mel_of(i * 32000 / 1024)
            if left < b < right:
                banks[m, i] = (b - left) / (centre - left) if b <= centre else (right - b) / (right - centre)
    return ((np.log(power @ banks.T + 1e-5) + 4.5) / 5.0).T  # [128, frames]


def _reference_forward(net: PasstNet, mel: torch.Tensor) -> torch.Tensor:
    """A plain re-implementation with different building blocks."""
    d, p, s = CFG.embed_dim, CFG.patch, CFG.stride
    patches = mel.unfold(2, p, s).unfold(3, p, s)  # [B, 1, F', T', p, p]
    b, _, fp, tp = patches.shape[:4]
    w = net.patch_embed.proj.weight.reshape(d, -1)
    tokens = []
    for f in range(fp):
        for t in range(tp):
            e = patches[:, 0, f, t].reshape(b, -1) @ w.T + net.patch_embed.proj.bias
            tokens.append(e + net.freq_new_pos_embed[0, :, f, 0] + net.time_new_pos_embed[0, :, 0, t])
    x = torch.stack([net.cls_token[0, 0] + net.new_pos_embed[0, 0]] * b)
    x = torch.stack([x, torch.stack([net.dist_token[0, 0] + net.new_pos_embed[0, 1]] * b)] + tokens, dim=1)
    for blk in net.blocks:
        layer = torch.nn.TransformerEncoderLayer(d, CFG.num_heads, CFG.mlp_dim, dropout=0.0,
                                                 activation="gelu", layer_norm_eps=1e-6, batch_first=True,
                                                 norm_first=True)
        layer.self_attn.in_proj_weight.data = blk.attn.qkv.weight.data
        layer.self_attn.in_proj_bias.data = blk.attn.qkv.bias.data
        layer.self_attn.out_proj.weight.data = blk.attn.proj.weight.data
        layer.self_attn.out_proj.bias.data = blk.attn.proj.bias.data
        layer.linear1.load_state_dict(blk.mlp.fc1.state_dict())
        layer.linear2.load_state_dict(blk.mlp.fc2.state_dict())
        layer.norm1.load_state_dict(blk.norm1.state_dict())
        layer.norm2.load_state_dict(blk.norm2.state_dict())
        x = layer.eval()(x)
    x = torch.nn.functional.layer_norm(x, (d,), net.norm.weight, net.norm.bias, 1e-6)
    feat = 0.5 * (x[:, 0] + x[:, 1])
    feat = torch.nn.functional.layer_norm(feat, (d,), net.head[0].weight, net.head[0].bias, 1e-5)
    return feat @ net.head[1].weight.T + net.head[1].bias


def _audio(seconds, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(32000 * seconds)) / 32000
    return (0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def test_front_end_matches_numpy_recomputation():
    x = _audio(1.3)
    ours = passt_log_mel(torch.from_numpy(x)[None])[0].numpy()
    ref = _numpy_log_mel(x)
    assert ours.shape == ref.shape == (128, 1 + (len(x) - 1) // 320)
    np.testing.assert_allclose(ours, ref, atol=1e-4)


def test_network_matches_plain_reimplementation():
    net = _net()
    mel = passt_log_mel(torch.from_numpy(_audio(0.9))[None])[:, None]
    with torch.no_grad():
        ours, ref = net(mel), _reference_forward(net, mel)
    assert ours.shape == (1, 10)
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)


def test_segments_and_short_clips():
    assert [len(s) for s in passt_segments(np.zeros(32000 * 25))] == [640000, 160000]
    assert [len(s) for s in passt_segments(np.zeros(640000 + 4800))] == [640000]  # 0.15 s tail dropped
    assert [len(s) for s in passt_segments(np.zeros(640000 + 4801))] == [640000, 4801]
    e = PasstEmbedder()
    e.set_network(_net())
    assert e.embed(_audio(4801 / 32000)).shape == (1, 10)  # the shortest clip PaSST accepts
    with pytest.raises(ValueError, match="shorter than the backbone's window of 4801"):
        e.embed(_audio(0.1))


def test_loads_wrapped_checkpoint_with_numpy_scalars(tmp_path):
    net = _net(seed=3)
    path = tmp_path / "passt.pt"
    torch.save({"model": net.state_dict(), "epoch": np.int64(7), "best": np.float64(0.47)}, path)
    e = PasstEmbedder(PasstEmbedder.Params(checkpoint=str(path), num_heads=2))
    assert e.check() == []
    e.load()
    x = _audio(1.0)
    with torch.no_grad():
        expected = net(passt_log_mel(torch.from_numpy(x)[None])[:, None]).numpy()
    np.testing.assert_allclose(e.embed(x), expected, atol=1e-5)
    assert len(e.digest()) == 64
    missing = PasstEmbedder(PasstEmbedder.Params(checkpoint=str(tmp_path / "none.pt")))
    assert "none.pt" in missing.check()[0]
