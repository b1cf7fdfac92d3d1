"""Codebook interleaving patterns: how K parallel token streams become one autoregressive sequence.

The codec gives codes ``[B, K, T]`` (K codebooks, T frames). A pattern places each code ``(k, t)``
at one sequence step ``s`` of a sequence ``[B, K, S]``; the LM predicts all K rows of a step at
once. Steps where a codebook has no code hold the special token. The sequence has NO leading empty
step: the LM feeds ``[special, seq[..., :-1]]`` (shifted right by one) as input and predicts
``seq``, so the code at step ``s`` is predicted from everything at steps ``< s``; codes at the same
step are predicted in parallel (independently given the past).

Usage::

    p = get_pattern("delay", num_codebooks=4)
    seq, mask = p.build(codes, special_token)   # [B, K, T] -> [B, K, S], mask [K, S] (True = real code)
    logits = p.revert(seq_logits)               # [B, K, S, ...] -> [B, K, T, ...]
    p.num_steps(T)                              # S
    p.step_index(T)                             # [K, T] step of each (k, t)
    p.valid_mask(T)                             # [K, S] same as the mask from build
    p.frame_index(T)                            # [K, S] frame placed at each step, -1 where none
    p.channels, p.max_delay, p.steps_per_frame  # 2 for stereo patterns; delay tail; steps per frame

Layouts for K=4, T=3 (rows: codebooks, columns: steps, entry: the frame placed there, ``.``: the
special token). Paper Table 4 step counts for T=1500, K=4 are in brackets (the delay tail of
``max(delays)`` extra steps is not counted in the paper).

parallel: every codebook at step t. S = T [1500].

    k0: 0 1 2
    k1: 0 1 2
    k2: 0 1 2
    k3: 0 1 2

delay (default delays [0, 1, ..., K-1]; any non-negative per-codebook delays): step t + d_k.
S = T + max(delays) [1500].

    k0: 0 1 2 . . .
    k1: . 0 1 2 . .
    k2: . . 0 1 2 .
    k3: . . . 0 1 2

partial_delay (codebook 0 undelayed, codebooks 1..K-1 share one delay, default 1): S = T + delay
[1500].

    k0: 0 1 2 .
    k1: . 0 1 2
    k2: . 0 1 2
    k3: . 0 1 2

flattening (full unroll, one code per step): step t*K + k. S = K*T [6000].

    k0: 0 . . . 1 . . . 2 . . .
    k1: . 0 . . . 1 . . . 2 . .
    k2: . . 0 . . . 1 . . . 2 .
    k3: . . . 0 . . . 1 . . . 2

partial_flattening (each frame in two steps: codebook 0, then codebooks 1..K-1 together):
(0, t) -> 2t, (k>0, t) -> 2t+1. S = 2T [3000].

    k0: 0 . 1 . 2 .
    k1: . 0 . 1 . 2
    k2: . 0 . 1 . 2
    k3: . 0 . 1 . 2

coarse_first (codebook 0 for all frames, then codebooks 1..K-1 together frame by frame):
(0, t) -> t, (k>0, t) -> T + t. S = 2T [3000].

    k0: 0 1 2 . . .
    k1: . . . 0 1 2
    k2: . . . 0 1 2
    k3: . . . 0 1 2

Stereo. ``num_codebooks`` is the TOTAL K (8 for the released stereo checkpoints) and must be even.
Codebooks are channel-interleaved ``[L0, R0, L1, R1, ...]``: audiocraft's
``InterleaveStereoCompressionModel`` (default ``per_timestep=False``) encodes each channel with the
mono codec and rearranges ``c b k t -> b (k c) t``; transformers' ``build_delay_pattern_mask`` for
``audio_channels=2`` likewise repeats each delay row twice. audiocraft's stereo fine-tuning grid
(``grids/musicgen/musicgen_stereo_finetune_32khz.py``) sets
``codebooks_pattern.delay.delays=[0, 0, 1, 1, 2, 2, 3, 3]``. So left and right codebook j share a
step and pair j is delayed by j.

stereo_delay (pair j delayed by j): S = T + K/2 - 1. For K=8, T=3:

    k0: 0 1 2 . . .
    k1: 0 1 2 . . .
    k2: . 0 1 2 . .
    k3: . 0 1 2 . .
    k4: . . 0 1 2 .
    k5: . . 0 1 2 .
    k6: . . . 0 1 2
    k7: . . . 0 1 2

stereo_partial_delay (pair 0 undelayed, the other pairs share one delay, default 1): delays
[0, 0, 1, 1, 1, 1, 1, 1]. For K=8, T=3:

    k0: 0 1 2 .
    k1: 0 1 2 .
    k2: . 0 1 2
    k3: . 0 1 2
    k4: . 0 1 2
    k5: . 0 1 2
    k6: . 0 1 2
    k7: . 0 1 2

Each layout above is checked against :meth:`CodebooksPattern.draw` by the tests. The classes and their
index mechanics are in ``musicgen.modules.pattern_types``.

Step counts, for reports and planning: ``pattern_steps(name, num_codebooks, num_frames)`` (or
``p.step_counts(T)``) gives a ``PatternSteps`` with the Table 4 count (``steps``), the delay tail
(``tail``), their sum (``total == p.num_steps(T)``) and the formula (``"T"``, ``"2T"``, ``"K·T"``).
``pattern_channels(name)`` is 2 for the stereo patterns, 1 for the others, as ``p.channels``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from musicgen.modules.pattern_types import (
    CodebooksPattern,
    DelayPattern,
    PatternSteps,
    StepPattern,
    positive_int,
)

__all__ = ["CodebooksPattern", "DelayPattern", "PatternSteps", "StepPattern", "get_pattern",
           "pattern_channels", "pattern_names", "pattern_steps"]


def _fine_rows(num_codebooks: int, coarse: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
    """Stack row ``coarse`` [T] for codebook 0 and ``fine`` [T] for codebooks 1..K-1 -> [K, T]."""
    return torch.cat([coarse.unsqueeze(0), fine.unsqueeze(0).expand(num_codebooks - 1, -1)], dim=0)


def _flattening_steps(K: int, T: int) -> torch.Tensor:
    return torch.arange(T).unsqueeze(0) * K + torch.arange(K).unsqueeze(1)


def _partial_flattening_steps(K: int, T: int) -> torch.Tensor:
    t = torch.arange(T)
    return _fine_rows(K, 2 * t, 2 * t + 1)


def _coarse_first_steps(K: int, T: int) -> torch.Tensor:
    t = torch.arange(T)
    return _fine_rows(K, t, T + t)


def _need_fine_codebooks(name: str, num_codebooks: int) -> None:
    if num_codebooks < 2:
        raise ValueError(f"pattern {name!r} needs num_codebooks >= 2, got {num_codebooks}")


def _stereo_pairs(name: str, num_codebooks: int) -> int:
    positive_int(num_codebooks, "num_codebooks")
    if num_codebooks % 2:
        raise ValueError(
            f"pattern {name!r}: num_codebooks is the total over both channels, interleaved "
            f"[L0, R0, L1, R1, ...], so it must be even; got {num_codebooks}"
        )
    return num_codebooks // 2


def _check_delay(name: str, delay: object) -> int:
    if isinstance(delay, bool) or not isinstance(delay, int) or delay < 0:
        raise ValueError(f"pattern {name!r}: delay must be a non-negative int, got {delay!r}")
    return delay


def _parallel(K: int) -> CodebooksPattern:
    return DelayPattern("parallel", K, [0] * K)


def _delay(K: int, delays: Sequence[int] | None = None) -> CodebooksPattern:
    return DelayPattern("delay", K, list(range(K)) if delays is None else delays)


def _partial_delay(K: int, delay: int = 1) -> CodebooksPattern:
    positive_int(K, "num_codebooks")
    return DelayPattern("partial_delay", K, [0] + [_check_delay("partial_delay", delay)] * (K - 1))


def _flattening(K: int) -> CodebooksPattern:
    return StepPattern("flattening", K, K, _flattening_steps, steps_formula="K·T")


def _partial_flattening(K: int) -> CodebooksPattern:
    _need_fine_codebooks("partial_flattening", K)
    return StepPattern("partial_flattening", K, 2, _partial_flattening_steps)


def _coarse_first(K: int) -> CodebooksPattern:
    _need_fine_codebooks("coarse_first", K)
    return StepPattern("coarse_first", K, 2, _coarse_first_steps)


def _stereo_delay(K: int) -> CodebooksPattern:
    pairs = _stereo_pairs("stereo_delay", K)
    return DelayPattern("stereo_delay", K, [j for j in range(pairs) for _ in range(2)], channels=2)


def _stereo_partial_delay(K: int, delay: int = 1) -> CodebooksPattern:
    pairs = _stereo_pairs("stereo_partial_delay", K)
    delay = _check_delay("stereo_partial_delay", delay)
    return DelayPattern("stereo_partial_delay", K, [0, 0] + [delay] * (2 * pairs - 2), channels=2)


@dataclass(frozen=True)
class _Entry:
    factory: Callable[..., CodebooksPattern]
    options: tuple[str, ...] = ()  # keyword options the factory takes
    channels: int = 1  # what every pattern it makes has as ``channels``


_PATTERNS: dict[str, _Entry] = {
    "parallel": _Entry(_parallel),
    "delay": _Entry(_delay, ("delays",)),
    "partial_delay": _Entry(_partial_delay, ("delay",)),
    "flattening": _Entry(_flattening),
    "partial_flattening": _Entry(_partial_flattening),
    "coarse_first": _Entry(_coarse_first),
    "stereo_delay": _Entry(_stereo_delay, channels=2),
    "stereo_partial_delay": _Entry(_stereo_partial_delay, ("delay",), channels=2),
}


def pattern_names() -> list[str]:
    """All pattern names accepted by :func:`get_pattern`."""
    return list(_PATTERNS)


def _entry(name: str) -> _Entry:
    if name not in _PATTERNS:
        close = difflib.get_close_matches(str(name), list(_PATTERNS), n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"unknown codebook pattern {name!r}.{hint} Known patterns: {', '.join(_PATTERNS)}")
    return _PATTERNS[name]


def pattern_channels(name: str) -> int:
    """The ``channels`` of every pattern ``name`` makes: 2 for the stereo patterns, 1 for the others."""
    return _entry(name).channels


def get_pattern(name: str, num_codebooks: int, **options) -> CodebooksPattern:
    """The pattern ``name`` for ``num_codebooks`` codebooks (stereo: total over both channels).

    Options: ``delay`` takes ``delays`` (one non-negative int per codebook, default
    ``[0, 1, ..., K-1]``); ``partial_delay`` and ``stereo_partial_delay`` take ``delay`` (the shared
    delay of the finer codebooks, default 1). The other patterns take none.
    """
    entry = _entry(name)
    unknown = sorted(set(options) - set(entry.options))
    if unknown:
        accepted = list(entry.options) or "no options"
        raise TypeError(f"pattern {name!r} got unknown options {unknown}; it accepts {accepted}")
    positive_int(num_codebooks, "num_codebooks")
    return entry.factory(num_codebooks, **options)


def pattern_steps(name: str, num_codebooks: int, num_frames: int, **options) -> PatternSteps:
    """``get_pattern(name, num_codebooks, **options).step_counts(num_frames)``: Table 4's steps, the
    delay tail, their total (``num_steps``) and the formula, for a clip of ``num_frames`` frames."""
    return get_pattern(name, num_codebooks, **options).step_counts(num_frames)
