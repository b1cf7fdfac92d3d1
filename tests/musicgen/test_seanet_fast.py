"""``seanet_inference`` (channels-last inference path) equals the SEANet modules it runs, across the
options EnCodec checkpoints use, short inputs included; ``CompressionModel.decode`` takes it only
without autograd."""

from __future__ import annotations

import pytest
import torch

from musicgen.modules.seanet import SEANetDecoder, SEANetEncoder
from musicgen.modules.seanet_fast import seanet_inference

BASE = dict(channels=1, dimension=16, n_filters=4, ratios=(8, 5, 4, 2), lstm_layers=2)


def _random(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (p[0].numel() ** -0.5 if p.ndim > 1 else 0.1))
    return module.eval()


@pytest.mark.parametrize("options", [
    {},
    {"causal": True},
    {"true_skip": False, "residual_layers": 2},
    {"pad_mode": "constant", "norm": "none"},
    {"causal": True, "trim_right_ratio": 0.5, "lstm_layers": 0},
])
@pytest.mark.parametrize("frames,batch", [(37, 2), (1, 1), (3, 3)])
def test_decoder_inference_path_equals_modules(options, frames, batch):
    dec = _random(SEANetDecoder(**{**BASE, **options}), seed=frames)
    z = torch.randn(batch, 16, frames, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = dec(z)
        got = seanet_inference(dec.layers, z)
    assert got.shape == expected.shape == (batch, 1, frames * 320)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert got.is_contiguous()


@pytest.mark.parametrize("length", [1000, 7, 640])
def test_encoder_layers_run_too(length):
    """Strided convolutions (the encoder's) go through the general padding branch."""
    enc = _random(SEANetEncoder(**{**BASE, "ratios": (4, 2)}), seed=2)
    wav = 0.1 * torch.randn(2, 1, length, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(seanet_inference(enc.layers, wav), enc(wav), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("max_rows", [0, 32])
def test_lstm_step_with_and_without_the_compiled_kernel(max_rows, monkeypatch):
    from musicgen.modules import seanet_fast

    monkeypatch.setattr(seanet_fast, "F32_GEMV_MAX_ROWS", max_rows)  # 0: MKL's product every step
    dec = _random(SEANetDecoder(**{**BASE, "n_filters": 16}), seed=5)  # LSTM over 256 channels
    z = torch.randn(3, 16, 20, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        torch.testing.assert_close(seanet_inference(dec.layers, z), dec(z), atol=1e-5, rtol=1e-5)


def test_input_is_not_modified():
    dec = _random(SEANetDecoder(**{**BASE, "lstm_layers": 0}), seed=0)
    z = torch.randn(1, 16, 5)
    before = z.clone()
    with torch.no_grad():
        seanet_inference(dec.layers, z)
    assert torch.equal(z, before)


def test_decode_uses_modules_under_autograd():
    from musicgen.models.codec import CompressionModel, tiny_config

    model = _random(CompressionModel(tiny_config()), seed=4)
    codes = torch.randint(0, model.cardinality, (2, model.num_codebooks, 9))
    with torch.no_grad():
        fast = model.decode(codes)
    slow = model.decode(codes)
    assert slow.requires_grad and not fast.requires_grad
    torch.testing.assert_close(fast, slow.detach(), atol=1e-5, rtol=1e-5)
