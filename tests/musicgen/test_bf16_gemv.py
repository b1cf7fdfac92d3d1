"""The compiled bf16 kernel (``musicgen.modules.bf16_gemv``): exactness, batch and thread invariance,
its place in ``fast_linear``'s "auto", and a clear error where it cannot be built."""

from __future__ import annotations

import pytest
import torch

from musicgen.modules import bf16_gemv
from musicgen.modules.fast_linear import PackedLinear


def _need_kernel():
    try:
        bf16_gemv.load_library()
    except bf16_gemv.KernelUnavailable as err:
        pytest.skip(f"bf16 kernel unavailable here: {err}")


@pytest.mark.parametrize("m,n,k", [(1, 8, 16), (2, 37, 1003), (3, 64, 256), (5, 130, 72)])
def test_matches_a_float64_product_of_the_bf16_weights(m, n, k):
    _need_kernel()
    torch.manual_seed(m * 1000 + n)
    w = torch.randn(n, k).bfloat16()
    x = torch.randn(m, k)
    ref = x.double() @ w.double().T
    y = bf16_gemv.bf16_linear(x, w)
    assert y.dtype == torch.float32 and y.shape == (m, n)
    assert (y.double() - ref).abs().max() <= 1e-5 * ref.abs().max()
    # bf16 activations in, bf16 out: the float32 result rounded once
    yb = bf16_gemv.bf16_linear(x.bfloat16(), w)
    assert yb.dtype == torch.bfloat16
    assert torch.equal(yb, bf16_gemv.bf16_linear(x.bfloat16().float(), w).bfloat16())


def test_a_row_does_not_depend_on_its_neighbours_or_the_thread_count():
    _need_kernel()
    torch.manual_seed(0)
    w = torch.randn(203, 515).bfloat16()
    x = torch.randn(7, 1, 515)
    together = bf16_gemv.bf16_linear(x, w)
    for i in range(7):
        assert torch.equal(bf16_gemv.bf16_linear(x[i : i + 1], w), together[i : i + 1])
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = bf16_gemv.bf16_linear(x, w)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(single, together)


def test_auto_picks_it_for_few_bf16_rows_on_cpu_and_gemm_otherwise():
    _need_kernel()
    torch.manual_seed(0)
    w = torch.randn(48, 32).bfloat16()
    auto = PackedLinear(w, "auto")
    few, many = torch.randn(2, 1, 32).bfloat16(), torch.randn(2, 100, 32).bfloat16()
    assert auto.auto_kernel(few) == "bf16_gemv" and auto.auto_kernel(many) == "gemm"
    assert torch.equal(auto(few), PackedLinear(w, "bf16_gemv")(few))
    assert PackedLinear(w.float(), "auto").auto_kernel(few.float()) == "weight_left"
    with pytest.raises(ValueError, match="bfloat16 weights"):
        PackedLinear(w.float(), "bf16_gemv")
    # autograd: falls back to F.linear, which records the graph
    xg = torch.randn(1, 32, dtype=torch.bfloat16, requires_grad=True)
    PackedLinear(w, "bf16_gemv")(xg).float().sum().backward()
    assert xg.grad is not None


def test_a_missing_compiler_is_a_clear_error_and_auto_falls_back(tmp_path, monkeypatch):
    monkeypatch.setattr(bf16_gemv, "_state", {})
    monkeypatch.setenv("MUSICGEN_KERNEL_CACHE", str(tmp_path / "kernels"))
    monkeypatch.setenv("CC", "no-such-compiler-xyz")
    monkeypatch.setattr(bf16_gemv, "_cpu_has_avx2", lambda: True)
    assert not bf16_gemv.available()
    with pytest.raises(bf16_gemv.KernelUnavailable, match="no-such-compiler-xyz"):
        bf16_gemv.bf16_linear(torch.randn(1, 8), torch.randn(4, 8).bfloat16())
    w = torch.randn(4, 8).bfloat16()
    x = torch.randn(1, 8).bfloat16()
    assert PackedLinear(w, "auto").auto_kernel(x) == "gemm"
    assert torch.equal(PackedLinear(w, "auto")(x), torch.nn.functional.linear(x, w))


def test_bf16_results_round_like_torch_including_ties():
    _need_kernel()
    # x times an identity weight is x exactly in float32; written as bf16 it must round like torch
    bits = torch.tensor([0x3F808000, 0x3F818000, 0x3F807FFF, 0x3F808001, 0xBF818000, 0x7F7FFFFF,
                         0x00008000, 0x3F800000], dtype=torch.int64).to(torch.int32)
    x = bits.view(torch.float32)[None]
    eye = torch.eye(x.shape[1]).bfloat16()
    fn = bf16_gemv.load_library().musicgen_bf16_gemv
    out = torch.empty(1, x.shape[1], dtype=torch.bfloat16)
    assert fn(x.data_ptr(), 0, x.shape[1], eye.data_ptr(), out.data_ptr(), 1, x.shape[1], 1, x.shape[1],
              x.shape[1], 1) == 0
    assert torch.equal(out.view(torch.int16), x.bfloat16().view(torch.int16))
