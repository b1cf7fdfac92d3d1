"""Memorization: token match rates (paper Sec. 5) and an embedding nearest-neighbour rate.

Token protocol: first-codebook tokens of the first 5 s (250 tokens at 50 Hz) of the greedy
continuation and of the training item; a clip is an exact match when all 250 agree, and a partial
match when at least 80 % agree (position by position).
"""

from __future__ import annotations

import numpy as np

MEMORIZATION_TOKENS = 250
PARTIAL_MATCH = 0.8


def token_match_fraction(generated: np.ndarray, original: np.ndarray,
                         n_tokens: int = MEMORIZATION_TOKENS) -> float:
    """Fraction of equal first-codebook tokens over the first ``n_tokens`` steps.

    ``generated``/``original``: ``[K, T]`` (or ``[T]``) integer tokens; both need ``T >= n_tokens``.
    """
    g = np.asarray(generated)
    o = np.asarray(original)
    g = g[0] if g.ndim == 2 else g
    o = o[0] if o.ndim == 2 else o
    if g.ndim != 1 or o.ndim != 1:
        raise ValueError(f"tokens must be [K, T] or [T]; got {generated.shape} and {original.shape}")
    if len(g) < n_tokens or len(o) < n_tokens:
        raise ValueError(f"memorization compares the first {n_tokens} tokens; got {len(g)} generated "
                         f"and {len(o)} original tokens")
    return float(np.mean(g[:n_tokens] == o[:n_tokens]))


def token_match_rates(pairs: list[tuple[np.ndarray, np.ndarray]], n_tokens: int = MEMORIZATION_TOKENS,
                      partial: float = PARTIAL_MATCH) -> dict[str, float]:
    """``exact_match_rate`` and ``partial_match_rate`` (>= ``partial``) over (generated, original)."""
    fr = np.array([token_match_fraction(g, o, n_tokens) for g, o in pairs])
    return {"exact_match_rate": float(np.mean(fr == 1.0)),
            "partial_match_rate": float(np.mean(fr >= partial))}


def nearest_neighbour_rate(generated: np.ndarray, training: np.ndarray, source_index: np.ndarray) -> float:
    """Rate at which a generated clip's nearest training item (cosine of clip embeddings) is the
    item it was prompted from. ``generated`` ``[N, D]``, ``training`` ``[M, D]``, ``source_index``
    ``[N]`` ints into ``training``."""
    g = np.asarray(generated, dtype=np.float64)
    t = np.asarray(training, dtype=np.float64)
    g = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
    t = t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
    nn = np.argmax(g @ t.T, axis=1)
    return float(np.mean(nn == np.asarray(source_index)))
