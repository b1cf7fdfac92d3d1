"""Look inside weight files cheaply (no tensor is read, no pickle is executed) for ``validate``.

- ``.safetensors``: the 8-byte header length and the JSON header; names are its keys.
- torch zip checkpoints (``torch.save`` since 1.6): the zip directory and ``*/data.pkl``; names are the
  string constants of that pickle (dict keys among them), read with ``pickletools.genops``, which only
  parses opcodes.
- legacy torch files (a sequence of pickles, then raw storages): the same on the leading pickles.

An empty file (a placeholder, an interrupted download) is an error, as is a file that is none of these.
"""

from __future__ import annotations

import io
import json
import pickletools
import re
import struct
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

_STRING_OPS = {"BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING",
               "SHORT_BINSTRING"}
_LEGACY_PICKLES = 5  # magic number, protocol version, sys info, the object, the storage keys


class UnreadableWeights(ValueError):
    """A weight file that cannot be what its name says (empty, truncated, another format)."""


#: modules whose globals ``torch.load(weights_only=True)`` may accept (with numpy's scalar/array
#: classes allow-listed); a pickle naming anything else (``posix.system``, ``builtins.eval``, ...) is
#: code, and refused before anything is loaded
_DATA_MODULES = ("torch", "collections", "_codecs", "numpy")
_DATA_BUILTINS = {"set", "frozenset", "bytearray", "bytes", "slice", "complex", "tuple", "list", "dict",
                  "int", "float", "bool", "str", "object"}


def _pickle_ops(stream: io.BufferedIOBase, count: int = 1) -> Iterator[tuple[str, str]]:
    """``("str", value)`` for string constants and ``("global", "module.name")`` for globals."""
    for _ in range(count):
        try:
            for op, arg, _pos in pickletools.genops(stream):
                if op.name in _STRING_OPS and isinstance(arg, (str, bytes)):
                    yield "str", arg if isinstance(arg, str) else arg.decode("latin-1")
                elif op.name in ("GLOBAL", "INST") and isinstance(arg, str):
                    yield "global", arg.replace(" ", ".")
        except (ValueError, EOFError):
            return


def _pickle_strings(stream: io.BufferedIOBase, count: int = 1) -> Iterator[str]:
    return (value for kind, value in _pickle_ops(stream, count) if kind == "str")


def code_globals(path: str | Path) -> list[str]:
    """The globals a torch file's pickle names that are not data (see ``_DATA_MODULES``): what a
    weights-only load refuses. Empty for safetensors and for files that are not pickles."""
    path = Path(path)
    if path.suffix == ".safetensors" or not path.is_file() or path.stat().st_size == 0:
        return []
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            pkl = [n for n in z.namelist() if n.endswith("data.pkl")]
            ops = list(_pickle_ops(io.BytesIO(z.read(pkl[0])))) if pkl else []
    else:
        with open(path, "rb") as f:
            ops = list(_pickle_ops(f, _LEGACY_PICKLES))
    names = sorted({value for kind, value in ops if kind == "global"})

    def data(name: str) -> bool:
        module, _, attr = name.rpartition(".")
        root = module.split(".")[0]
        return root in _DATA_MODULES or (module in ("builtins", "__builtin__") and attr in _DATA_BUILTINS)

    return [n for n in names if not data(n)]


def _safetensors_names(path: Path) -> set[str]:
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise UnreadableWeights(f"{path}: truncated ({size} bytes), not a safetensors file")
        (n,) = struct.unpack("<Q", head)
        if n <= 1 or 8 + n > size:
            raise UnreadableWeights(f"{path}: not a safetensors file (header length {n} for a file of "
                                    f"{size} bytes)")
        try:
            header = json.loads(f.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UnreadableWeights(f"{path}: not a safetensors file (header is not JSON: {e})") from None
    if not isinstance(header, dict):
        raise UnreadableWeights(f"{path}: not a safetensors file (header is not a JSON object)")
    return {k for k in header if k != "__metadata__"}


def _torch_names(path: Path) -> set[str]:
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as z:
                pkl = [n for n in z.namelist() if n.endswith("data.pkl")]
                if not pkl:
                    raise UnreadableWeights(f"{path}: a zip file without data.pkl, not a torch checkpoint")
                data = z.read(pkl[0])
        except (zipfile.BadZipFile, OSError) as e:
            raise UnreadableWeights(f"{path}: damaged zip, not a readable torch checkpoint ({e})") from None
        return set(_pickle_strings(io.BytesIO(data)))
    with open(path, "rb") as f:
        if f.read(1) != b"\x80":
            raise UnreadableWeights(f"{path}: neither a torch zip checkpoint nor a pickle")
        f.seek(0)
        return set(_pickle_strings(f, _LEGACY_PICKLES))


def peek_names(path: str | Path) -> set[str]:
    """The tensor names (safetensors) or string constants (torch pickles) of a weight file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    size = path.stat().st_size
    if size == 0:
        raise UnreadableWeights(f"{path} is empty (0 bytes): a placeholder or an interrupted download")
    if path.name.endswith(".safetensors.index.json"):
        try:
            index = json.loads(path.read_text())
            return set(index["weight_map"])
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise UnreadableWeights(f"{path}: not a safetensors index ({e})") from None
    if path.suffix == ".safetensors":
        return _safetensors_names(path)
    return _torch_names(path)


def peek_pickled_string(path: str | Path, key: str) -> str | None:
    """The string stored right after the string ``key`` in a torch file's pickle (a ``{key: str}``
    entry, e.g. audiocraft's ``xp.cfg``), without loading the file; ``None`` when there is none."""
    path = Path(path)
    if not zipfile.is_zipfile(path):
        return None
    with zipfile.ZipFile(path) as z:
        pkl = [n for n in z.namelist() if n.endswith("data.pkl")]
        data = z.read(pkl[0]) if pkl else b""
    strings = iter(_pickle_strings(io.BytesIO(data)))
    for s in strings:
        if s == key:
            return next(strings, None)
    return None


def missing_names(names: Iterable[str], required: Iterable[str]) -> list[str]:
    """The patterns of ``required`` (regular expressions, searched) that no name matches."""
    names = list(names)
    return [pattern for pattern in required if not any(re.search(pattern, n) for n in names)]


def check_weight_file(path: str | Path, what: str, required: Iterable[str] = (),
                      how_to_get: str = "") -> list[str]:
    """Problems with one weight file, one line each: absent, empty, unreadable, or lacking names that
    match ``required``. ``how_to_get`` is the one instruction that fixes it."""
    hint = f" {how_to_get}" if how_to_get else ""
    try:
        names = peek_names(path)
    except FileNotFoundError:
        return [f"{what}: {str(path)!r} does not exist.{hint}"]
    except UnreadableWeights as e:
        return [f"{what}: {e}.{hint}"]
    code = code_globals(path)
    if code:
        return [f"{what}: {path}: refused: not a weights-only torch checkpoint (its pickle calls "
                f"{', '.join(code)}); only safetensors and weights-only torch files are read, never code"]
    missing = missing_names(names, required)
    if missing:
        return [f"{what}: {path} holds no entry matching {', '.join(repr(m) for m in missing)}: not the "
                f"expected checkpoint.{hint}"]
    return []
