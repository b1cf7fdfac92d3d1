"""Torch checkpoints whose pickle names numpy's ``multiarray`` module under a chosen spelling.

numpy 2 renamed ``numpy.core`` to ``numpy._core``; files saved under numpy 1.x name
``numpy.core.multiarray.scalar`` / ``_reconstruct``. ``save_naming_numpy_module`` saves with torch and
rewrites the module name in the zip's ``data.pkl`` (protocol-2 ``GLOBAL`` opcodes are text lines, so
the rename is exact whatever numpy runs the test)."""

from __future__ import annotations

import io
import pickletools
import zipfile
from pathlib import Path

import torch

SPELLINGS = ("numpy.core.multiarray", "numpy._core.multiarray")


def save_naming_numpy_module(obj, path: Path, module: str) -> None:
    """``torch.save(obj, path)`` with every numpy ``multiarray`` global renamed to ``module``."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("/data.pkl"):
                for old in SPELLINGS:
                    data = data.replace(b"c" + old.encode() + b"\n", b"c" + module.encode() + b"\n")
                assert b"c" + module.encode() + b"\n" in data, "no numpy global was pickled"
            dst.writestr(info, data)


def pickled_globals(path: Path) -> set[str]:
    """The ``module.name`` strings of the GLOBAL opcodes in a torch zip checkpoint's pickle."""
    with zipfile.ZipFile(path) as z:
        data = z.read(next(n for n in z.namelist() if n.endswith("/data.pkl")))
    return {arg.replace(" ", ".") for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}
