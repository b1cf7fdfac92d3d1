"""riffusion's spectrogram image <-> audio (the part testable without weights) and what check() says
for riffusion and mousai when packages or weights are missing."""

from __future__ import annotations

import numpy as np
import pytest

from baselines import riffusion
from baselines.mousai import MousaiGenerator
from baselines.riffusion import RiffusionGenerator, audio_to_image, image_to_audio, image_to_mel


def _tone(freq_hz: float, duration_s: float = 0.6) -> np.ndarray:
    t = np.arange(round(duration_s * riffusion.SAMPLE_RATE)) / riffusion.SAMPLE_RATE
    return (0.5 * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


@pytest.mark.slow
def test_stft_matches_librosa():
    import librosa

    wav = _tone(700.0, 0.5) + np.random.default_rng(0).standard_normal(22050).astype(np.float32) * 0.01
    ours = riffusion.stft_magnitude(wav)
    ref = np.abs(librosa.stft(wav, n_fft=riffusion.N_FFT, hop_length=riffusion.HOP_LENGTH,
                              win_length=riffusion.WIN_LENGTH, window="hann", center=True,
                              pad_mode="reflect"))
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4 * ref.max())


def test_image_layout_puts_low_frequencies_at_the_bottom():
    image = audio_to_image(_tone(300.0))
    assert image.shape[0] == 512 and image.shape[2] == 3 and image.dtype == np.uint8
    darkest_row = int(np.argmin(image[:, :, 0].mean(axis=1)))  # loud = dark (inverted image)
    assert darkest_row > 400  # 300 Hz of a 0-10 kHz mel axis sits near the bottom
    mel = image_to_mel(image)
    assert int(np.argmax(mel.mean(axis=1))) == 511 - darkest_row
    float_image = image.astype(np.float32) / 255.0
    np.testing.assert_allclose(image_to_mel(float_image), mel, rtol=1e-5)
    with pytest.raises(ValueError, match=r"\[512, W, 3\]"):
        image_to_mel(np.zeros((256, 10, 3), np.uint8))


@pytest.mark.slow
def test_round_trip_keeps_the_spectrum():
    wav = _tone(440.0) + _tone(1320.0) * 0.5
    back = image_to_audio(audio_to_image(wav), seed=0, griffin_lim_iters=16)
    n = min(len(back), len(wav))
    spec_in = np.abs(np.fft.rfft(wav[:n]))
    spec_out = np.abs(np.fft.rfft(back[:n]))
    freqs = np.fft.rfftfreq(n, 1 / riffusion.SAMPLE_RATE)
    top = sorted(freqs[np.argsort(spec_out)[-40:]])
    assert any(abs(f - 440) < 15 for f in top) and any(abs(f - 1320) < 15 for f in top)
    corr = np.corrcoef(spec_in[freqs < 5000], spec_out[freqs < 5000])[0, 1]
    assert corr > 0.8, corr


def test_check_lists_missing_package_and_weights(tmp_path):
    problems = RiffusionGenerator(RiffusionGenerator.Params(model_dir=tmp_path / "riff")).check()
    assert any("does not exist" in p and "riffusion-model-v1" in p for p in problems)
    (tmp_path / "riff").mkdir()
    (tmp_path / "riff" / "model_index.json").write_text("{}")
    problems = RiffusionGenerator(RiffusionGenerator.Params(model_dir=tmp_path / "riff")).check()
    assert any("lacks unet, vae, text_encoder, tokenizer, scheduler" in p for p in problems)
    problems = MousaiGenerator(MousaiGenerator.Params(checkpoint=tmp_path / "mousai.ckpt")).check()
    assert any("mousai.ckpt" in p for p in problems) and any("unfinished" in p for p in problems)
    with pytest.raises(NotImplementedError):
        MousaiGenerator(MousaiGenerator.Params(checkpoint=tmp_path / "x")).generate([], 0, 1.0)
