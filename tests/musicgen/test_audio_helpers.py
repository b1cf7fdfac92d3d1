"""``musicgen.modules.audio``: channel mixing and julius resampling used by the codec, the conditioners
and the training data."""

from __future__ import annotations

import math

import julius
import pytest
import torch

from musicgen.modules.audio import resample, to_mono


def test_to_mono_averages_the_channel_axis():
    wav = torch.tensor([[[1.0, 2.0], [3.0, 6.0]]])  # [B=1, C=2, T=2]
    assert torch.equal(to_mono(wav), torch.tensor([[[2.0, 4.0]]]))
    assert torch.equal(to_mono(wav[0]), torch.tensor([[2.0, 4.0]]))  # [C, T] -> [1, T]


def test_resample_is_julius_and_keeps_a_sine():
    sr, f = 8000, 440.0
    t = torch.arange(sr) / sr
    wav = torch.sin(2 * math.pi * f * t)[None, None]
    out = resample(wav, sr, 16000)
    assert torch.equal(out, julius.resample_frac(wav, sr, 16000))
    assert out.shape[-1] == 2 * sr
    t2 = torch.arange(2 * sr) / 16000
    middle = slice(1000, -1000)  # away from the edges, where the filter sees padding
    assert torch.allclose(out[0, 0, middle], torch.sin(2 * math.pi * f * t2)[middle], atol=1e-2)


def test_resample_identity_and_bad_rates():
    wav = torch.randn(2, 10)
    assert resample(wav, 8000, 8000) is wav
    empty = torch.zeros(1, 0)
    assert resample(empty, 8000, 16000) is empty
    with pytest.raises(ValueError, match="sample rates must be positive.*0 Hz"):
        resample(wav, 0, 8000)
