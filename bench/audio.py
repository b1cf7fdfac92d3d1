"""Audio helpers for the harness: read, mono, resample (julius), crop, loudness (pyloudnorm).

Arrays are float32 ``[C, T]`` (channels first) unless a name says ``mono`` (``[T]``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
#: what a header may claim before the file is refused unread (a damaged header must not allocate
#: gigabytes or make the resampler build a kernel for a rate of 4 GHz)
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 384_000
MAX_CHANNELS = 64
MAX_DURATION_S = 4 * 3600.0
#: ITU-R BS.1770 (pyloudnorm) weighs at most 5 channels (L, R, C, Ls, Rs)
MAX_LOUDNESS_CHANNELS = 5


def audio_header(path: str | Path) -> tuple[int, int, int]:
    """``(sample_rate, channels, frames)`` from the header, checked against the bounds above; raises
    ``ValueError`` naming the file."""
    try:
        info = sf.info(str(path))
    except Exception as e:
        raise ValueError(f"cannot read audio file {str(path)!r}: {_one_line(e)}") from None
    sr, channels, frames = int(info.samplerate), int(info.channels), int(info.frames)
    if not MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE:
        raise ValueError(f"audio file {str(path)!r}: sample rate {sr} Hz is outside "
                         f"{MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz (damaged header?)")
    if not 1 <= channels <= MAX_CHANNELS:
        raise ValueError(f"audio file {str(path)!r}: {channels} channels (expected 1..{MAX_CHANNELS})")
    if frames < 0 or frames > MAX_DURATION_S * sr:
        raise ValueError(f"audio file {str(path)!r}: the header claims {frames} frames "
                         f"({frames / sr / 3600:.1f} h); at most {MAX_DURATION_S / 3600:g} h is read")
    return sr, channels, frames


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """``(wav [C, T] float32, sample_rate)`` from any file soundfile reads. A missing, unreadable,
    empty or implausible file (see ``audio_header``) raises ``ValueError`` naming it."""
    sr, _, _ = audio_header(path)
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:
        raise ValueError(f"cannot read audio file {str(path)!r}: {_one_line(e)}") from None
    if data.shape[0] == 0:
        raise ValueError(f"audio file {str(path)!r} holds no samples")
    if not np.all(np.isfinite(data)):
        raise ValueError(f"audio file {str(path)!r} holds NaN or infinite samples")
    return np.ascontiguousarray(data.T), int(sr)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def to_mono(wav: np.ndarray) -> np.ndarray:
    """``[C, T]`` or ``[T]`` -> float32 ``[T]`` (channel mean); any other shape is an error."""
    x = np.asarray(wav, dtype=np.float32)
    if x.ndim == 2:
        return x.mean(axis=0)
    if x.ndim != 1:
        raise ValueError(f"audio must be [C, T] or [T]; got shape {x.shape}")
    return x


def resample(wav: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample the last axis (``[T]`` or ``[C, T]``) with julius (band-limited sinc) from
    ``from_rate`` to ``to_rate`` Hz; identity when the rates match. Returns float32."""
    if from_rate == to_rate:
        return np.asarray(wav, dtype=np.float32)
    import torch

    from musicgen.modules.audio import resample as resample_tensor  # the one julius call

    x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))
    return resample_tensor(x, int(from_rate), int(to_rate)).numpy().astype(np.float32)


def crop(wav: np.ndarray, num_samples: int) -> np.ndarray:
    """The first ``num_samples`` samples of ``[..., T]`` (shorter audio is returned whole)."""
    return wav[..., :num_samples]


def loudness_lufs(wav: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness (ITU-R BS.1770-4, pyloudnorm) of ``[C, T]``; -inf for silence.

    Clips shorter than one 400 ms gating block are measured after zero padding to 400 ms. More than
    ``MAX_LOUDNESS_CHANNELS`` channels raise ``ValueError`` (BS.1770 gives no weights for them).
    """
    import pyloudnorm

    x = np.asarray(wav, dtype=np.float64)
    if x.ndim == 1:
        x = x[None]
    if not 1 <= x.shape[0] <= MAX_LOUDNESS_CHANNELS:
        raise ValueError(f"loudness (ITU-R BS.1770, pyloudnorm) is defined for 1 to "
                         f"{MAX_LOUDNESS_CHANNELS} channels; this audio has {x.shape[0]}")
    x = x.T
    block = int(np.ceil(0.4 * sample_rate))
    if x.shape[0] < block:
        x = np.pad(x, ((0, block - x.shape[0]), (0, 0)))
    return float(pyloudnorm.Meter(sample_rate).integrated_loudness(x))


def normalize_loudness(wav: np.ndarray, sample_rate: int, target_lufs: float) -> tuple[np.ndarray, float]:
    """``(wav scaled to target_lufs, measured loudness)``. Silent audio (-inf LUFS) is returned
    unchanged; peaks above 1 are kept (clipping is not applied, as in audiocraft's normalisation)."""
    measured = loudness_lufs(wav, sample_rate)
    if not np.isfinite(measured):
        return np.asarray(wav, dtype=np.float32), measured
    gain = 10.0 ** ((target_lufs - measured) / 20.0)
    return (np.asarray(wav, dtype=np.float32) * np.float32(gain)), measured


def lowpass(wav: np.ndarray, sample_rate: int, cutoff_hz: float, order: int = 8) -> np.ndarray:
    """``[C, T]`` through a zero-phase (forward-backward) Butterworth low-pass of ``order`` at
    ``cutoff_hz``; float32 out. ValueError unless 0 < cutoff < Nyquist. Short clips are padded by at
    most T - 1 samples (scipy's default pad would refuse them)."""
    from scipy.signal import butter, sosfiltfilt

    if not 0 < cutoff_hz < sample_rate / 2:
        raise ValueError(f"low-pass cutoff {cutoff_hz:g} Hz must lie in (0, {sample_rate / 2:g}) Hz "
                         f"(Nyquist at {sample_rate} Hz)")
    x = np.asarray(wav, dtype=np.float64)
    sos = butter(order, cutoff_hz, btype="low", fs=sample_rate, output="sos")
    padlen = min(x.shape[-1] - 1, 3 * (2 * len(sos) + 1))
    return sosfiltfilt(sos, x, axis=-1, padlen=padlen).astype(np.float32)
