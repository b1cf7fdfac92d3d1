"""Graded audio degradations for checking metrics (pure functions on ``[C, T]`` float arrays).

Each takes audio ``wav`` ``[C, T]`` (float, any range) at ``sample_rate`` Hz and returns float32
``[C, T']``; random ones take a ``numpy.random.Generator`` so that the caller decides the seed.

- ``add_noise(wav, snr_db, rng, colour)``: white or pink (power ~ 1/f) Gaussian noise scaled so that
  ``10 log10(P_signal / P_noise) = snr_db`` exactly over the whole clip (powers are mean squares over
  all channels and samples). Pink noise: white noise shaped in the frequency domain by ``1 / sqrt(f)``
  in amplitude (DC set to 0).
- ``lowpass(wav, sr, cutoff_hz, order)``: Butterworth low-pass of ``order`` (8 by default) run forward
  and backward (``scipy.signal.sosfiltfilt``: zero phase, effective order 2x, -6 dB at the cutoff).
- ``pitch_shift(wav, sr, semitones)``: librosa's phase vocoder (``librosa.effects.pitch_shift``: time
  stretch by ``2^(-s/12)``, then resampling by the same ratio), same length, frequencies times
  ``2^(s/12)``.
- ``time_stretch(wav, factor)``: duration times ``factor`` (> 1 slower), pitch kept
  (``librosa.effects.time_stretch`` with ``rate = 1 / factor``); ``T' = round(T * factor)``.
- ``hard_clip(wav, gain_db)``: peak-normalise, amplify by ``gain_db``, clip to [-1, 1], undo the
  normalisation: ``gain_db`` is how far above its own peak the clip is driven (0 dB: unchanged).
- ``reverb(wav, sr, rt60_s, rng, drr_db)``: convolution with a synthetic room response: a unit direct
  impulse plus a Gaussian-noise tail decaying 60 dB in ``rt60_s`` (``exp(-6.908 t / rt60)`` in
  amplitude), starting 2.5 ms after the direct sound, scaled so that the direct-to-reverberant energy
  ratio is ``drr_db``; the output is cut to the input length.
- codec round trips live in ``baselines.degrade`` (they need a model).
"""

from __future__ import annotations

import numpy as np

from bench.audio import lowpass as audio_lowpass

#: ln(1000): an amplitude envelope exp(-LN1000 t / rt60) falls by 60 dB in rt60 seconds
LN1000 = float(np.log(1000.0))
REVERB_PREDELAY_S = 0.0025


def _check(wav: np.ndarray) -> np.ndarray:
    a = np.asarray(wav, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] == 0:
        raise ValueError(f"audio must be [C, T] with T >= 1; got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError("audio contains NaN or inf")
    return a


def power(wav: np.ndarray) -> float:
    """Mean square over every channel and sample."""
    return float(np.mean(np.square(np.asarray(wav, dtype=np.float64))))


def pink_noise(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise ``[C, T]`` with power spectral density ~ 1/f (DC removed), unit mean square."""
    c, t = shape
    spectrum = np.fft.rfft(rng.standard_normal((c, t)), axis=1)
    f = np.arange(spectrum.shape[1], dtype=np.float64)
    scale = np.zeros_like(f)
    scale[1:] = 1.0 / np.sqrt(f[1:])
    noise = np.fft.irfft(spectrum * scale, n=t, axis=1)
    return noise / np.sqrt(max(power(noise), 1e-300))


def add_noise(wav: np.ndarray, snr_db: float, rng: np.random.Generator, colour: str = "white") -> np.ndarray:
    """``wav`` plus ``colour`` ("white" or "pink") noise at ``snr_db`` dB SNR (exact over the clip)."""
    x = _check(wav)
    p_signal = power(x)
    if p_signal <= 0:
        raise ValueError("cannot set an SNR on silent audio")
    if colour == "white":
        noise = rng.standard_normal(x.shape)
    elif colour == "pink":
        noise = pink_noise(x.shape, rng)
    else:
        raise ValueError(f"noise colour must be 'white' or 'pink'; got {colour!r}")
    noise *= np.sqrt(p_signal / (power(noise) * 10.0 ** (snr_db / 10.0)))
    return (x + noise).astype(np.float32)


def lowpass(wav: np.ndarray, sample_rate: int, cutoff_hz: float, order: int = 8) -> np.ndarray:
    """Zero-phase Butterworth low-pass at ``cutoff_hz`` (0 < cutoff < Nyquist): ``bench.audio.lowpass``
    on checked audio."""
    return audio_lowpass(_check(wav), sample_rate, cutoff_hz, order)


def pitch_shift(wav: np.ndarray, sample_rate: int, semitones: float) -> np.ndarray:
    """Shift every frequency by ``2^(semitones / 12)``, same duration (librosa phase vocoder)."""
    import librosa

    x = _check(wav)
    if semitones == 0:
        return x.astype(np.float32)
    out = librosa.effects.pitch_shift(x, sr=sample_rate, n_steps=float(semitones), res_type="soxr_hq")
    return np.asarray(out[:, :x.shape[1]], dtype=np.float32)


def time_stretch(wav: np.ndarray, factor: float) -> np.ndarray:
    """Duration times ``factor`` (> 0; > 1 slower), pitch kept; ``T' = round(T * factor)``."""
    import librosa

    x = _check(wav)
    if not factor > 0:
        raise ValueError(f"time-stretch factor must be > 0; got {factor}")
    if factor == 1:
        return x.astype(np.float32)
    out = librosa.effects.time_stretch(x, rate=1.0 / float(factor))
    n = round(x.shape[1] * factor)
    out = out[:, :n]
    if out.shape[1] < n:
        out = np.pad(out, ((0, 0), (0, n - out.shape[1])))
    return np.asarray(out, dtype=np.float32)


def hard_clip(wav: np.ndarray, gain_db: float) -> np.ndarray:
    """Drive the clip ``gain_db`` (>= 0) above its own peak into a hard clipper, then scale back."""
    x = _check(wav)
    if gain_db < 0:
        raise ValueError(f"clipping gain must be >= 0 dB; got {gain_db}")
    peak = float(np.max(np.abs(x)))
    if peak == 0:
        return x.astype(np.float32)
    g = 10.0 ** (gain_db / 20.0)
    return (np.clip(x / peak * g, -1.0, 1.0) * peak).astype(np.float32)


def room_response(sample_rate: int, rt60_s: float, rng: np.random.Generator,
                  drr_db: float = 0.0) -> np.ndarray:
    """Synthetic impulse response ``[L]``: unit direct impulse, then a noise tail decaying 60 dB in
    ``rt60_s`` with direct-to-reverberant energy ratio ``drr_db``; ``L`` covers 1.5 x rt60."""
    if not rt60_s > 0:
        raise ValueError(f"RT60 must be > 0 s; got {rt60_s}")
    start = max(1, round(REVERB_PREDELAY_S * sample_rate))
    n_tail = max(1, round(1.5 * rt60_s * sample_rate))
    t = np.arange(n_tail) / sample_rate
    tail = rng.standard_normal(n_tail) * np.exp(-LN1000 * t / rt60_s)
    tail *= np.sqrt(10.0 ** (-drr_db / 10.0) / np.sum(tail ** 2))
    h = np.zeros(start + n_tail)
    h[0] = 1.0
    h[start:] = tail
    return h


def reverb(wav: np.ndarray, sample_rate: int, rt60_s: float, rng: np.random.Generator,
           drr_db: float = 0.0) -> np.ndarray:
    """``wav`` through ``room_response`` (one response for every channel), cut to the input length."""
    from scipy.signal import fftconvolve

    x = _check(wav)
    h = room_response(sample_rate, rt60_s, rng, drr_db)
    return fftconvolve(x, h[None, :], axes=1)[:, :x.shape[1]].astype(np.float32)
