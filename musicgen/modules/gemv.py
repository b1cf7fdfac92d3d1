"""Compiled products for few rows on AVX2 CPUs: the ``"bf16_gemv"`` and ``"f32_gemv"`` kernels of
``fast_linear``.

A decode step multiplies a handful of rows (2 per prompt with CFG) by every weight matrix, so it is
bound by how fast the weights are read. Two cases where PyTorch's CPU products fall short of that:

- bf16 weights: ``F.linear`` on a CPU without bf16 instructions (AVX2, no AVX512-BF16) is bound by
  converting and multiplying, so bf16 decoding gained only 1.4x over float32 on the AMD EPYC measured
  for the generation-speed issue (2.0-2.2x with this kernel, musicgen-small size, batch 1,
  ``benchmarks/generation.py``). ``musicgen_bf16_gemv`` converts eight bf16 weights at a time to
  float32 with a shift and multiplies them with FMA in float32.
- float32 weights at 2-16 rows: MKL's ``sgemm`` (either operand order) reads the weights at a third to
  a half of the read bandwidth there; ``musicgen_f32_gemv`` multiplies a register block of weight
  rows by activation rows so each loaded vector feeds several FMAs and the weights stream once.

``gemv.c`` (next to this file) is compiled once, on first use, with the system C compiler (``$CC``,
else ``cc``) into a cache folder (``$MUSICGEN_KERNEL_CACHE``, else ``~/.cache/musicgen/kernels``),
named by a digest of the source and flags, and loaded with ``ctypes``. Threads: OpenMP,
``torch.get_num_threads()`` of them (the library shares the ``libgomp`` that torch loaded).

:func:`available` says whether the kernels can run here (x86-64 with AVX2, a compiler, compiled and
loaded); it never raises. :func:`bf16_linear` and :func:`f32_linear` raise a clear error when they
cannot.

Arithmetic: each output is one dot product accumulated in float32 in a fixed order, so a row's result
does not depend on the other rows or the thread count (batch-invariant). It is at least as exact as
PyTorch's products (which also accumulate in float32) but not bit-identical to them.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("gemv.c")
FLAGS = ("-O3", "-mavx2", "-mfma", "-fopenmp", "-ffp-contract=off", "-shared", "-fPIC")
_state: dict[str, object] = {}


class KernelUnavailable(RuntimeError):
    """The compiled kernels cannot run on this machine (the message says why)."""


def cache_dir() -> Path:
    return Path(os.environ.get("MUSICGEN_KERNEL_CACHE", Path.home() / ".cache" / "musicgen" / "kernels"))


def _cpu_has_avx2() -> bool:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    capability = torch.backends.cpu.get_cpu_capability()  # "AVX2", "AVX512", "DEFAULT", ...
    return capability.startswith("AVX2") or capability.startswith("AVX512")


def _compile(target: Path) -> None:
    compiler = os.environ.get("CC") or "cc"
    if shutil.which(compiler) is None:
        raise KernelUnavailable(f"no C compiler {compiler!r} on PATH to build {SOURCE.name} "
                                f"(install gcc, or set CC; or use the 'gemm' kernel)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        out = Path(tmp) / target.name
        result = subprocess.run([compiler, *FLAGS, str(SOURCE), "-o", str(out)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise KernelUnavailable(f"compiling {SOURCE} with {compiler} failed:\n{result.stderr[-2000:]}")
        os.replace(out, target)  # atomic: concurrent processes see the whole library or none


def load_library() -> ctypes.CDLL:
    """The compiled kernel (compiled on the first call; cached on disk and in the process)."""
    if "lib" in _state:
        return _state["lib"]  # type: ignore[return-value]
    if "error" in _state:
        raise KernelUnavailable(str(_state["error"]))
    try:
        if not _cpu_has_avx2():
            raise KernelUnavailable(f"the compiled kernels need an x86-64 CPU with AVX2 (this one: "
                                    f"{platform.machine()}, {torch.backends.cpu.get_cpu_capability()})")
        digest = hashlib.sha256(SOURCE.read_bytes() + " ".join(FLAGS).encode()).hexdigest()[:16]
        target = cache_dir() / f"gemv-{digest}.so"
        if not target.is_file():
            _compile(target)
        lib = ctypes.CDLL(str(target))
    except (KernelUnavailable, OSError) as err:
        _state["error"] = err
        raise KernelUnavailable(str(err)) from err
    fn = lib.musicgen_bf16_gemv
    i64 = ctypes.c_int64
    c_int, ptr = ctypes.c_int, ctypes.c_void_p
    fn.argtypes = [ptr, c_int, i64, ptr, ptr, c_int, i64, i64, i64, i64, c_int]
    fn.restype = c_int
    read = lib.musicgen_read_sum
    read.argtypes = [ptr, i64, c_int]
    read.restype = ctypes.c_double
    f32 = lib.musicgen_f32_gemv
    f32.argtypes = [ptr, i64, ptr, ptr, i64, i64, i64, i64, c_int]
    f32.restype = c_int
    _state["lib"] = lib
    return lib


def available() -> bool:
    """Whether :func:`bf16_linear` and :func:`f32_linear` can run here (compiles on the first call)."""
    try:
        load_library()
        return True
    except KernelUnavailable:
        return False


def bf16_linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``x [..., K] @ weight[N, K]^T`` -> ``[..., N]`` in ``x``'s dtype, for a bf16 CPU ``weight``.

    ``x`` (float32 or bfloat16; other dtypes are converted to float32) is read as it is, products are
    accumulated in float32 and a bf16 result is rounded once, to nearest even. No autograd.
    """
    if weight.dtype != torch.bfloat16 or weight.device.type != "cpu" or weight.dim() != 2:
        raise ValueError(f"bf16_linear needs a 2-D bfloat16 CPU weight, got {weight.dtype} "
                         f"{tuple(weight.shape)} on {weight.device}")
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(f"x has {x.shape[-1]} features, the weight expects {weight.shape[1]}")
    if not weight.is_contiguous():
        raise ValueError("bf16_linear needs a contiguous weight")
    fn = load_library().musicgen_bf16_gemv
    dtype = x.dtype if x.dtype in (torch.float32, torch.bfloat16) else torch.float32
    rows = x.reshape(-1, x.shape[-1]).to(dtype).contiguous()
    n, k = weight.shape
    out = torch.empty(rows.shape[0], n, dtype=dtype)
    is_bf16 = int(dtype == torch.bfloat16)
    if rows.shape[0] and fn(rows.data_ptr(), is_bf16, k, weight.data_ptr(), out.data_ptr(), is_bf16, n,
                            rows.shape[0], n, k, torch.get_num_threads()):
        raise MemoryError(f"bf16_gemv could not allocate a float32 copy of x {tuple(rows.shape)} or its "
                          "accumulators")
    return out.reshape(*x.shape[:-1], n).to(x.dtype)


def f32_linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``x [..., K] @ weight[N, K]^T`` -> ``[..., N]`` float32, for a float32 CPU ``weight`` and float32
    ``x``: one fixed-order float32 dot product per output (batch- and thread-invariant). No autograd."""
    if weight.dtype != torch.float32 or weight.device.type != "cpu" or weight.dim() != 2:
        raise ValueError(f"f32_linear needs a 2-D float32 CPU weight, got {weight.dtype} "
                         f"{tuple(weight.shape)} on {weight.device}")
    if x.dtype != torch.float32 or x.device.type != "cpu":
        raise ValueError(f"f32_linear needs float32 CPU activations, got {x.dtype} on {x.device}")
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(f"x has {x.shape[-1]} features, the weight expects {weight.shape[1]}")
    if not weight.is_contiguous():
        raise ValueError("f32_linear needs a contiguous weight")
    fn = load_library().musicgen_f32_gemv
    rows = x.reshape(-1, x.shape[-1]).contiguous()
    n, k = weight.shape
    out = torch.empty(rows.shape[0], n, dtype=torch.float32)
    if rows.shape[0] and fn(rows.data_ptr(), k, weight.data_ptr(), out.data_ptr(), n, rows.shape[0], n, k,
                            torch.get_num_threads()):
        raise MemoryError(f"f32_gemv could not allocate its accumulators for {rows.shape[0]} rows")
    return out.reshape(*x.shape[:-1], n)


def read_sum(x: torch.Tensor) -> float:
    """The sum of a contiguous float32 CPU tensor, read once by ``torch.get_num_threads()`` threads
    with independent accumulators: a plain memory read, for the benchmarks' bandwidth bound."""
    if x.dtype != torch.float32 or x.device.type != "cpu" or not x.is_contiguous():
        raise ValueError(f"read_sum needs a contiguous float32 CPU tensor, got {x.dtype} on {x.device}")
    return float(load_library().musicgen_read_sum(x.data_ptr(), x.numel(), torch.get_num_threads()))
