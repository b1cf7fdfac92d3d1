"""Cosine similarities: CLAP score and chroma cosine similarity (audiocraft's protocol).

Chroma: 32 kHz audio, power STFT with n_fft = window = 16384, hop 4096, periodic Hann, centred with
reflect padding; librosa's chroma filter bank (12 bins, tuning 0); each frame normalised by its max;
argmax one-hot per frame. Clips shorter than n_fft are zero-padded symmetrically to n_fft first (as
audiocraft's ``ChromaExtractor``). Per clip the cosine of the reference and generated one-hot frames
is summed over the first ``ceil(T / hop)`` frames, ``T`` the common length of both clips (the longer
one is cut); the set value is the sum of cosines over the sum of frame counts.
"""

from __future__ import annotations

import functools
import math

import numpy as np

CHROMA_SAMPLE_RATE = 32000
CHROMA_N_FFT = 16384
CHROMA_HOP = 4096
N_CHROMA = 12


def cosine_similarity(a: np.ndarray, b: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Cosine along the last axis, float64; zero vectors give 0 (torch's ``cosine_similarity``)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    na = np.maximum(np.linalg.norm(a, axis=-1), eps)
    nb = np.maximum(np.linalg.norm(b, axis=-1), eps)
    return (a * b).sum(-1) / (na * nb)


def clap_score(text_embeddings: np.ndarray, audio_embeddings: np.ndarray) -> float:
    """Mean cosine of paired text ``[N, D]`` and audio ``[N, D]`` embeddings."""
    t = np.atleast_2d(text_embeddings)
    a = np.atleast_2d(audio_embeddings)
    if t.shape != a.shape:
        raise ValueError(f"text and audio embeddings must pair up; got {t.shape} vs {a.shape}")
    return float(cosine_similarity(t, a).mean())


@functools.lru_cache(maxsize=4)
def _chroma_filters(sample_rate: int, n_fft: int, n_chroma: int) -> np.ndarray:
    import librosa

    return librosa.filters.chroma(sr=sample_rate, n_fft=n_fft, tuning=0.0, n_chroma=n_chroma).astype(
        np.float64)


def chromagram(wav: np.ndarray, sample_rate: int = CHROMA_SAMPLE_RATE, n_fft: int = CHROMA_N_FFT,
               hop: int = CHROMA_HOP, n_chroma: int = N_CHROMA, argmax: bool = True) -> np.ndarray:
    """Mono ``[T]`` -> chroma ``[frames, n_chroma]`` (max-normalised; one-hot when ``argmax``)."""
    x = np.asarray(wav, dtype=np.float64).reshape(-1)
    if x.size < n_fft:
        pad = n_fft - x.size
        x = np.pad(x, (pad // 2, pad // 2 + pad % 2))
    xp = np.pad(x, (n_fft // 2, n_fft // 2), mode="reflect")
    n_frames = 1 + (xp.size - n_fft) // hop
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    spec = np.abs(np.fft.rfft(xp[idx] * window, axis=-1)) ** 2  # [frames, bins]
    raw = spec @ _chroma_filters(sample_rate, n_fft, n_chroma).T  # [frames, chroma]
    norm = raw / np.maximum(np.abs(raw).max(axis=-1, keepdims=True), 1e-6)
    if not argmax:
        return norm
    onehot = np.zeros_like(norm)
    onehot[np.arange(len(norm)), norm.argmax(-1)] = 1.0
    return onehot


def chroma_cosine_sums(reference: np.ndarray, generated: np.ndarray,
                       sample_rate: int = CHROMA_SAMPLE_RATE) -> tuple[float, int]:
    """(sum of per-frame cosines, frame count) for one pair of mono clips ``[T]`` at 32 kHz."""
    t = min(np.asarray(reference).shape[-1], np.asarray(generated).shape[-1])
    if t == 0:
        raise ValueError("chroma cosine of an empty clip")
    frames = math.ceil(t / CHROMA_HOP)
    cr = chromagram(np.asarray(reference)[..., :t], sample_rate)[:frames]
    cg = chromagram(np.asarray(generated)[..., :t], sample_rate)[:frames]
    return float(cosine_similarity(cr, cg).sum()), frames


def chroma_cosine_similarity(references: list[np.ndarray], generated: list[np.ndarray]) -> float:
    """Frame-count weighted mean chroma cosine over pairs of mono 32 kHz clips."""
    if len(references) != len(generated):
        raise ValueError(f"chroma cosine needs pairs; got {len(references)} references and "
                         f"{len(generated)} generated clips")
    total, frames = 0.0, 0
    for r, g in zip(references, generated, strict=True):
        s, f = chroma_cosine_sums(r, g)
        total, frames = total + s, frames + f
    return total / frames
