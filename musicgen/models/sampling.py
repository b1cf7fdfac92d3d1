"""Next-token sampling for the LM decode loop: greedy, temperature, top-k, top-p, CFG on logits.

All K codebooks of all B rows are sampled in one pass: one fused ``topk`` (or ``sort`` for top-p)
over ``[B, K, V]``, a softmax over the candidates, a cumulative sum, and ``searchsorted`` of one
uniform number per (row, codebook) into that CDF (inverse-CDF sampling). No Python loop over K.

Semantics (chosen to match audiocraft's ``LMModel._sample_next_token``):

- Greedy (``argmax`` of the raw logits) when ``use_sampling`` is False or ``temperature == 0``.
- Otherwise the distribution is ``softmax(logits / temperature)``, truncated by top-p when
  ``top_p > 0`` (top-p takes precedence and top_k is then ignored, as in audiocraft), else by
  top-k when ``top_k > 0``, else untruncated.
- top-p keeps, in descending order of probability, every token whose preceding cumulative mass is
  ``<= top_p`` (audiocraft's ``sample_top_p``: a token is dropped when ``cumsum - p > top_p``); the
  most likely token is always kept.
- top-k keeps exactly ``min(top_k, V)`` tokens. audiocraft and transformers keep every token tied
  with the k-th value; here ties at the boundary are broken by ``torch.topk``'s order (only
  matters for exactly equal float logits).
- transformers' generate applies top-k and then top-p when both are set; this module does not.

Reproducibility: with ``generators`` (one ``torch.Generator`` per row, see
:func:`make_generators`) row b consumes exactly K uniforms from its own generator per call, and
everything else is computed row by row, so a prompt with a given seed gets the same tokens whatever
the batch size or the other rows (given the same logits for that row). With ``generators=None``
the uniforms come from torch's global RNG.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = ["cfg_logits", "make_generators", "sample_next"]


def cfg_logits(cond: torch.Tensor, uncond: torch.Tensor, coef: float) -> torch.Tensor:
    """Classifier-free guidance on logits: ``uncond + (cond - uncond) * coef``.

    ``cond`` and ``uncond`` have the same shape (``[B, K, V]`` in the decode loop); ``coef = 1``
    gives ``cond``, ``coef = 0`` gives ``uncond`` (the paper's default is 3.0).
    """
    if cond.shape != uncond.shape:
        raise ValueError(
            f"cfg_logits: cond and uncond must have the same shape, got {tuple(cond.shape)} "
            f"and {tuple(uncond.shape)}"
        )
    return uncond + (cond - uncond) * coef


def make_generators(seeds: Sequence[int], device: torch.device | str = "cpu") -> list[torch.Generator]:
    """One seeded ``torch.Generator`` on ``device`` per seed (one per prompt of a batch)."""
    generators = []
    for i, seed in enumerate(seeds):
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"make_generators: seeds[{i}] must be an int, got {type(seed).__name__} {seed!r}")
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
        generators.append(generator)
    return generators


def _check_args(use_sampling: bool, temperature: float, top_k: int, top_p: float) -> None:
    if not isinstance(use_sampling, bool):
        raise TypeError(f"use_sampling must be a bool, got {type(use_sampling).__name__}")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise ValueError(f"top_k must be an int >= 0 (0 turns top-k off), got {top_k!r}")
    if isinstance(top_p, bool) or not isinstance(top_p, int | float) or not 0.0 <= top_p <= 1.0:
        raise ValueError(f"top_p must be a number in [0, 1] (0 turns top-p off), got {top_p!r}")
    if (isinstance(temperature, bool) or not isinstance(temperature, int | float)
            or not math.isfinite(temperature) or temperature < 0):
        raise ValueError(f"temperature must be a finite number >= 0 (0 means greedy), got {temperature!r}")


def _check_logits(logits: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"logits must be a torch.Tensor [B, K, V], got {type(logits).__name__}")
    if logits.ndim != 3:
        raise ValueError(f"logits must have shape [B, K, V], got {logits.ndim} dims {tuple(logits.shape)}")
    if not logits.dtype.is_floating_point:
        raise TypeError(f"logits must be a floating point tensor, got dtype {logits.dtype}")
    if logits.shape[-1] == 0:
        raise ValueError(f"logits have an empty vocabulary: shape {tuple(logits.shape)}")


def _check_finite(logits: torch.Tensor) -> None:
    """Raise unless every row's max is finite (NaN, +inf and all -inf rows cannot be sampled)."""
    row_max = logits.amax(dim=-1)
    if bool(torch.isfinite(row_max).all()):
        return
    if bool(torch.isnan(logits).any()):
        problem = "NaN logits"
    elif bool(torch.isposinf(logits).any()):
        problem = "+inf logits"
    else:
        problem = "rows where every logit is -inf (nothing can be sampled)"
    bad = (~torch.isfinite(row_max)).nonzero().tolist()[:5]
    raise ValueError(f"sample_next: {problem}; first bad (row, codebook): {bad}")


def _uniforms(B: int, K: int, generators: Sequence[torch.Generator] | None,
              device: torch.device) -> torch.Tensor:
    """``[B, K]`` float32 uniforms in [0, 1); row b drawn from ``generators[b]`` only."""
    if generators is None:
        return torch.rand(B, K, device=device)
    if len(generators) != B:
        raise ValueError(f"sample_next: got {len(generators)} generators for a batch of B={B} rows; "
                         "give one torch.Generator per row (make_generators(seeds))")
    uniforms = torch.empty(B, K, device=device)
    for b, generator in enumerate(generators):
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generators[{b}] must be a torch.Generator, got {type(generator).__name__}")
        if generator.device.type != device.type:
            raise ValueError(f"generators[{b}] is on {generator.device} but the logits are on {device}")
        torch.rand(K, generator=generator, out=uniforms[b])
    return uniforms


def sample_next(
    logits: torch.Tensor,
    *,
    use_sampling: bool = True,
    temperature: float = 1.0,
    top_k: int = 250,
    top_p: float = 0.0,
    generators: Sequence[torch.Generator] | None = None,
    check_finite: bool = True,
) -> torch.Tensor:
    """Sample one token per row and codebook.

    Args:
        logits: ``[B, K, V]`` float (any float dtype; computed in float32).
        use_sampling: False for greedy decoding.
        temperature: divides the logits; 0 means greedy.
        top_k: keep the k most likely tokens (0: off). Ignored when ``top_p > 0``.
        top_p: nucleus mass in [0, 1] (0: off).
        generators: None, or B ``torch.Generator`` (one per row) on the logits' device.
        check_finite: raise on NaN / +inf logits and on rows that are all -inf. When sampling it
            costs a check of B*K totals (and a device sync on GPU); a hot loop with trusted
            logits, e.g. under CUDA graphs, may turn it off.
    Returns:
        LongTensor ``[B, K]`` of token ids in ``[0, V)``.
    """
    _check_args(use_sampling, temperature, top_k, top_p)
    _check_logits(logits)
    if not use_sampling or temperature == 0:
        if check_finite:
            _check_finite(logits)
        return logits.argmax(dim=-1)
    B, K, V = logits.shape
    uniforms = _uniforms(B, K, generators, logits.device)

    scores = logits.float()
    if temperature != 1:
        scores = scores / temperature
    num_candidates = min(top_k, V) if (top_p == 0 and top_k > 0) else V
    values, indices = scores.topk(num_candidates, dim=-1)  # sorted, descending: [B, K, n]
    probs = torch.softmax(values, dim=-1)  # over the candidates = the renormalised truncated dist
    if top_p > 0:
        before = probs.cumsum(dim=-1) - probs  # mass of the more likely tokens
        probs = probs.masked_fill(before > top_p, 0.0)
    cdf = probs.cumsum(dim=-1)
    total = cdf[..., -1:]
    # NaN / +inf logits and all -inf rows all make the softmax, hence the total, non-finite
    if check_finite and not bool(torch.isfinite(total).all()):
        _check_finite(logits)
        raise ValueError(f"sample_next: logits overflow after dividing by temperature={temperature}")
    # u <= 1 - 2**-24, so in float32 u * total < total for any total >= 1/V: searchsorted (first
    # index whose cdf exceeds the target) always lands on a token with positive mass
    targets = uniforms.unsqueeze(-1) * total
    position = torch.searchsorted(cdf, targets, right=True)
    return indices.gather(-1, position).squeeze(-1)
