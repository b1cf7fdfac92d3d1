"""The pattern classes behind ``musicgen.modules.patterns``: the index mechanics every pattern shares.

A pattern places code ``(k, t)`` of codes ``[B, K, T]`` at sequence step ``s`` of ``[B, K, S]``. A
subclass says only where (``_steps``: ``[K, T]`` steps) and how long (``num_steps`` and its inverse
``num_frames``); building, reverting, masks and drawings are derived here, with index tensors computed
by tensor arithmetic (no Python loop over frames) and cached per ``(T, device)``, so build and revert
are a single scatter / gather each.

- ``DelayPattern``: code ``(k, t)`` at step ``t + delays[k]`` (parallel, delay, partial delay and their
  stereo forms);
- ``StepPattern``: ``S = steps_per_frame * T`` steps laid out by a function (flattening, partial
  flattening, coarse first).

Attributes that describe a pattern without building anything: ``name``, ``num_codebooks`` (K, total
over both channels for stereo), ``channels`` (2 for stereo patterns, whose codebooks are interleaved
``[L0, R0, L1, R1, ...]``; 1 otherwise), ``delays`` / ``max_delay``, ``steps_per_frame`` and
``steps_formula`` (the step count per frame as in the paper's Table 4: ``"T"``, ``"2T"``, ``"K·T"``).
``step_counts(T)`` returns them for a clip of ``T`` frames as a ``PatternSteps``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

__all__ = ["CodebooksPattern", "DelayPattern", "PatternSteps", "StepPattern"]


@dataclass(frozen=True)
class PatternSteps:
    """Autoregressive steps of one pattern for ``num_frames`` (T) frames.

    ``steps`` is the count of the paper's Table 4 (``steps_per_frame * T``: T for the delay patterns,
    2T, K·T), which leaves out the delay tail; ``tail`` is that tail (``max_delay`` steps after the
    last frame); ``total = steps + tail`` is what the LM really generates (``num_steps(T)``).
    """

    pattern: str
    num_codebooks: int
    channels: int
    num_frames: int
    steps: int
    tail: int
    formula: str

    @property
    def total(self) -> int:
        return self.steps + self.tail


def positive_int(num_frames: object, what: str = "number of frames T") -> int:
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
        num_codebooks: K, the number of codebooks the pattern was built for (total over channels).
        channels: the audio channels whose codebooks are interleaved ``[L0, R0, L1, R1, ...]``: 2 for a
            stereo pattern (K even), 1 otherwise.
        delays: per-codebook delays for delay-type patterns, ``None`` for the others.
        max_delay: ``max(delays)`` (the tail of extra steps after the last frame), 0 where no delays.
        steps_per_frame: steps per frame without the tail (1, 2 or K); ``steps_formula`` says it as the
            paper's Table 4 does (``"T"``, ``"2T"``, ``"K·T"``).
    """

    delays: tuple[int, ...] | None = None
    max_delay: int = 0
    steps_per_frame: int = 1
    steps_formula: str = "T"
    cache_size = 16  # (T, device) entries of index tensors kept, least recently used dropped

    def __init__(self, name: str, num_codebooks: int, channels: int = 1) -> None:
        positive_int(num_codebooks, "num_codebooks")
        if channels not in (1, 2) or num_codebooks % channels:
            raise ValueError(f"pattern {name!r}: channels must be 1 or 2 and divide num_codebooks="
                             f"{num_codebooks}, got {channels}")
        self.name = name
        self.num_codebooks = num_codebooks
        self.channels = channels
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

    def step_counts(self, num_frames: int) -> PatternSteps:
        """Steps for ``num_frames`` frames: Table 4's count, the delay tail and the formula."""
        steps = self.steps_per_frame * positive_int(num_frames)
        return PatternSteps(self.name, self.num_codebooks, self.channels, num_frames, steps, self.max_delay,
                            self.steps_formula)

    # -- derived index tensors (cached and shared between calls: treat them as read-only) ------
    def _indices(self, num_frames: int, device: torch.device | str | None = None):
        positive_int(num_frames)
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
        steps, mask, _ = self._indices(positive_int(T, "codes' number of frames T"), codes.device)
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
        extra += f", channels={self.channels}" if self.channels != 1 else ""
        return f"{type(self).__name__}(name={self.name!r}, num_codebooks={self.num_codebooks}{extra})"


class DelayPattern(CodebooksPattern):
    """Code ``(k, t)`` at step ``t + delays[k]``; S = T + max(delays). Parallel is all-zero delays."""

    def __init__(self, name: str, num_codebooks: int, delays: Sequence[int], channels: int = 1) -> None:
        super().__init__(name, num_codebooks, channels)
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
        return positive_int(num_frames) + self.max_delay

    def num_frames(self, num_steps: int) -> int:
        positive_int(num_steps, "number of steps S")
        if num_steps <= self.max_delay:
            raise ValueError(
                f"pattern {self.name!r}: a sequence of S={num_steps} steps holds no frame "
                f"(needs S > max delay {self.max_delay})"
            )
        return num_steps - self.max_delay


class StepPattern(CodebooksPattern):
    """A pattern given by ``steps_fn(K, T) -> [K, T]`` with ``S = steps_per_frame * T``; ``steps_formula``
    names that count (default ``"{steps_per_frame}T"``)."""

    def __init__(
        self,
        name: str,
        num_codebooks: int,
        steps_per_frame: int,
        steps_fn: Callable[[int, int], torch.Tensor],
        steps_formula: str | None = None,
    ) -> None:
        super().__init__(name, num_codebooks)
        self.steps_per_frame = steps_per_frame
        self.steps_formula = steps_formula or (f"{steps_per_frame}T" if steps_per_frame != 1 else "T")
        self._steps_fn = steps_fn

    def _steps(self, num_frames: int) -> torch.Tensor:
        return self._steps_fn(self.num_codebooks, num_frames)

    def num_steps(self, num_frames: int) -> int:
        return self.steps_per_frame * positive_int(num_frames)

    def num_frames(self, num_steps: int) -> int:
        positive_int(num_steps, "number of steps S")
        if num_steps % self.steps_per_frame:
            raise ValueError(
                f"pattern {self.name!r}: S={num_steps} steps is not a multiple of {self.steps_per_frame} "
                f"steps per frame"
            )
        return num_steps // self.steps_per_frame
