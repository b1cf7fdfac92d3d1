"""CPU thread policy for generation: tiny models on one thread, unless the user chose.

A model this small (the built-in ``musicgen-synthcaps-small`` has 1.7 M parameters) spends each
decoding step in a few small matrix products whose cost is below the cost of waking and joining a
second thread; on a shared machine a second thread that has to wait for a busy core makes each step
far slower (the built-in model once took 148 s on 2 threads of a busy machine for what 1 thread did
in 2 s). Models from ``SMALL_MODEL_PARAMS`` parameters on are bound by reading their weights from
memory and use torch's threads.

The user's choice always wins: an explicit ``threads=`` (``MusicGen.set_generation_params``), the
environment (``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``), or a ``torch.set_num_threads`` call that
changed the count after ``musicgen`` was imported. (A call made *before* importing ``musicgen`` is
indistinguishable from torch's default; set ``threads=`` or the environment to be explicit then.)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

SMALL_MODEL_PARAMS = 20_000_000
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
_THREADS_AT_IMPORT = torch.get_num_threads()


def user_set_threads() -> bool:
    """Whether the environment or a ``torch.set_num_threads`` call (after import) chose a count."""
    return any(os.environ.get(v) for v in THREAD_ENV) or torch.get_num_threads() != _THREADS_AT_IMPORT


def pick_threads(num_params: int, explicit: int | None = None) -> int:
    """The intra-op thread count to generate with for a model of ``num_params`` parameters."""
    if explicit is not None:
        if not isinstance(explicit, int) or isinstance(explicit, bool) or explicit < 1:
            raise ValueError(f"threads must be a positive int or None (automatic), got {explicit!r}")
        return explicit
    if user_set_threads():
        return torch.get_num_threads()
    return 1 if num_params < SMALL_MODEL_PARAMS else torch.get_num_threads()


#: the thread counts generations ran with since a caller that reports speed last cleared it (e.g.
#: ``bench``'s run summary: torch's count outside ``generate`` is not the one it used)
USED: set[int] = set()


@contextlib.contextmanager
def generation_threads(num_params: int, explicit: int | None = None,
                       device: torch.device | str = "cpu") -> Iterator[int]:
    """Run the block with :func:`pick_threads`'s count (CPU only); restores the previous count."""
    before = torch.get_num_threads()
    n = pick_threads(num_params, explicit) if torch.device(device).type == "cpu" else before
    if n != before:
        torch.set_num_threads(n)
    USED.add(n)
    try:
        yield n
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
