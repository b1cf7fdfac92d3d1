"""The ``degrade`` generator and its degradations: each one does what its level says, measured on
signals made here (SNR achieved, attenuation above the cutoff, a sine's frequency ratio, duration,
clipped fraction, decay time), and every clip is a function of (seed, prompt) only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from pydantic import ValidationError

from baselines import degradations as dg
from baselines.degrade import DegradeGenerator
from bench.api import Prompt

SR = 32000


def sine(freq: float, seconds: float = 1.0, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t))[None, :]


def peak_frequency(wav: np.ndarray, sr: int = SR) -> float:
    """Frequency of the largest FFT bin, refined by parabolic interpolation (Hann window)."""
    x = wav[0] * np.hanning(wav.shape[1])
    mag = np.log(np.abs(np.fft.rfft(x)) + 1e-12)
    k = int(np.argmax(mag))
    a, b, c = mag[k - 1], mag[k], mag[k + 1]
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * sr / wav.shape[1]


def music(seconds: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(7)
    chord = sum(sine(f, seconds, amp=0.1) for f in (220, 330, 440, 660))
    return chord + 0.01 * rng.standard_normal((1, round(seconds * SR)))


@pytest.mark.parametrize("colour", ["white", "pink"])
@pytest.mark.parametrize("snr", [-10.0, 0.0, 20.0])
def test_noise_reaches_the_asked_snr(colour, snr):
    x = np.concatenate([music(), 0.5 * music()])  # stereo
    y = dg.add_noise(x, snr, np.random.default_rng(0), colour)
    noise = y.astype(np.float64) - x
    assert 10 * np.log10(dg.power(x) / dg.power(noise)) == pytest.approx(snr, abs=1e-4)  # float32 output


def test_pink_noise_falls_3_db_per_octave():
    n = dg.pink_noise((1, 2 ** 18), np.random.default_rng(1))[0]
    psd = np.abs(np.fft.rfft(n)) ** 2
    f = np.fft.rfftfreq(len(n), 1 / SR)

    def band(lo):
        return psd[(f >= lo) & (f < 2 * lo)].mean()

    slopes = [10 * np.log10(band(2 * lo) / band(lo)) for lo in (100, 400, 1600, 3200)]
    np.testing.assert_allclose(slopes, -3.01, atol=0.3)


def test_lowpass_attenuates_above_the_cutoff_and_keeps_below():
    mid = slice(4000, -4000)  # away from the clip's edges (a sine starting at full level is a click)
    gain = {f: dg.power(dg.lowpass(sine(f), SR, 2000)[:, mid]) / dg.power(sine(f)[:, mid])
            for f in (500, 2000, 4000)}
    assert gain[500] == pytest.approx(1.0, abs=0.01)
    assert 10 * np.log10(gain[2000]) == pytest.approx(-6.02, abs=0.2)  # forward-backward: -3 dB twice
    assert 10 * np.log10(gain[4000]) < -80
    with pytest.raises(ValueError, match="Nyquist"):
        dg.lowpass(sine(100), SR, 16000)


@pytest.mark.parametrize("semitones", [-3.0, 2.0, 7.0])
def test_pitch_shift_moves_a_sine_by_the_semitone_ratio(semitones):
    x = sine(440.0)
    y = dg.pitch_shift(x, SR, semitones)
    assert y.shape == x.shape
    assert peak_frequency(y[:, 4000:-4000]) / 440.0 == pytest.approx(2 ** (semitones / 12), rel=2e-3)


@pytest.mark.parametrize("factor", [0.8, 1.25, 1.5])
def test_time_stretch_changes_duration_not_pitch(factor):
    x = sine(440.0)
    y = dg.time_stretch(x, factor)
    assert y.shape[1] == round(x.shape[1] * factor)
    assert peak_frequency(y[:, 4000:-4000]) == pytest.approx(440.0, rel=2e-3)


def test_hard_clip_clips_the_expected_fraction():
    x = sine(100.0, amp=0.3)
    assert np.array_equal(dg.hard_clip(x, 0.0), x.astype(np.float32))
    y = dg.hard_clip(x, 6.0)  # driven to twice its peak: |sin| > 1/2 is flat, 2/3 of the samples
    assert np.max(np.abs(y)) == pytest.approx(0.3, rel=1e-6)
    assert np.mean(np.isclose(np.abs(y), 0.3, rtol=1e-6)) == pytest.approx(2 / 3, abs=0.01)


@pytest.mark.parametrize("rt60", [0.3, 1.0])
def test_reverb_decays_60_db_in_rt60(rt60):
    h = dg.room_response(SR, rt60, np.random.default_rng(0), drr_db=0.0)
    tail = h[1:]
    assert np.sum(tail ** 2) == pytest.approx(1.0, rel=1e-9)  # DRR 0 dB: tail energy = direct energy
    # Schroeder backward integration: the energy decay curve falls 60 dB in rt60 (fit from -5 to -35 dB)
    edc = 10 * np.log10(np.cumsum(tail[::-1] ** 2)[::-1] / np.sum(tail ** 2))
    t = np.arange(len(tail)) / SR
    sel = (edc < -5) & (edc > -35)
    slope = np.polyfit(t[sel], edc[sel], 1)[0]
    assert -60 / slope == pytest.approx(rt60, rel=0.1)
    x = music()
    assert dg.reverb(x, SR, rt60, np.random.default_rng(0)).shape == x.shape


@pytest.fixture
def refs(tmp_path: Path) -> list[Prompt]:
    out = []
    for i in range(3):
        path = tmp_path / f"r{i}.wav"
        sf.write(path, (music(1.2) * (i + 1))[0], SR)
        out.append(Prompt(f"p{i}", "x", reference_path=path))
    return out


@pytest.mark.parametrize("degradation, level", [
    ("white_noise", 5.0), ("pink_noise", 0.0), ("reverb", 0.5), ("lowpass", 1000.0), ("clipping", 12.0),
    ("time_stretch", 1.2), ("pitch_shift", 1.0), ("codec", 2.0)])
def test_generator_is_deterministic_per_seed_and_batch_free(refs, degradation, level):
    gen = DegradeGenerator(DegradeGenerator.Params(degradation=degradation, level=level))
    gen.load()
    a = gen.generate(refs, seed=0, duration_s=1.0)
    b = gen.generate(refs[::-1], seed=0, duration_s=1.0)[::-1]
    for x, y in zip(a, b):
        assert x.wav.shape == (1, SR) and np.array_equal(x.wav, y.wav) and np.max(np.abs(x.wav)) <= 1.0
    clean = DegradeGenerator(DegradeGenerator.Params(degradation="none")).generate(refs, 0, 1.0)
    assert not np.allclose(a[0].wav, clean[0].wav)
    if degradation in ("white_noise", "pink_noise", "reverb"):  # random: another seed, another clip
        assert not np.array_equal(gen.generate(refs, seed=1, duration_s=1.0)[0].wav, a[0].wav)


def test_codec_keeps_fewer_codebooks_worse_and_refuses_too_many(refs):
    clean = DegradeGenerator(DegradeGenerator.Params(degradation="none")).generate(refs, 0, 1.0)[0].wav

    def error(n):
        gen = DegradeGenerator(DegradeGenerator.Params(degradation="codec", level=n))
        return dg.power(gen.generate(refs, 0, 1.0)[0].wav - clean)

    assert error(1) > error(4)
    with pytest.raises(ValueError, match="level 5 codebooks but codec 'builtin:codec-small' has 4"):
        DegradeGenerator(DegradeGenerator.Params(degradation="codec", level=5)).load()


def test_params_record_severity_and_refuse_bad_levels():
    p = DegradeGenerator.Params(degradation="white_noise", level=10.0)
    assert p.model_dump()["severity"] == -10.0  # lower SNR, stronger
    assert DegradeGenerator.Params(degradation="time_stretch", level=0.5).severity == 1.0
    assert DegradeGenerator.Params(degradation="none").severity == 0.0
    for bad in ({"degradation": "lowpass"}, {"degradation": "codec", "level": 1.5},
                {"degradation": "reverb", "level": 0.0}, {"degradation": "blur", "level": 1.0}):
        with pytest.raises(ValidationError):
            DegradeGenerator.Params(**bad)
    fp = {DegradeGenerator(DegradeGenerator.Params(degradation="reverb", level=x)).fingerprint()
          for x in (0.5, 1.0)}
    assert len(fp) == 2


def test_codec_round_trip_through_a_transformers_encodec_folder(refs, tmp_path):
    """The EnCodec 32 kHz path (a transformers folder, as in the local Hugging Face cache): the clip is
    what transformers itself decodes from the first n codebooks of its own codes."""
    import torch
    from transformers import EncodecConfig, EncodecModel

    torch.manual_seed(0)
    cfg = EncodecConfig(sampling_rate=SR, audio_channels=1, num_filters=4, upsampling_ratios=[8, 5, 4, 4],
                        hidden_size=16, codebook_size=32, codebook_dim=16, num_lstm_layers=1,
                        target_bandwidths=[1.0], normalize=False, chunk_length_s=None)
    model = EncodecModel(cfg).eval()
    model.save_pretrained(tmp_path / "encodec")
    params = DegradeGenerator.Params(degradation="codec", level=2, codec=str(tmp_path / "encodec"))
    gen = DegradeGenerator(params)
    clip = gen.generate(refs[:1], 0, 1.0)[0]
    clean = DegradeGenerator(DegradeGenerator.Params(degradation="none")).generate(refs[:1], 0, 1.0)[0]
    with torch.no_grad():
        x = torch.from_numpy(clean.wav)[None]
        codes = model.encode(x, bandwidth=1.0).audio_codes  # [1, 1, K, F]
        assert codes.shape[2] >= 2
        want = model.decode(codes[:, :, :2], [None]).audio_values[0, :, :x.shape[-1]].numpy()
    peak = max(1.0, float(np.abs(want).max()))  # the generator scales a clip whose peak exceeds 1
    np.testing.assert_allclose(clip.wav, want / peak, atol=2e-5)
