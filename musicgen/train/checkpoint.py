"""Training checkpoints that resume exactly: safetensors for tensors, JSON for everything else.

Layout of a run's checkpoint folder::

    ckpt/latest                      text: the name of the newest complete checkpoint
    ckpt/step_00000100/state.json    step, scheduler, non-tensor optimizer state, RNG scalars, extras
    ckpt/step_00000100/{group}.safetensors   one file per tensor group (model, ema, optimizer, rng...)

A checkpoint is written into a temporary sibling folder, fsynced, and renamed into place; ``latest``
is then replaced atomically. A killed run therefore leaves either the previous checkpoint or the new
one, never a half-written one. Nothing here uses pickle: optimizer states are split into tensors
(safetensors) and plain values (JSON), and no ``torch.load`` is involved.

Helpers turn the pieces of a training run into ``(tensors, json)`` pairs and back:
``optimizer_state``/``load_optimizer_state``, ``rng_state``/``load_rng_state`` (python ``random``,
numpy's global generator, torch CPU and CUDA generators, and any named ``torch.Generator``).
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from musicgen.checkpoints.files import atomic_folder, atomic_write_json, atomic_write_text

LATEST = "latest"
STATE_FILE = "state.json"


def _clean_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU copies that share no storage (safetensors refuses shared tensors)."""
    return {name: t.detach().to("cpu").contiguous().clone() for name, t in tensors.items()}


# --- optimizer -----------------------------------------------------------------------------------
def optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into tensors ``state/{param}/{name}`` and JSON values."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in sd["state"].items():
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state/{index}/{name}"] = value
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def load_optimizer_state(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                         meta: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, index, name = key.split("/", 2)
        state.setdefault(int(index), {})[name] = value
    for index, values in meta["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    groups = []
    for group in meta["param_groups"]:
        group = dict(group)
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
        groups.append(group)
    optimizer.load_state_dict({"state": state, "param_groups": groups})


# --- random number generators ----------------------------------------------------------------------
def rng_state(generators: dict[str, torch.Generator] | None = None
              ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The state of python/numpy/torch global RNGs and of the named ``generators``."""
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = s
    for name, gen in (generators or {}).items():
        tensors[f"generator_{name}"] = gen.get_state()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["numpy_keys"] = torch.from_numpy(np.asarray(keys, dtype=np.uint32).view(np.int32).copy())
    version, internal, gauss_next = random.getstate()
    meta = {"numpy": [kind, int(pos), int(has_gauss), float(cached)],
            "python": [version, list(internal), gauss_next]}
    return tensors, meta


def load_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any],
                   generators: dict[str, torch.Generator] | None = None) -> None:
    torch.set_rng_state(tensors["torch_cpu"])
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(t for t in tensors if t.startswith("torch_cuda_"))]
        if states:
            torch.cuda.set_rng_state_all(states)
    for name, gen in (generators or {}).items():
        key = f"generator_{name}"
        if key not in tensors:
            raise KeyError(f"checkpoint has no state for generator {name!r}")
        gen.set_state(tensors[key])
    kind, pos, has_gauss, cached = meta["numpy"]
    keys = tensors["numpy_keys"].numpy().view(np.uint32)
    np.random.set_state((kind, keys, pos, has_gauss, cached))
    version, internal, gauss_next = meta["python"]
    random.setstate((version, tuple(internal), gauss_next))


# --- whole checkpoints ---------------------------------------------------------------------------
@dataclass
class Checkpoint:
    """A loaded checkpoint: ``tensors[group][name]`` and the JSON ``state``."""

    path: Path
    tensors: dict[str, dict[str, torch.Tensor]]
    state: dict[str, Any]

    @property
    def step(self) -> int:
        return int(self.state["step"])


def save_checkpoint(folder: str | os.PathLike[str], step: int, tensors: dict[str, dict[str, torch.Tensor]],
                    state: dict[str, Any], keep: int = 2) -> Path:
    """Write ``folder/step_{step}`` atomically, point ``latest`` at it, keep the newest ``keep``."""
    folder = Path(folder)
    name = f"step_{step:08d}"
    final = folder / name
    with atomic_folder(final) as tmp:
        for group, values in tensors.items():
            path = tmp / f"{group}.safetensors"
            save_file(_clean_tensors(values), str(path))
            with open(path, "rb") as f:
                os.fsync(f.fileno())
        atomic_write_json(tmp / STATE_FILE, dict(state, step=int(step), groups=sorted(tensors)))
    atomic_write_text(folder / LATEST, name + "\n")
    if keep > 0:
        for old in sorted(p for p in folder.glob("step_*") if p.is_dir())[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(folder: str | os.PathLike[str]) -> Path | None:
    """The newest complete checkpoint in ``folder``, or None when there is none."""
    pointer = Path(folder) / LATEST
    if not pointer.is_file():
        return None
    path = Path(folder) / pointer.read_text().strip()
    return path if (path / STATE_FILE).is_file() else None


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint folder (``step_*``) or a run's checkpoint folder (follows ``latest``)."""
    path = Path(path)
    if (path / LATEST).is_file():
        found = latest_checkpoint(path)
        if found is None:
            raise FileNotFoundError(f"{path / LATEST} points at a missing or incomplete checkpoint")
        path = found
    state_file = path / STATE_FILE
    if not state_file.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: {STATE_FILE} is missing")
    state = json.loads(state_file.read_text())
    tensors = {}
    for group in state.get("groups", []):
        file = path / f"{group}.safetensors"
        if not file.is_file():
            raise FileNotFoundError(f"checkpoint {path} is incomplete: {file.name} is missing")
        tensors[group] = load_file(str(file))
    return Checkpoint(path, tensors, state)
