from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from musicgen.modules.chroma import ChromaExtractor, chroma_filter_bank, remove_drums_and_bass

SR, N_FFT, HOP = 32000, 16384, 4096


def transformers_chroma(wav: torch.Tensor) -> torch.Tensor:
    """transformers' MusicgenMelodyFeatureExtractor._torch_extract_fbank_features, with its torchaudio
    Spectrogram(power=2, normalized=True, center=True) replaced by librosa's STFT (no torchaudio here)."""
    from transformers.audio_utils import chroma_filter_bank as hf_bank
    from transformers.models.musicgen_melody.feature_extraction_musicgen_melody import (
        MusicgenMelodyFeatureExtractor,
    )

    fe = object.__new__(MusicgenMelodyFeatureExtractor)  # its __init__ requires torchaudio
    fe.n_fft, fe.hop_length = N_FFT, HOP
    fe.chroma_filters = torch.from_numpy(hf_bank(sampling_rate=SR, num_frequency_bins=N_FFT, tuning=0,
                                                 num_chroma=12)).float()
    window = np.asarray(librosa.filters.get_window("hann", N_FFT, fftbins=True))

    def spectrogram(x: torch.Tensor) -> torch.Tensor:
        spec = librosa.stft(x.double().numpy(), n_fft=N_FFT, hop_length=HOP, win_length=N_FFT,
                            window="hann", center=True, pad_mode="reflect")
        return torch.from_numpy(np.abs(spec) ** 2 / (window**2).sum()).float()

    fe.spectrogram = spectrogram
    return fe._torch_extract_fbank_features(wav.clone())


def test_filter_bank_matches_transformers():
    from transformers.audio_utils import chroma_filter_bank as hf_bank

    ours = chroma_filter_bank(SR, N_FFT)
    ref = hf_bank(sampling_rate=SR, num_frequency_bins=N_FFT, tuning=0, num_chroma=12)
    ref = torch.from_numpy(ref).float()
    assert ours.shape == (12, N_FFT // 2 + 1)
    torch.testing.assert_close(ours, ref[:, : N_FFT // 2 + 1], atol=1e-6, rtol=0)


@pytest.mark.parametrize("num_samples", [SR * 2, 5000])  # 2 s, and shorter than n_fft (zero-padded)
def test_chroma_matches_transformers_feature_extractor(num_samples):
    torch.manual_seed(0)
    wav = torch.randn(2, num_samples) * 0.1
    ext = ChromaExtractor()
    ours = ext(wav)
    ref = transformers_chroma(wav)
    assert ours.shape == ref.shape == (2, ext.num_frames(num_samples), 12)
    assert torch.equal(ours.sum(-1), torch.ones(2, ours.shape[1]))
    # one-hot argmax must agree wherever the two best bins are not (numerically) tied
    soft = ChromaExtractor(argmax=False)(wav)
    top2 = soft.topk(2, dim=-1).values
    clear = (top2[..., 0] - top2[..., 1]) > 1e-4
    assert clear.float().mean() > 0.9
    assert torch.equal(ours[clear], ref[clear])


def test_chroma_of_a_tone_is_its_pitch_class():
    t = torch.arange(SR * 2) / SR
    for midi in (57, 60, 64):  # A3, C4, E4
        f = 440.0 * 2 ** ((midi - 69) / 12)
        chroma = ChromaExtractor()(torch.sin(2 * torch.pi * f * t)[None])
        assert (chroma[0].argmax(-1) == midi % 12).all()


def test_stereo_is_averaged_and_bad_input_raises():
    wav = torch.randn(1, 2, SR)
    torch.testing.assert_close(ChromaExtractor(argmax=False)(wav), ChromaExtractor(argmax=False)(wav.mean(1)))
    with pytest.raises(ValueError, match="shape"):
        ChromaExtractor()(torch.randn(SR))
    with pytest.raises(ValueError, match="empty"):
        ChromaExtractor()(torch.zeros(1, 0))
    with pytest.raises(ValueError, match="NaN"):
        ChromaExtractor()(torch.full((1, SR), float("nan")))


def test_stem_removal_without_demucs_says_how(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_demucs(name, *args, **kwargs):
        if name.startswith("demucs"):
            raise ImportError("no demucs")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_demucs)
    with pytest.raises(ImportError, match="pip install demucs"):
        remove_drums_and_bass(torch.zeros(1, 1, SR), SR)


def test_stem_removal_needs_a_local_weights_folder(monkeypatch, tmp_path):
    import sys
    import types

    calls = []
    fake = types.ModuleType("demucs")
    fake.pretrained = types.SimpleNamespace(get_model=lambda *a, **k: calls.append((a, k)))
    monkeypatch.setitem(sys.modules, "demucs", fake)
    monkeypatch.setitem(sys.modules, "demucs.pretrained", fake.pretrained)
    monkeypatch.setitem(sys.modules, "demucs.apply", types.SimpleNamespace(apply_model=None))
    with pytest.raises(FileNotFoundError, match="Nothing is downloaded"):
        remove_drums_and_bass(torch.zeros(1, 1, SR), SR)
    with pytest.raises(FileNotFoundError, match="not found"):
        remove_drums_and_bass(torch.zeros(1, 1, SR), SR, repo=tmp_path / "missing")
    assert calls == []  # demucs was never asked to fetch anything
