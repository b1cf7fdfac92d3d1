"""The compiled kernels (``musicgen.modules.gemv``): exactness, batch and thread invariance,
its place in ``fast_linear``'s "auto", and a clear error where it cannot be built."""

from __future__ import annotations

import pytest
import torch

from musicgen.modules import gemv
from musicgen.modules.fast_linear import PackedLinear


def _need_kernel():
    try:
        gemv.load_library()
    except gemv.KernelUnavailable as err:
        pytest.skip(f"bf16 kernel unavailable here: {err}")


def _on_one_thread(fn, *args):
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        return fn(*args)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("m,n,k", [(1, 8, 16), (2, 37, 1003), (3, 64, 256), (5, 130, 72), (12, 9, 300)])
def test_matches_a_float64_product_of_the_bf16_weights(m, n, k):
    _need_kernel()
    torch.manual_seed(m * 1000 + n)
    w = torch.randn(n, k).bfloat16()
    x = torch.randn(m, k)
    ref = x.double() @ w.double().T
    y = gemv.bf16_linear(x, w)
    assert y.dtype == torch.float32 and y.shape == (m, n)
    assert (y.double() - ref).abs().max() <= 1e-5 * ref.abs().max()
    # bf16 activations in, bf16 out: the float32 result rounded once
    yb = gemv.bf16_linear(x.bfloat16(), w)
    assert yb.dtype == torch.bfloat16
    assert torch.equal(yb, gemv.bf16_linear(x.bfloat16().float(), w).bfloat16())


def test_a_row_does_not_depend_on_its_neighbours_or_the_thread_count():
    _need_kernel()
    torch.manual_seed(0)
    w = torch.randn(203, 515).bfloat16()
    x = torch.randn(11, 1, 515)  # 11 rows widen the weights once; 1 row widens them in registers
    together = gemv.bf16_linear(x, w)
    for i in range(11):
        assert torch.equal(gemv.bf16_linear(x[i : i + 1], w), together[i : i + 1])
    assert torch.equal(_on_one_thread(gemv.bf16_linear, x, w), together)


def test_auto_picks_it_for_few_bf16_rows_on_cpu_and_gemm_otherwise():
    _need_kernel()
    torch.manual_seed(0)
    w = torch.randn(48, 32).bfloat16()
    auto = PackedLinear(w, "auto")
    few, many = torch.randn(2, 1, 32).bfloat16(), torch.randn(2, 100, 32).bfloat16()
    assert auto.auto_kernel(few) == "bf16_gemv" and auto.auto_kernel(many) == "gemm"
    assert torch.equal(auto(few), PackedLinear(w, "bf16_gemv")(few))
    assert PackedLinear(w.float(), "auto").auto_kernel(few.float()) == "f32_gemv"
    with pytest.raises(ValueError, match="bfloat16 weights"):
        PackedLinear(w.float(), "bf16_gemv")
    # autograd: falls back to F.linear, which records the graph
    xg = torch.randn(1, 32, dtype=torch.bfloat16, requires_grad=True)
    PackedLinear(w, "bf16_gemv")(xg).float().sum().backward()
    assert xg.grad is not None


def test_a_missing_compiler_is_a_clear_error_and_auto_falls_back(tmp_path, monkeypatch):
    monkeypatch.setattr(gemv, "_state", {})
    monkeypatch.setenv("MUSICGEN_KERNEL_CACHE", str(tmp_path / "kernels"))
    monkeypatch.setenv("CC", "no-such-compiler-xyz")
    monkeypatch.setattr(gemv, "_cpu_has_avx2", lambda: True)
    assert not gemv.available()
    with pytest.raises(gemv.KernelUnavailable, match="no-such-compiler-xyz"):
        gemv.bf16_linear(torch.randn(1, 8), torch.randn(4, 8).bfloat16())
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
    fn = gemv.load_library().musicgen_bf16_gemv
    out = torch.empty(1, x.shape[1], dtype=torch.bfloat16)
    assert fn(x.data_ptr(), 0, x.shape[1], eye.data_ptr(), out.data_ptr(), 1, x.shape[1], 1, x.shape[1],
              x.shape[1], 1) == 0
    assert torch.equal(out.view(torch.int16), x.bfloat16().view(torch.int16))


@pytest.mark.parametrize("m,n,k", [(1, 8, 16), (2, 37, 1003), (3, 64, 256), (4, 5, 7), (7, 130, 72),
                                   (9, 4, 1024), (16, 33, 40)])
def test_f32_matches_a_float64_product(m, n, k):
    """Every block shape (4x2, 2x4, 4x1 and the 1-row edges), k tails of 0-7, odd m and n."""
    _need_kernel()
    torch.manual_seed(m * 1000 + n + k)
    w, x = torch.randn(n, k), torch.randn(m, k)
    ref = x.double() @ w.double().T
    y = gemv.f32_linear(x, w)
    assert y.dtype == torch.float32 and y.shape == (m, n)
    # float32 accumulation of k products: error well within k * eps * sum |x_i w_i|
    bound = k * 2.0**-23 * (x.double().abs() @ w.double().abs().T)
    assert ((y.double() - ref).abs() <= bound).all()


def test_f32_rows_do_not_depend_on_neighbours_threads_or_strides():
    _need_kernel()
    torch.manual_seed(1)
    w = torch.randn(203, 515)
    x = torch.randn(11, 1, 515)
    together = gemv.f32_linear(x, w)
    for i in range(11):
        assert torch.equal(gemv.f32_linear(x[i : i + 1], w), together[i : i + 1])
    for lo, hi in ((1, 3), (2, 6), (3, 10)):  # a row lands in another block shape
        assert torch.equal(gemv.f32_linear(x[lo:hi], w), together[lo:hi])
    assert torch.equal(_on_one_thread(gemv.f32_linear, x, w), together)
    wide = torch.randn(11, 1, 600)[..., :515]  # rows with a stride: copied to contiguous first
    assert torch.equal(gemv.f32_linear(wide, w), gemv.f32_linear(wide.contiguous(), w))


def test_auto_picks_f32_gemv_for_few_float32_rows_and_rejects_bad_inputs():
    _need_kernel()
    from musicgen.modules.fast_linear import F32_GEMV_MAX_ROWS

    torch.manual_seed(0)
    w = torch.randn(48, 32)
    auto = PackedLinear(w, "auto")
    assert auto.auto_kernel(torch.randn(2, 1, 32)) == "f32_gemv"
    assert auto.auto_kernel(torch.randn(F32_GEMV_MAX_ROWS + 1, 1, 32)) == "weight_left"
    assert auto.auto_kernel(torch.randn(2, 100, 32)) == "gemm"
    few = torch.randn(2, 1, 32)
    assert torch.equal(auto(few), gemv.f32_linear(few, w))
    assert torch.allclose(auto(few), torch.nn.functional.linear(few, w), atol=1e-5)
    with pytest.raises(ValueError, match="float32 weights"):
        PackedLinear(w.bfloat16(), "f32_gemv")
    with pytest.raises(ValueError, match="float32 CPU activations"):
        gemv.f32_linear(few.double(), w)
    with pytest.raises(ValueError, match="features"):
        gemv.f32_linear(torch.randn(1, 31), w)
    xg = torch.randn(1, 32, requires_grad=True)  # autograd: F.linear records the graph
    PackedLinear(w, "f32_gemv")(xg).sum().backward()
    assert xg.grad is not None


def test_read_sum_is_a_plain_sum():
    _need_kernel()
    x = torch.arange(1003, dtype=torch.float32) / 7  # a tail past the last 64-float block
    assert gemv.read_sum(x) == pytest.approx(float(x.double().sum()), rel=1e-6)
    with pytest.raises(ValueError, match="contiguous float32"):
        gemv.read_sum(x.double())
