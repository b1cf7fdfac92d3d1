"""KL divergence between label distributions (the paper's PaSST protocol).

Per clip, the classifier's logits of each segment ``[S, C]`` go through a softmax and are averaged
over segments into one distribution ``[C]``. The reported value is ``KL(reference || generated)``
with ``eps`` added to the generated probabilities inside the log (audiocraft's
``KLDivLoss(log(p_gen + eps), p_ref)``); ``0 log 0`` counts as 0. The reverse direction adds ``eps``
to the reference probabilities; the symmetric value is the sum of both directions.
"""

from __future__ import annotations

import numpy as np

KL_EPS = 1e-6


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax in float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def clip_label_distribution(segment_logits: np.ndarray) -> np.ndarray:
    """Segment logits ``[S, C]`` -> the clip's label distribution ``[C]`` (mean of softmaxes)."""
    x = np.asarray(segment_logits)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"segment logits must be [S >= 1, C]; got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("segment logits contain NaN or inf")
    return softmax(x, axis=-1).mean(axis=0)


def kl_divergence(p_target: np.ndarray, p_pred: np.ndarray, eps: float = KL_EPS) -> np.ndarray:
    """``sum_c p_target log(p_target / (p_pred + eps))`` over the last axis (``0 log 0 = 0``)."""
    t = np.asarray(p_target, dtype=np.float64)
    p = np.asarray(p_pred, dtype=np.float64)
    if t.shape != p.shape:
        raise ValueError(f"distribution shapes differ: {t.shape} vs {p.shape}")
    safe_t = np.where(t > 0, t, 1.0)
    terms = np.where(t > 0, t * (np.log(safe_t) - np.log(p + eps)), 0.0)
    return terms.sum(axis=-1)


def kl_all_directions(p_reference: np.ndarray, p_generated: np.ndarray,
                      eps: float = KL_EPS) -> dict[str, np.ndarray]:
    """``kl`` = KL(ref || gen) (eps on gen), ``kl_reverse`` = KL(gen || ref) (eps on ref),
    ``kl_symmetric`` = their sum."""
    fwd = kl_divergence(p_reference, p_generated, eps)
    rev = kl_divergence(p_generated, p_reference, eps)
    return {"kl": fwd, "kl_reverse": rev, "kl_symmetric": fwd + rev}
