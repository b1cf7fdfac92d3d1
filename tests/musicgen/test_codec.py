"""Codec behaviour: shapes, padding rules, RVQ training mechanics, stereo, files and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from musicgen.models.codec import CompressionModel, StereoCompressionModel, tiny_config
from musicgen.modules.conv import PaddedConv1d, PaddedConvTranspose1d
from musicgen.modules.rvq import EuclideanCodebook, ResidualVectorQuantizer, VectorQuantizer
from musicgen.testing import tiny_codec


def _wav(*shape, seed=0):
    return 0.1 * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_lazy_import_and_tiny_properties():
    import musicgen

    assert musicgen.CompressionModel is CompressionModel
    m = tiny_codec()
    assert (m.sample_rate, m.channels, m.hop_length, m.cardinality, m.num_codebooks) == (8000, 1, 32, 64, 4)
    assert m.frame_rate == 8000 / 32


@pytest.mark.parametrize("length", [1, 31, 32, 33, 1001])
def test_encode_decode_shapes(length):
    m = tiny_codec()
    with torch.no_grad():
        codes = m.encode(_wav(2, 1, length))
        assert codes.shape == (2, 4, math.ceil(length / 32)) and codes.dtype == torch.int64
        assert 0 <= int(codes.min()) and int(codes.max()) < 64
        assert m.decode(codes).shape == (2, 1, codes.shape[-1] * 32)
        assert m.decode(codes, length=length).shape == (2, 1, length)
        assert m.encode_latents(_wav(2, 1, length)).shape == (2, 16, codes.shape[-1])


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("kernel,stride,dilation", [(7, 1, 1), (3, 1, 4), (8, 4, 1), (10, 5, 1)])
def test_padded_conv_lengths(causal, kernel, stride, dilation):
    conv = PaddedConv1d(2, 3, kernel, stride, dilation, causal=causal)
    tconv = PaddedConvTranspose1d(3, 2, kernel, stride, causal=causal) if dilation == 1 else None
    for t in (1, 2, 9, 40, 41):
        y = conv(torch.randn(1, 2, t))
        assert y.shape[-1] == math.ceil(t / stride)
        if tconv is not None:
            assert tconv(y).shape[-1] == y.shape[-1] * stride


def test_weight_norm_matches_torch_parametrization():
    conv = PaddedConv1d(3, 5, 4, 2).conv
    ref = torch.nn.utils.parametrizations.weight_norm(torch.nn.Conv1d(3, 5, 4, 2))
    with torch.no_grad():
        ref.parametrizations.weight.original0.copy_(torch.rand(5, 1, 1))
        ref.parametrizations.weight.original1.copy_(torch.randn(5, 3, 4))
        conv.weight_g.copy_(ref.parametrizations.weight.original0)
        conv.weight_v.copy_(ref.parametrizations.weight.original1)
        conv.bias.copy_(ref.bias)
        x = torch.randn(2, 3, 20)
        assert torch.equal(conv(x), ref(x))


def test_causal_encoder_ignores_the_future():
    m = tiny_codec(causal=True)
    x = _wav(1, 1, 640)
    y = x.clone()
    y[..., 320:] += 1.0
    with torch.no_grad():
        a, b = m.encode_latents(x), m.encode_latents(y)
    frames_before = 320 // 32  # frames whose receptive field ends before sample 320
    assert torch.equal(a[..., :frames_before], b[..., :frames_before])
    assert not torch.equal(a, b)


def test_fewer_codebooks_is_a_prefix_and_bandwidth_picks_them():
    m = tiny_codec()
    x = _wav(1, 1, 500)
    with torch.no_grad():
        full = m.encode(x)
        assert torch.equal(m.encode(x, num_codebooks=2), full[:, :2])
        assert m.decode(full[:, :2]).shape == (1, 1, full.shape[-1] * 32)
    per_codebook_kbps = math.log2(64) * 250 / 1000  # 1.5
    assert m.set_bandwidth(2 * per_codebook_kbps) == 2 and m.num_codebooks == 2
    assert m.encode(x).shape[1] == 2
    assert m.set_bandwidth(100.0) == 4 and m.set_bandwidth(0.1) == 1
    with pytest.raises(ValueError, match="num_codebooks"):
        m.set_num_codebooks(5)


def test_rvq_decode_is_sum_of_entries_and_residuals_shrink():
    torch.manual_seed(0)
    rvq = ResidualVectorQuantizer(dim=4, codebook_size=16, num_codebooks=3, kmeans_iters=20).train()
    x = torch.randn(8, 4, 50)
    rvq(x, frame_rate=50.0)  # k-means initialisation of each layer on its residual
    rvq.eval()
    codes = rvq.encode(x)
    manual = sum(rvq.layers[k].codebook.embed[codes[:, k]].permute(0, 2, 1) for k in range(3))
    assert torch.allclose(rvq.decode(codes), manual)
    errors = [float((x - rvq.decode(codes[:, :k])).pow(2).mean()) for k in (1, 2, 3)]
    assert errors[0] > errors[1] > errors[2]


def test_kmeans_init_finds_separated_clusters():
    torch.manual_seed(0)
    centers = torch.tensor([[5.0, 0.0], [-5.0, 0.0], [0.0, 5.0]])
    data = centers.repeat_interleave(100, 0) + 0.01 * torch.randn(300, 2)
    cb = EuclideanCodebook(2, 3, kmeans_iters=20, threshold_ema_dead_code=0).train()
    cb.init_from(data)
    assert bool(cb.inited.item())
    found = sorted(cb.embed.tolist())
    assert torch.allclose(torch.tensor(found), torch.tensor(sorted(centers.tolist())), atol=0.05)


def test_ema_update_matches_formula():
    cb = EuclideanCodebook(2, 2, decay=0.9, epsilon=1e-5, kmeans_init=False, threshold_ema_dead_code=0)
    with torch.no_grad():
        cb.embed.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        cb.embed_avg.copy_(cb.embed)
        cb.cluster_size.fill_(1.0)
    x = torch.tensor([[2.0, 0.0], [1.0, 0.1], [0.0, 3.0]])
    cb.train()(x)
    size = 0.9 * torch.tensor([1.0, 1.0]) + 0.1 * torch.tensor([2.0, 1.0])
    avg = 0.9 * torch.eye(2) + 0.1 * torch.tensor([[3.0, 0.1], [0.0, 3.0]])
    n = size.sum()
    smoothed = (size + 1e-5) / (n + 2e-5) * n
    assert torch.allclose(cb.cluster_size, size)
    assert torch.allclose(cb.embed, avg / smoothed[:, None])


def test_dead_codes_are_replaced_by_batch_vectors():
    torch.manual_seed(0)
    cb = EuclideanCodebook(3, 8, kmeans_init=False, threshold_ema_dead_code=2.0)
    with torch.no_grad():
        cb.cluster_size.copy_(torch.tensor([5.0, 5.0, 0, 0, 0, 0, 0, 5.0]))
    x = torch.randn(10, 3) + 100  # far from every entry
    assert cb.replace_dead_codes(x) == 5
    dead = torch.tensor([False, False, True, True, True, True, True, False])
    for row in cb.embed[dead]:
        assert any(torch.equal(row, v) for v in x)
    assert torch.all(cb.cluster_size[dead] == 2.0)


def test_commitment_loss_and_straight_through_gradient():
    torch.manual_seed(0)
    vq = VectorQuantizer(4, 8, kmeans_init=False, threshold_ema_dead_code=0, decay=1.0).train()
    x = torch.randn(2, 4, 5, requires_grad=True)
    q, codes, commit = vq(x)
    entries = vq.codebook.embed[codes].permute(0, 2, 1)
    assert torch.allclose(q, entries, atol=1e-6)
    assert torch.allclose(commit, (x - entries).pow(2).mean())
    (q * torch.arange(40.0).view(2, 4, 5)).sum().backward()
    assert torch.equal(x.grad, torch.arange(40.0).view(2, 4, 5))


def test_stereo_interleaves_left_and_right():
    mono = tiny_codec(seed=1)
    st = StereoCompressionModel(mono)
    x = _wav(2, 2, 400)
    with torch.no_grad():
        codes = st.encode(x)
        assert codes.shape == (2, 8, 13) and st.num_codebooks == 8 and st.channels == 2
        assert torch.equal(codes[:, 0::2], mono.encode(x[:, :1]))  # [L0, R0, L1, R1, ...]
        assert torch.equal(codes[:, 1::2], mono.encode(x[:, 1:]))
        audio = st.decode(codes, length=400)
        assert audio.shape == (2, 2, 400)
        assert torch.equal(audio[:, 1:], mono.decode(codes[:, 1::2], length=400))
    with pytest.raises(ValueError, match="2 channels|channels"):
        st.encode(_wav(1, 1, 100))


def test_native_round_trip_is_exact_and_keeps_stereo_flag(tmp_path):
    m = tiny_codec(seed=2)
    m.save_pretrained(tmp_path / "mono")
    again = CompressionModel.from_pretrained(tmp_path / "mono")
    assert again.config == m.config
    sd, sd2 = m.state_dict(), again.state_dict()
    assert sorted(sd) == sorted(sd2) and all(torch.equal(sd[k], sd2[k]) for k in sd)
    x = _wav(1, 1, 300)
    with torch.no_grad():
        assert torch.equal(again.decode(again.encode(x)), m.decode(m.encode(x)))
    StereoCompressionModel(m).save_pretrained(tmp_path / "stereo")
    assert isinstance(CompressionModel.from_pretrained(tmp_path / "stereo"), StereoCompressionModel)
    assert isinstance(CompressionModel.from_pretrained(tmp_path / "stereo", stereo=False), CompressionModel)
    assert isinstance(
        CompressionModel.from_pretrained(tmp_path / "mono", stereo=True), StereoCompressionModel
    )


def test_bad_audio_is_refused_clearly():
    m = tiny_codec()
    with pytest.raises(ValueError, match="2 channels, this codec expects 1"):
        m.encode(_wav(1, 2, 100))
    with pytest.raises(ValueError, match="empty"):
        m.encode(torch.zeros(1, 1, 0))
    nan = _wav(1, 1, 100)
    nan[0, 0, 5] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        m.encode(nan)
    with pytest.raises(ValueError, match="NaN"):
        m.encode_latents(torch.full((1, 1, 10), float("inf")))
    with pytest.raises(ValueError, match=r"\[B, C, T\]"):
        m.encode(_wav(1, 100))
    with pytest.raises(ValueError, match="floating point"):
        m.encode(torch.zeros(1, 1, 100, dtype=torch.int16))
    with pytest.raises(ValueError, match="sample_rate must be positive"):
        m.encode(_wav(1, 1, 100), sample_rate=-1)


def test_other_sample_rates_are_resampled():
    import julius

    m = tiny_codec()
    x16 = _wav(1, 1, 1600)  # 0.1 s at 16 kHz
    with torch.no_grad():
        codes = m.encode(x16, sample_rate=16000)
        expected = m.encode(julius.resample_frac(x16, 16000, 8000))
    assert codes.shape[-1] == math.ceil(800 / 32)
    assert torch.equal(codes, expected)
    assert torch.equal(m.encode(x16, sample_rate=8000), m.encode(x16))  # same rate: untouched


def test_bad_codes_are_refused_clearly():
    m = tiny_codec()
    codes = torch.zeros(1, 4, 10, dtype=torch.long)
    with pytest.raises(ValueError, match=r"\[0, 63\]"):
        m.decode(codes + 64)
    with pytest.raises(ValueError, match=r"\[0, 63\]"):
        m.decode(codes - 1)
    with pytest.raises(ValueError, match="K=5 codebooks, expected 1..4"):
        m.decode(torch.zeros(1, 5, 10, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        m.decode(codes.float())
    with pytest.raises(ValueError, match="empty"):
        m.decode(torch.zeros(1, 4, 0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[B, K, F\]"):
        m.decode(codes[0])


def test_tiny_config_builds_fast_and_trains_in_train_mode():
    m = CompressionModel(tiny_config())
    assert not bool(m.quantizer.layers[0].codebook.inited.item())
    out = m.train()(_wav(2, 1, 256))
    assert bool(m.quantizer.layers[0].codebook.inited.item())
    assert out.audio.shape == (2, 1, 256) and out.codes.shape == (2, 4, 8)
    assert out.commitment_loss.requires_grad and out.bandwidth_kbps == pytest.approx(6.0)
