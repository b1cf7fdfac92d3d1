"""Bias-free linear layers prepared for the decode loop (few rows per call).

Autoregressive decoding multiplies a handful of rows (``[cond; null]`` for one prompt with CFG: 2
rows) by every weight matrix once per step, so a step is bound by how fast the weights are read.
How fast a BLAS reads them at 2 rows depends on the kernel: on the AMD EPYC (AVX2) CPU this project
was measured on, MKL's ``sgemm`` for 2 x 1024 by 1024 x 4096 reads the weights several times slower
than ``sgemv`` (one row). Hence several interchangeable kernels, chosen per generation:

``"auto"`` (the default of :func:`musicgen.models.generation.generate`)
    On CPU, for float32 weights: ``"f32_gemv"`` when a call has at most :data:`F32_GEMV_MAX_ROWS`
    rows (decoding at batch <= 16 with CFG) and the compiled kernels can run (x86-64 with AVX2 and a C
    compiler), else ``"weight_left"`` up to :data:`AUTO_MAX_ROWS` rows; for bfloat16 weights
    ``"bf16_gemv"`` up to :data:`AUTO_MAX_ROWS` rows where it can run. ``"gemm"`` otherwise (fp16,
    CUDA, long prompts). The choice is made per call from the row count, so a prompt's prefill and
    its decode steps may use different kernels. Greedy fp32 codes equal transformers' in
    ``benchmarks/generation.py``; logits are not bit-identical to it (use ``"gemm"`` for that).
``"gemm"``
    ``F.linear`` on all rows at once: the arithmetic of transformers' MusicGen (same BLAS call), so
    logits are bit-identical to it. A row's result may depend, in the last bits, on how many rows
    were computed with it (the BLAS picks its blocking by the number of rows).
``"rowwise"``
    ``F.linear`` one batch row at a time (a matrix-vector product per row at one position). A row's
    result never depends on the other rows: same-seed clips are bit-identical whatever the batch size.
    Fastest at 1-2 rows on CPU; it reads the weights once per row, so it loses at large batch.
``"weight_left"``
    ``(W x^T)^T``: the same product with the weight as the left operand, which BLAS libraries run
    with a different kernel (the rows become a narrow right operand). Reads the weights once; not
    bit-identical to ``"gemm"`` and, like it, not batch-invariant in the last bits.
``"f32_gemv"``
    float32 weights and activations, CPU only: :mod:`musicgen.modules.gemv`, a compiled AVX2 kernel
    that multiplies register blocks of weight rows by activation rows, tile by tile (MKL's sgemm at
    2-16 rows reads the weights at a third to a half of the read bandwidth on the CPU measured). Batch- and
    thread-invariant bit for bit (one fixed float32 dot product per output), like ``"rowwise"`` but
    reading the weights once; not bit-identical to ``"gemm"``. With autograd recording it falls back
    to ``F.linear``.
``"bf16_gemv"``
    bfloat16 weights only, CPU only: :mod:`musicgen.modules.gemv`, a compiled AVX2 kernel that
    reads the bf16 weights and multiplies in float32 (PyTorch's bf16 linear on CPUs without bf16
    instructions is bound by its conversion, not by memory). Batch-invariant bit for bit (one fixed
    float32 dot product per output), not bit-identical to ``"gemm"``. With autograd recording it
    falls back to ``F.linear``.
``"int8"``
    Weight-only storage in int8 (per-output-channel scales) through fbgemm's dynamic quantized linear
    (activations are quantized per call, per tensor). Four times fewer weight bytes than fp32; outputs
    are approximate (NOT bit-identical to fp32; about 5% relative error per product on Gaussian
    inputs), CPU only. A weight-only int8 product (``aten._weight_int8pack_mm``) was slower than fp32
    at 2 rows on the AVX2 CPU measured here, so it is not offered.

Packing also fuses weights that take the same input into one matrix (self-attention q/k/v, the K
codebook heads): one call instead of three or K. On the CPU BLAS measured here the fused product is
bit-identical to the separate ones (each output column is still one dot product over the input).
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

from musicgen.modules import gemv

LINEAR_KERNELS = ("auto", "gemm", "rowwise", "weight_left", "f32_gemv", "bf16_gemv", "int8")
# Up to this many rows per product, "auto" multiplies float32 CPU weights from the left. Measured with
# 2 threads on an AMD EPYC (AVX2, MKL), 4096x1024 and 1024x4096 weights: (W x^T)^T took 0.4-0.7x the
# time of F.linear at 2-32 rows, about the same at 64-512 rows.
AUTO_MAX_ROWS = 64
# Up to this many rows, "auto" runs float32 CPU weights through the compiled "f32_gemv" (measured on
# the same CPU, 1 thread, a decode step's weights: 1.3-2.7x faster than (W x^T)^T and F.linear at
# 2-32 rows).
F32_GEMV_MAX_ROWS = 32


class PackedLinear:
    """``y = x W^T`` for ``x [B, n, D_in]`` -> ``[B, n, D_out]`` with one of :data:`LINEAR_KERNELS`."""

    def __init__(self, weight: torch.Tensor, kernel: str = "gemm"):
        if kernel not in LINEAR_KERNELS:
            raise ValueError(f"unknown linear kernel {kernel!r}; expected one of {LINEAR_KERNELS}")
        if weight.dim() != 2:
            raise ValueError(f"a linear weight must be [D_out, D_in], got {tuple(weight.shape)}")
        self.kernel = kernel
        self.out_features = weight.shape[0]
        self.weight = weight.detach().contiguous()
        self.packed = None
        if kernel in ("bf16_gemv", "f32_gemv"):
            want = torch.bfloat16 if kernel == "bf16_gemv" else torch.float32
            if self.weight.dtype != want or self.weight.device.type != "cpu":
                raise ValueError(f"the {kernel} kernel needs {str(want).split('.')[-1]} weights on CPU, "
                                 f"got {self.weight.dtype} on {self.weight.device}")
            gemv.load_library()  # compiles on first use; raises KernelUnavailable saying why
        # decided once here, not per call: "auto" asks for every product of every decode step
        on_cpu = kernel == "auto" and self.weight.device.type == "cpu"
        self.bf16_gemv_ready = on_cpu and self.weight.dtype == torch.bfloat16 and gemv.available()
        self.f32_gemv_ready = on_cpu and self.weight.dtype == torch.float32 and gemv.available()
        if kernel == "int8":
            self.packed = _int8_prepack(self.weight)
            self.weight = None  # the fp32 copy is not kept: that is the point of int8

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        kernel = self.kernel
        if kernel == "auto":
            kernel = self.auto_kernel(x)
        if kernel in ("bf16_gemv", "f32_gemv"):
            if torch.is_grad_enabled() and x.requires_grad:  # the compiled kernels have no backward
                return F.linear(x, self.weight)
            if kernel == "bf16_gemv":
                return gemv.bf16_linear(x, self.weight)
            return gemv.f32_linear(x.float(), self.weight).to(x.dtype)
        if kernel == "gemm":
            return F.linear(x, self.weight)
        if kernel == "rowwise":
            if torch.is_grad_enabled() and x.requires_grad:  # out= does not record autograd
                return torch.stack([F.linear(row, self.weight) for row in x])
            out = x.new_empty(*x.shape[:-1], self.out_features)
            for b in range(x.shape[0]):
                torch.mm(x[b], self.weight.t(), out=out[b])
            return out
        if kernel == "weight_left":  # (W x^T)^T: the BLAS sees a tall-skinny product
            flat = x.reshape(-1, x.shape[-1])
            # contiguous: a transposed result would send attention (SDPA) to its slow math kernel
            return (self.weight @ flat.T).T.contiguous().reshape(*x.shape[:-1], self.out_features)
        y = torch.ops.quantized.linear_dynamic(x.reshape(-1, x.shape[-1]).float(), self.packed)
        return y.reshape(*x.shape[:-1], self.out_features).to(x.dtype)

    def auto_kernel(self, x: torch.Tensor) -> str:
        """The kernel ``"auto"`` runs ``x`` through (see the module docstring)."""
        rows = x.numel() // x.shape[-1] if x.shape[-1] else 0
        if self.weight.device.type != "cpu" or rows > AUTO_MAX_ROWS:
            return "gemm"
        # the compiled kernels: not with autograd recording, nor under torch.compile (a ctypes call would
        # break the graph)
        compiled_ok = not (torch.is_grad_enabled() and x.requires_grad) and not torch.compiler.is_compiling()
        if self.weight.dtype == torch.float32:
            if self.f32_gemv_ready and rows <= F32_GEMV_MAX_ROWS and compiled_ok:
                return "f32_gemv"
            return "weight_left"
        if self.bf16_gemv_ready and compiled_ok:
            return "bf16_gemv"
        return "gemm"


def _int8_prepack(weight: torch.Tensor):
    """Per-output-channel symmetric int8 weights, prepacked for ``quantized.linear_dynamic``."""
    if weight.device.type != "cpu":
        raise ValueError("the int8 kernel runs on CPU only (fbgemm); use bf16/fp16 weights on CUDA")
    if not hasattr(torch.ops.quantized, "linear_dynamic"):
        raise RuntimeError("this torch build has no quantized.linear_dynamic (fbgemm): the int8 kernel "
                           "is unavailable; use kernel='gemm' or 'rowwise'")
    w = weight.float()
    scales = (w.abs().amax(dim=1) / 127.0).clamp_min(1e-12).double()
    zero_points = torch.zeros(w.shape[0], dtype=torch.long)
    with warnings.catch_warnings():  # the quantized tensor API is deprecated but still the fbgemm path
        warnings.simplefilter("ignore")
        q = torch.quantize_per_channel(w, scales, zero_points, 0, torch.qint8)
        return torch.ops.quantized.linear_prepack(q, None)


def fused_weight(*weights: torch.Tensor) -> torch.Tensor:
    """Concatenate ``[D_i, D_in]`` weights along the output dimension (one product for all)."""
    return torch.cat([w.detach() for w in weights], dim=0)
