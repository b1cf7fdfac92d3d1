"""One ``bench run`` over several processes, GPUs or nodes through torch.distributed (torchrun).

``torchrun --nproc-per-node N -m bench run SUITE --out DIR`` (or ``srun torchrun ...`` under Slurm)
starts N copies of ``bench run``; each reads its rank from the environment torchrun sets (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``) and joins one process group: gloo
on CPU, nccl with ``--device cuda`` (each process on ``cuda:LOCAL_RANK``). Without those variables
(plain ``bench run``) the world has one rank and no process group is made.

What ``World`` gives a run (the phases themselves are ``bench.runner``'s):

- the plan (generator x seed x prompt, in suite order) is dealt round-robin: item ``i`` belongs to
  rank ``i % world_size`` (``shard``); every rank writes its clips and embeddings to the same run
  store under the same content-addressed keys, so a rerun at any world size reuses everything;
- rank 0 holds the run directory's lock (a second run into it still fails); the other ranks work
  under it, joined through the process group;
- after each phase every rank reports ``None`` or its error (``check``): one failed rank fails every
  rank with ``rank R failed: <error>``;
- metric states (float64 sums) are added across ranks with ``all_reduce``; per-item lists that do
  not add (``BaseMetric.flagged``) and per-sample rows are gathered (``all_gather_object``);
- only rank 0 computes records and writes ``results.json``, the samples table and the report.

``BENCH_DIST_TIMEOUT_S`` (default 3600) bounds how long a rank waits for the others at a collective
(a rank that finished its share waits there for the slowest one).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 3600.0


class RankError(RuntimeError):
    """Raised on every rank when one or more ranks failed a phase; names the ranks and errors."""


@dataclass
class World:
    """This process's place in the run: rank, world size and the device it computes on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"
    backend: str | None = None  # None: one process, no process group

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.backend is not None

    # -- the plan ----------------------------------------------------------------------------------
    def owns(self, index: int) -> bool:
        """True when plan item ``index`` (its position in the canonical plan) is this rank's."""
        return index % self.world_size == self.rank

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's items of ``items``, dealt round-robin."""
        return [it for i, it in enumerate(items) if self.owns(i)]

    # -- collectives -------------------------------------------------------------------------------
    def gather(self, obj: Any) -> list[Any]:
        """``obj`` of every rank, in rank order (every rank gets the list)."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def check(self, error: BaseException | None, phase: str) -> None:
        """Every rank says whether ``phase`` failed on it; raises ``RankError`` on every rank when one
        did (one process: re-raises ``error`` itself)."""
        if not self.distributed:
            if error is not None:
                raise error
            return
        message = None if error is None else _describe(error)
        failed = [(r, m) for r, m in enumerate(self.gather(message)) if m is not None]
        if failed:
            raise RankError("; ".join(f"rank {r} failed ({phase}): {m}" for r, m in failed))

    def sum_arrays(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Element-wise sums over ranks of float64 arrays; a key some ranks lack (lazily shaped
        state) counts as zeros there. Keys are reduced in sorted order on every rank."""
        if not self.distributed:
            return dict(arrays)
        import torch
        import torch.distributed as dist

        shapes: dict[str, tuple[int, ...]] = {}
        for rank, theirs in enumerate(self.gather({k: tuple(np.shape(v)) for k, v in arrays.items()})):
            for k, shape in theirs.items():
                if shapes.setdefault(k, shape) != shape:
                    raise RankError(f"state {k!r} has shape {shape} on rank {rank} but {shapes[k]} on "
                                    f"another rank")
        device = self.device if self.backend == "nccl" else "cpu"
        out = {}
        for k in sorted(shapes):
            local = arrays.get(k)
            local = np.zeros(shapes[k]) if local is None else np.array(local, dtype=np.float64, order="C")
            t = torch.from_numpy(local).to(device)  # 0-d stays 0-d (ascontiguousarray would make 1-d)
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
            out[k] = t.cpu().numpy().reshape(shapes[k])
        return out

    def reduce_metric(self, metric: Any) -> None:
        """Add every rank's state of ``metric`` into it (``all_reduce``) and gather the per-item lists
        that do not add (``flagged`` clip ids, sorted). Every rank calls it for the same metrics in
        the same order; one process: nothing to do."""
        if not self.distributed:
            return
        metric.state = self.sum_arrays(metric.state)
        flagged = getattr(metric, "flagged", None)
        if isinstance(flagged, dict):
            merged: dict[str, list[str]] = {}
            for theirs in self.gather(flagged):
                for flag, keys in theirs.items():
                    merged.setdefault(flag, []).extend(keys)
            metric.flagged = {flag: sorted(keys) for flag, keys in merged.items()}

    def close(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
            self.backend = None


def _describe(error: BaseException) -> str:
    text = str(error)
    return text if isinstance(error, RuntimeError) and text else f"{type(error).__name__}: {text}"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not an integer") from None


def init_world(device: str = "cpu") -> World:
    """The world torchrun describes in the environment (one rank when it describes none), with the
    process group made and this rank's device chosen (``cuda`` -> ``cuda:LOCAL_RANK``)."""
    world_size = _env_int("WORLD_SIZE", 1)
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"RANK={rank} and WORLD_SIZE={world_size} do not describe a rank of a world")
    if world_size == 1:
        return World(device=device)
    import torch
    import torch.distributed as dist

    if device == "cuda":
        if not torch.cuda.is_available() or local_rank >= torch.cuda.device_count():
            raise ValueError(f"rank {rank} wants cuda:{local_rank} (LOCAL_RANK) but "
                             f"{torch.cuda.device_count()} CUDA device(s) are visible")
        torch.cuda.set_device(local_rank)
        device, backend = f"cuda:{local_rank}", "nccl"
    else:
        backend = "gloo"
    timeout_s = float(os.environ.get("BENCH_DIST_TIMEOUT_S", DEFAULT_TIMEOUT_S))
    dist.init_process_group(backend, rank=rank, world_size=world_size,
                            timeout=dt.timedelta(seconds=timeout_s))
    return World(rank=rank, world_size=world_size, local_rank=local_rank, device=device, backend=backend)
