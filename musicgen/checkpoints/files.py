"""Local files only: resolve paths or hub ids offline, read state dicts safely, digest weights.

Nothing here downloads. A hub id (``facebook/musicgen-small``) resolves through the local Hugging
Face cache (``HF_HUB_CACHE`` / ``HF_HOME`` / ``~/.cache/huggingface/hub``); a missing file raises
``MissingCheckpointFile`` naming the file and how to obtain it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch


class MissingCheckpointFile(FileNotFoundError):
    """A checkpoint file that is not on this machine. The message says how to get it."""


def _hub_cache() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    return home / "hub"


BUILTIN_PREFIX = "builtin:"


def builtin_folder(name: str) -> Path:
    """The folder of the built-in model ``name`` shipped in ``musicgen/builtin/``."""
    root = Path(__file__).resolve().parents[1] / "builtin"
    folder = root / name
    if not name or not folder.is_dir():
        known = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        raise MissingCheckpointFile(
            f"{BUILTIN_PREFIX}{name}: no built-in model of that name (known: {known or 'none'}); "
            f"built-ins are trained with the recipes in musicgen/recipes/ (`musicgen train RECIPE`)")
    return folder


def resolve_local(path_or_id: str | os.PathLike[str]) -> Path:
    """A local directory or file for ``path_or_id``, never downloading.

    ``builtin:NAME`` names a model shipped in ``musicgen/builtin/``. An existing path is returned
    as is. Otherwise ``owner/name`` is looked up as a snapshot in the local Hugging Face cache (the
    newest snapshot, or the one ``refs/main`` names).
    """
    text = str(path_or_id)
    if text.startswith(BUILTIN_PREFIX):
        return builtin_folder(text[len(BUILTIN_PREFIX):])
    p = Path(path_or_id).expanduser()
    if p.exists():
        return p
    if text.count("/") == 1 and not text.startswith((".", "/")):
        repo = _hub_cache() / ("models--" + text.replace("/", "--"))
        ref = repo / "refs" / "main"
        snapshots = repo / "snapshots"
        if ref.is_file() and (snapshots / ref.read_text().strip()).is_dir():
            return snapshots / ref.read_text().strip()
        if snapshots.is_dir():
            found = sorted(snapshots.iterdir(), key=lambda q: q.stat().st_mtime)
            if found:
                return found[-1]
        raise MissingCheckpointFile(
            f"{text!r} is not a local path and is not in the local Hugging Face cache ({repo}). "
            f"Nothing is downloaded at run time: on a machine with network run "
            f"`huggingface-cli download {text}` (or copy the folder here) and pass its path.")
    raise MissingCheckpointFile(f"checkpoint path {str(p)!r} does not exist")


def require_file(folder: Path, name: str, how_to_get: str = "") -> Path:
    """``folder / name``, or an error that names the missing file and how to obtain it."""
    path = Path(folder) / name
    if not path.is_file():
        present = sorted(q.name for q in Path(folder).iterdir()) if Path(folder).is_dir() else []
        hint = f" {how_to_get}" if how_to_get else ""
        raise MissingCheckpointFile(
            f"missing checkpoint file {str(path)!r} (the folder holds: {present or 'nothing'}).{hint}")
    return path


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e


def load_state_dict(path: Path) -> dict[str, Any]:
    """Read ``.safetensors`` (several shards through an index JSON too) or a torch pickle safely.

    Torch files are read with ``weights_only=True``; a file that needs arbitrary code fails with a
    message naming it. Returns the raw mapping (nested dicts are kept for torch files).
    """
    path = Path(path)
    if path.name.endswith(".safetensors.index.json"):
        index = read_json(path)
        out: dict[str, Any] = {}
        for shard in sorted(set(index["weight_map"].values())):
            out.update(load_state_dict(require_file(path.parent, shard)))
        return out
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return dict(load_file(str(path)))
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle with non-allowlisted globals, or a corrupt file
        raise ValueError(f"{path}: could not be read as a weights-only torch checkpoint ({e})") from e


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def state_dict_digest(state: dict[str, torch.Tensor]) -> str:
    """Hex sha256 over sorted names, dtypes, shapes and bytes of a state dict (format independent)."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
