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

Each layout above is checked against :meth:`CodebooksPattern.draw` by the tests.
Index tensors are computed with tensor arithmetic (no Python loop over frames) and cached per
(T, device), so build and revert are a single scatter / gather each.
"""

from __future__ import annotations

import difflib
from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch

__all__ = ["CodebooksPattern", "DelayPattern", "StepPattern", "get_pattern", "pattern_names"]


def _check_frames(num_frames: object, what: str = "number of frames T") -> int:
    if isinstance(num_frames, bool) or not isinstance(num_frames, int):
        raise TypeError(f"{what} must be an int, got {type(num_frames).__name__} {num_frames!r}")
    if num_frames <= 0:
        raise ValueError(f"{what} must be positive, got {num_frames}")
    return num_frames


class CodebooksPattern:
    """Placement of K codebooks x T frames onto S sequence steps.

    Subclasses define :meth:`_steps` (the step of every ``(k, t)``, ``[K, T]``), :meth:`num_steps`
    and :meth:`num_frames` (its inverse). Everything else is derived from the step index.

    Attributes:
        name: the registry name (``"delay"``, ...).
        num_codebooks: K, the number of codebooks the pattern was built for.
        delays: per-codebook delays for delay-type patterns, ``None`` for the others.
        max_delay: ``max(delays)`` (the tail of extra steps after the last frame), 0 where no delays.
    """

    delays: tuple[int, ...] | None = None
    max_delay: int = 0
    cache_size = 16  # (T, device) entries of index tensors kept, least recently used dropped

    def __init__(self, name: str, num_codebooks: int) -> None:
        _check_frames(num_codebooks, "num_codebooks")
        self.name = name
        self.num_codebooks = num_codebooks
        self._cache: OrderedDict[tuple[int, str], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = (
            OrderedDict()
        )

    # -- what a subclass defines ------------------------------------------------------------
    def _steps(self, num_frames: int) -> torch.Tensor:
        """LongTensor ``[K, T]`` on CPU: the step of each code ``(k, t)``."""
        raise NotImplementedError

    def num_steps(self, num_frames: int) -> int:
        """S, the number of sequence steps for ``num_frames`` (T) frames."""
        raise NotImplementedError

    def num_frames(self, num_steps: int) -> int:
        """T, the number of frames a sequence of ``num_steps`` (S) steps holds (inverse of num_steps)."""
        raise NotImplementedError

    # -- derived index tensors (cached and shared between calls: treat them as read-only) ------
    def _indices(self, num_frames: int, device: torch.device | str | None = None):
        _check_frames(num_frames)
        device = torch.device("cpu") if device is None else torch.device(device)
        key = (num_frames, str(device))
        if key in self._cache:
            self._cache.move_to_end(key)
        else:
            steps = self._steps(num_frames)
            num_steps = self.num_steps(num_frames)
            K = self.num_codebooks
            frames = torch.full((K, num_steps), -1, dtype=torch.long)
            frames.scatter_(1, steps, torch.arange(num_frames).expand(K, num_frames).contiguous())
            entry = (steps.to(device), (frames >= 0).to(device), frames.to(device))
            self._cache[key] = entry
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return self._cache[key]

    def step_index(self, num_frames: int, device: torch.device | str | None = None) -> torch.Tensor:
        """LongTensor ``[K, T]``: the sequence step at which code ``(k, t)`` is placed (cached)."""
        return self._indices(num_frames, device)[0]

    def valid_mask(self, num_frames: int, device: torch.device | str | None = None) -> torch.Tensor:
        """BoolTensor ``[K, S]``: True where a real code is placed, False where the special token is."""
        return self._indices(num_frames, device)[1]

    def frame_index(self, num_frames: int, device: torch.device | str | None = None) -> torch.Tensor:
        """LongTensor ``[K, S]``: the frame t placed at step s of codebook k, -1 where none."""
        return self._indices(num_frames, device)[2]

    # -- build / revert ---------------------------------------------------------------------
    def _check_codebooks(self, tensor: torch.Tensor, what: str) -> None:
        if tensor.shape[1] != self.num_codebooks:
            raise ValueError(
                f"{what} has K={tensor.shape[1]} codebooks (shape {tuple(tensor.shape)}) but pattern "
                f"{self.name!r} was built for num_codebooks={self.num_codebooks}"
            )

    def build(self, codes: torch.Tensor, special_token: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Interleave codes into a sequence.

        Args:
            codes: LongTensor ``[B, K, T]`` (any integer dtype; the output keeps it).
            special_token: the id written where no code is placed (usually the codec's cardinality).
        Returns:
            seq ``[B, K, S]`` and the validity mask ``[K, S]`` (True where a real code is placed).
        """
        if not isinstance(codes, torch.Tensor):
            raise TypeError(f"codes must be a torch.Tensor [B, K, T], got {type(codes).__name__}")
        if codes.ndim != 3:
            raise ValueError(f"codes must have shape [B, K, T], got {codes.ndim} dims {tuple(codes.shape)}")
        if codes.dtype.is_floating_point or codes.dtype.is_complex or codes.dtype == torch.bool:
            raise TypeError(f"codes must be an integer tensor (torch.long), got dtype {codes.dtype}")
        if isinstance(special_token, bool) or not isinstance(special_token, int):
            raise TypeError(f"special_token must be an int, got {type(special_token).__name__}")
        self._check_codebooks(codes, "codes")
        B, K, T = codes.shape
        steps, mask, _ = self._indices(_check_frames(T, "codes' number of frames T"), codes.device)
        seq = codes.new_full((B, K, self.num_steps(T)), special_token)
        seq.scatter_(2, steps.expand(B, K, T), codes)
        return seq, mask.clone()

    def revert(self, seq: torch.Tensor) -> torch.Tensor:
        """De-interleave ``[B, K, S, ...]`` (codes, logits, ...) back to ``[B, K, T, ...]``.

        T is ``num_frames(S)``; values at steps where nothing is placed are dropped. Every (k, t)
        is placed by every pattern, so all reverted values are real (no mask needed).
        """
        if not isinstance(seq, torch.Tensor):
            raise TypeError(f"revert expects a torch.Tensor [B, K, S, ...], got {type(seq).__name__}")
        if seq.ndim < 3:
            raise ValueError(f"revert expects shape [B, K, S, ...], got {seq.ndim} dims {tuple(seq.shape)}")
        self._check_codebooks(seq, "sequence")
        B, K, S = seq.shape[:3]
        T = self.num_frames(S)
        steps = self.step_index(T, seq.device)
        rest = seq.shape[3:]
        index = steps.view(1, K, T, *([1] * len(rest))).expand(B, K, T, *rest)
        return seq.gather(2, index)

    # -- documentation ----------------------------------------------------------------------
    def draw(self, num_frames: int) -> str:
        """Text drawing of the layout (rows: codebooks, columns: steps, ``.``: special token)."""
        frames = self.frame_index(num_frames)
        lines = []
        for k, row in enumerate(frames.tolist()):
            cells = " ".join("." if t < 0 else str(t) for t in row)
            lines.append(f"k{k}: {cells}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        extra = f", delays={list(self.delays)}" if self.delays is not None else ""
        return f"{type(self).__name__}(name={self.name!r}, num_codebooks={self.num_codebooks}{extra})"


class DelayPattern(CodebooksPattern):
    """Code ``(k, t)`` at step ``t + delays[k]``; S = T + max(delays). Parallel is all-zero delays."""

    def __init__(self, name: str, num_codebooks: int, delays: Sequence[int]) -> None:
        super().__init__(name, num_codebooks)
        delays = list(delays)
        if len(delays) != num_codebooks:
            raise ValueError(
                f"pattern {name!r}: got {len(delays)} delays {delays} for num_codebooks={num_codebooks}; "
                "give one delay per codebook"
            )
        for d in delays:
            if isinstance(d, bool) or not isinstance(d, int) or d < 0:
                raise ValueError(f"pattern {name!r}: delays must be non-negative ints, got {delays}")
        self.delays = tuple(delays)
        self.max_delay = max(delays)

    def _steps(self, num_frames: int) -> torch.Tensor:
        delays = torch.tensor(self.delays, dtype=torch.long)
        return torch.arange(num_frames).unsqueeze(0) + delays.unsqueeze(1)

    def num_steps(self, num_frames: int) -> int:
        return _check_frames(num_frames) + self.max_delay

    def num_frames(self, num_steps: int) -> int:
        _check_frames(num_steps, "number of steps S")
        if num_steps <= self.max_delay:
            raise ValueError(
                f"pattern {self.name!r}: a sequence of S={num_steps} steps holds no frame "
                f"(needs S > max delay {self.max_delay})"
            )
        return num_steps - self.max_delay


class StepPattern(CodebooksPattern):
    """A pattern given by ``steps_fn(T) -> [K, T]`` with ``S = steps_per_frame * T``."""

    def __init__(
        self,
        name: str,
        num_codebooks: int,
        steps_per_frame: int,
        steps_fn: Callable[[int, int], torch.Tensor],
    ) -> None:
        super().__init__(name, num_codebooks)
        self.steps_per_frame = steps_per_frame
        self._steps_fn = steps_fn

    def _steps(self, num_frames: int) -> torch.Tensor:
        return self._steps_fn(self.num_codebooks, num_frames)

    def num_steps(self, num_frames: int) -> int:
        return self.steps_per_frame * _check_frames(num_frames)

    def num_frames(self, num_steps: int) -> int:
        _check_frames(num_steps, "number of steps S")
        if num_steps % self.steps_per_frame:
            raise ValueError(
                f"pattern {self.name!r}: S={num_steps} steps is not a multiple of {self.steps_per_frame} "
                f"steps per frame"
            )
        return num_steps // self.steps_per_frame


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
    _check_frames(num_codebooks, "num_codebooks")
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
    _check_frames(K, "num_codebooks")
    return DelayPattern("partial_delay", K, [0] + [_check_delay("partial_delay", delay)] * (K - 1))


def _flattening(K: int) -> CodebooksPattern:
    return StepPattern("flattening", K, K, _flattening_steps)


def _partial_flattening(K: int) -> CodebooksPattern:
    _need_fine_codebooks("partial_flattening", K)
    return StepPattern("partial_flattening", K, 2, _partial_flattening_steps)


def _coarse_first(K: int) -> CodebooksPattern:
    _need_fine_codebooks("coarse_first", K)
    return StepPattern("coarse_first", K, 2, _coarse_first_steps)


def _stereo_delay(K: int) -> CodebooksPattern:
    pairs = _stereo_pairs("stereo_delay", K)
    return DelayPattern("stereo_delay", K, [j for j in range(pairs) for _ in range(2)])


def _stereo_partial_delay(K: int, delay: int = 1) -> CodebooksPattern:
    pairs = _stereo_pairs("stereo_partial_delay", K)
    delay = _check_delay("stereo_partial_delay", delay)
    return DelayPattern("stereo_partial_delay", K, [0, 0] + [delay] * (2 * pairs - 2))


_FACTORIES: dict[str, Callable[..., CodebooksPattern]] = {
    "parallel": _parallel,
    "delay": _delay,
    "partial_delay": _partial_delay,
    "flattening": _flattening,
    "partial_flattening": _partial_flattening,
    "coarse_first": _coarse_first,
    "stereo_delay": _stereo_delay,
    "stereo_partial_delay": _stereo_partial_delay,
}

_OPTIONS: dict[str, tuple[str, ...]] = {"delay": ("delays",), "partial_delay": ("delay",),
                                        "stereo_partial_delay": ("delay",)}


def pattern_names() -> list[str]:
    """All pattern names accepted by :func:`get_pattern`."""
    return list(_FACTORIES)


def get_pattern(name: str, num_codebooks: int, **options) -> CodebooksPattern:
    """The pattern ``name`` for ``num_codebooks`` codebooks (stereo: total over both channels).

    Options: ``delay`` takes ``delays`` (one non-negative int per codebook, default
    ``[0, 1, ..., K-1]``); ``partial_delay`` and ``stereo_partial_delay`` take ``delay`` (the shared
    delay of the finer codebooks, default 1). The other patterns take none.
    """
    if name not in _FACTORIES:
        close = difflib.get_close_matches(str(name), list(_FACTORIES), n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"unknown codebook pattern {name!r}.{hint} Known patterns: {', '.join(_FACTORIES)}")
    allowed = _OPTIONS.get(name, ())
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(
            f"pattern {name!r} got unknown options {unknown}; it accepts {list(allowed) or 'no options'}"
        )
    _check_frames(num_codebooks, "num_codebooks")
    return _FACTORIES[name](num_codebooks, **options)
