"""File-level helpers of the harness, one home each: atomic writes, digests, the code's commit.

- Atomic writes (through ``musicgen.checkpoints.files.atomic_write_bytes``, the one implementation):
  the data goes to a temporary sibling (``.NAME.tmp-PID-XXXXXXXX``, created exclusively, never through
  a link) in the destination folder, is flushed to disk and renamed into place with ``os.replace``, so
  a process killed at any moment leaves the old file, the new file or nothing, never half a file
  (``RunStore.lock`` removes stray temporaries of ours, and only those).
- Digests (sha256 hex): ``sha256_json`` of the canonical JSON of a value (sorted keys, no spaces,
  non-JSON values through ``str``); ``file_digest`` of one file's bytes, memoised per process by
  (path, size, modification time); ``tree_digest`` over a file or every file of a folder, memoised
  on disk when given a cache folder (weights of several gigabytes are hashed once).
- ``read_json``: a JSON file with one clear error for a missing file or malformed JSON.
- ``git_commit``: the commit of the code that wrote a result (provenance in results and model cards).
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any


# -- atomic writes ---------------------------------------------------------------------------------
def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see the module docstring)."""
    from musicgen.checkpoints.files import atomic_write_bytes as write  # the library's one implementation

    return write(path, data)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = 2) -> Path:
    """Write ``obj`` as JSON (keys in their order, non-JSON values through ``str``, a final newline)."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, default=str) + "\n")


def read_json(path: str | Path, error: type[Exception] = ValueError, what: str = "JSON file",
              how: str = "") -> Any:
    """The JSON value in ``path``. A missing file or malformed JSON raises ``error`` with one line
    naming the file and what went wrong (``what`` names the file's kind, ``how`` says how to make it)."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: no {what}" + (f" ({how})" if how else ""))
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:  # one line each
        raise error(f"{path}: not valid JSON ({type(err).__name__}: {err})") from None


# -- digests ---------------------------------------------------------------------------------------
def canonical_json(obj: Any) -> str:
    """The canonical JSON text of ``obj``: sorted keys, no spaces, non-JSON values through ``str``."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def sha256_json(obj: Any) -> str:
    """sha256 hex of ``canonical_json(obj)``: equal values, equal digests."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()


@functools.lru_cache(maxsize=64)
def _file_digest_memo(path: str, size: int, mtime_ns: int) -> str:
    from musicgen.checkpoints.files import sha256_file  # the library's one file hash (imports torch)

    return sha256_file(Path(path))


def file_digest(path: str | Path) -> str:
    """sha256 hex of one file's bytes, memoised per process by (path, size, modification time)."""
    st = Path(path).stat()
    return _file_digest_memo(str(path), st.st_size, st.st_mtime_ns)


def files_digest(*paths: str | Path) -> str:
    """``file_digest`` of one file; for several, the sha256 of their digests joined by ``+``."""
    parts = [file_digest(p) for p in paths]
    return parts[0] if len(parts) == 1 else hashlib.sha256("+".join(parts).encode()).hexdigest()


def tree_digest(path: str | Path, cache_dir: str | Path | None = None) -> str:
    """sha256 hex over a file or every file of a folder: of the lines ``relative name NUL file digest``
    of its files in sorted order. With ``cache_dir`` the digest is memoised in ``cache_dir/digests.json``,
    keyed by (path, size, modification time) of every file: an edited or replaced file is hashed again.
    """
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    stamp = json.dumps([[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in files])
    memo_file = Path(cache_dir) / "digests.json" if cache_dir is not None else None
    memo: dict[str, str] = {}
    if memo_file is not None and memo_file.is_file():
        try:
            memo = json.loads(memo_file.read_text())
        except json.JSONDecodeError:
            memo = {}
    if stamp in memo:
        return memo[stamp]
    names = [str(f.relative_to(path)) if path.is_dir() else f.name for f in files]
    lines = "".join(f"{name}\0{file_digest(f)}\n" for name, f in zip(names, files))
    digest = hashlib.sha256(lines.encode()).hexdigest()
    if memo_file is not None:
        memo[stamp] = digest
        atomic_write_json(memo_file, memo, indent=None)
    return digest


def git_commit() -> str | None:
    """The git commit of the checkout this code runs from, or None (not a checkout, no git)."""
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None
