"""Local files only: resolve paths or hub ids offline, read state dicts safely and load them strictly,
digest weights, write files and folders atomically.

Nothing here downloads. A hub id (``facebook/musicgen-small``) resolves through the local Hugging
Face cache (``HF_HUB_CACHE`` / ``HF_HOME`` / ``~/.cache/huggingface/hub``); a missing file raises
``MissingCheckpointFile`` naming the file and how to obtain it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

# torch is imported where tensors are read, so that atomic writes and file digests (``bench report``,
# ``bench compare``) do not pay its import, seconds on a small CPU
if TYPE_CHECKING:
    import torch
    from torch import nn


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


#: Legacy root repos the hub moved under an owner; a user's cache may hold either spelling
#: (audiocraft asks for ``t5-base``, so its cache holds ``models--t5-base``).
HUB_ALIASES = {f"t5-{size}": f"google-t5/t5-{size}" for size in ("small", "base", "large", "3b", "11b")}
#: Suffixes of files, never of hub ids: ``weights/vggish.pth`` is a missing file, not a repo.
_FILE_SUFFIXES = {".pt", ".pth", ".bin", ".safetensors", ".ckpt", ".th", ".json", ".yaml", ".npz",
                  ".pkl", ".onnx", ".h5", ".model", ".wav", ".flac", ".mp3"}
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def looks_like_hub_id(text: str) -> bool:
    """``owner/name`` or a legacy root name (``t5-base``) that is not spelled like a file path."""
    return bool(_HUB_ID.fullmatch(text)) and Path(text).suffix.lower() not in _FILE_SUFFIXES


def hub_spellings(repo_id: str) -> list[str]:
    """``repo_id`` and the other spelling the hub accepts for it (``t5-base`` <-> ``google-t5/t5-base``)."""
    out = [repo_id]
    out += [b for a, b in HUB_ALIASES.items() if a == repo_id] + [a for a, b in HUB_ALIASES.items()
                                                                   if b == repo_id]
    return out


def hub_cache_folder(repo_id: str) -> Path:
    """Where the local Hugging Face cache keeps ``repo_id`` (``models--owner--name``)."""
    return _hub_cache() / ("models--" + repo_id.replace("/", "--"))


def cached_snapshot(repo_id: str) -> Path | None:
    """The snapshot ``refs/main`` names (else the newest one) of ``repo_id`` in the local cache."""
    repo = hub_cache_folder(repo_id)
    ref, snapshots = repo / "refs" / "main", repo / "snapshots"
    if ref.is_file() and (snapshots / ref.read_text().strip()).is_dir():
        return snapshots / ref.read_text().strip()
    if snapshots.is_dir():
        found = sorted((q for q in snapshots.iterdir() if q.is_dir()), key=lambda q: q.stat().st_mtime)
        if found:
            return found[-1]
    return None


def download_hint(repo_id: str) -> str:
    """One plain instruction for getting ``repo_id`` onto this machine."""
    return (f"Nothing is downloaded at run time: on a machine with network run "
            f"`huggingface-cli download {repo_id}`, then copy its cache folder "
            f"{hub_cache_folder(repo_id).name} "
            f"into {_hub_cache()} here (or pass the snapshot folder's path)")


def resolve_local(path_or_id: str | os.PathLike[str]) -> Path:
    """A local directory or file for ``path_or_id``, never downloading.

    ``builtin:NAME`` names a model shipped in ``musicgen/builtin/``. An existing path is returned
    as is. Otherwise a hub id (``owner/name`` or a legacy root name like ``t5-base``, under either
    spelling of ``HUB_ALIASES``) is looked up as a snapshot in the local Hugging Face cache (the one
    ``refs/main`` names, else the newest). Anything spelled like a file (``weights/x.pth``) is a
    missing path.
    """
    text = str(path_or_id)
    if text.startswith(BUILTIN_PREFIX):
        return builtin_folder(text[len(BUILTIN_PREFIX):])
    p = Path(path_or_id).expanduser()
    if p.exists():
        return p
    local_parent = "/" in text and Path(text.split("/")[0]).is_dir()  # models/x: a path, not a repo
    if looks_like_hub_id(text) and not local_parent:
        spellings = hub_spellings(text)
        for spelling in spellings:
            snapshot = cached_snapshot(spelling)
            if snapshot is not None:
                return snapshot
        if "/" in text or len(spellings) > 1:
            looked = ", ".join(str(hub_cache_folder(s)) for s in spellings)
            raise MissingCheckpointFile(
                f"{text!r} does not exist as a local path and is not in the local Hugging Face cache "
                f"(looked in {looked}). {download_hint(text)}.")
    raise MissingCheckpointFile(f"{str(p)!r} does not exist")


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
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle with non-allowlisted globals, or a corrupt file
        raise weights_only_refusal(path, e) from None


def weights_only_refusal(path: str | os.PathLike[str], e: BaseException) -> ValueError:
    """One line for a torch file that ``torch.load(weights_only=True)`` refused: the file and the line
    of torch's message that says what it holds (torch's own message spans paragraphs and suggests
    loading with ``weights_only=False``, which we never do)."""
    lines = [" ".join(line.split()) for line in str(e).splitlines() if line.strip()]
    reason = next((line for line in lines if "GLOBAL" in line or "global" in line or "Unsupported" in line),
                  next((line for line in lines if "weights_only" not in line), type(e).__name__))
    return ValueError(f"{path}: refused: not a weights-only torch checkpoint ({reason}); only safetensors "
                      "and weights-only torch files are read, never code")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def state_dict_digest(state: dict[str, torch.Tensor]) -> str:
    """Hex sha256 over sorted names, dtypes, shapes and bytes of a state dict (format independent)."""
    import torch

    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _few(keys: list[str], n: int = 10) -> str:
    return f"{keys[:n]}{' ...' if len(keys) > n else ''}"


def load_state_strict(module: nn.Module, state: dict[str, torch.Tensor], source: str, what: str = "weights",
                      skip: tuple[str, ...] = ()) -> None:
    """Copy ``state`` (our key names) into ``module``; every key must match in name and shape.

    Keys of ``module`` that start with a prefix in ``skip`` are neither expected nor touched (a frozen
    encoder saved elsewhere). A mismatch is one ``ValueError`` naming ``source`` and the missing,
    unexpected and misshapen keys; nothing is loaded then.
    """
    own = {k: v for k, v in module.state_dict().items() if not (skip and k.startswith(skip))}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(state)) if tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or shapes:
        raise ValueError(f"{source}: {what} do not match the configuration: missing keys {_few(missing)}, "
                         f"unexpected keys {_few(unexpected)}, "
                         f"shape mismatches (file vs model) {_few(shapes)}")
    module.load_state_dict(state, strict=not skip)


# --- atomic writes ----------------------------------------------------------------------------------

def _temporary_sibling(path: Path, tag: str = "tmp") -> Path:
    return path.with_name(f".{path.name}.{tag}-{os.getpid()}")


#: the names of our temporaries: ``.NAME.tmp-PID-XXXXXXXX`` (files) and ``.NAME.tmp-PID``/``.old-PID``
#: (folders); a cleaner may remove exactly these and nothing else
TEMPORARY_NAME = re.compile(r"^\..+\.(tmp|old)-\d+(-[a-z0-9_]{8})?$")
_UMASK = os.umask(0o022)
os.umask(_UMASK)  # the process umask, read once (it can only be read by setting it)


def fsync_dir(path: Path) -> None:
    """Flush a directory entry to disk (best effort: some file systems refuse it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` through a fsynced temporary sibling renamed into place: a reader (or a
    killed writer) sees the old file or the new one, never a part. The temporary is created exclusively
    (never through a link) and the file gets the mode the umask allows (0644 usually). (The one
    implementation: bench's ``bench.files`` writes through it too.)"""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # created exclusively (O_EXCL | O_NOFOLLOW, random name): a link planted at a guessable name is
    # never written through; os.replace then swaps a link at ``path`` itself, never its target
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-{os.getpid()}-")
    tmp = Path(name)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # readable like any file the user writes (mkstemp makes 0600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """``atomic_write_bytes`` of ``text`` encoded as UTF-8."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any, indent: int | None = 1,
                      sort_keys: bool = True) -> Path:
    """``atomic_write_text`` of ``obj`` as JSON (a trailing newline)."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=sort_keys) + "\n")


@contextmanager
def atomic_folder(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Build a folder in a temporary sibling (yielded, empty) and rename it to ``path`` when the block
    ends without error; an existing ``path`` is replaced only then. On error the sibling is removed
    and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp, old = _temporary_sibling(path), _temporary_sibling(path, "old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    fsync_dir(path.parent)
    shutil.rmtree(old, ignore_errors=True)
