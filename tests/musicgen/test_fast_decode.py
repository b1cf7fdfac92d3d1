"""Decode kernels (musicgen.modules.fast_linear): packed weights, exactness and batch invariance."""
from __future__ import annotations

import os

import pytest
import torch

from musicgen.modules.fast_linear import PackedLinear, fused_weight
from musicgen.modules.patterns import get_pattern
from musicgen.testing import tiny_lm

K = 4



@pytest.fixture(scope="module")
def lm():
    return tiny_lm(seed=0)


def _cond(batch: int, seed: int = 0, dim: int = 24):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 5, dim, generator=g), torch.ones(batch, 5, dtype=torch.long)


def _step_logits(lm, kernel, cond, mask, tokens):
    state = lm.start_state(cond.shape[0], tokens.shape[-1], cond, mask, None, kernel=kernel)
    return lm.heads(lm.transformer.step(lm.embed(tokens, 0), state), kernel)


def test_packed_kernels_match_the_modules(lm):
    cond, mask = _cond(3)
    tokens = torch.randint(0, 17, (3, K, 6), generator=torch.Generator().manual_seed(1))
    plain = _step_logits(lm, None, cond, mask, tokens)
    assert torch.equal(plain, lm(tokens, condition=cond, condition_mask=mask))
    # fused q/k/v and fused heads through the same BLAS call: bit-identical
    assert torch.equal(_step_logits(lm, "gemm", cond, mask, tokens), plain)
    for kernel in ("rowwise", "weight_left"):
        assert (_step_logits(lm, kernel, cond, mask, tokens) - plain).abs().max() < 1e-4
    int8 = _step_logits(lm, "int8", cond, mask, tokens)
    assert int8.shape == plain.shape and not torch.equal(int8, plain)  # approximate by design


def test_int8_linear_is_close_to_float():
    w = torch.randn(256, 128, generator=torch.Generator().manual_seed(0)) / 12
    x = torch.randn(2, 3, 128, generator=torch.Generator().manual_seed(1))
    ref = x @ w.T
    err = (PackedLinear(w, "int8")(x) - ref).norm() / ref.norm()
    assert 0 < err < 0.08  # fbgemm quantizes the activations per call too (about 5% here)


def test_kernels_generate_the_same_greedy_codes(lm):
    pattern = get_pattern("delay", num_codebooks=K)
    cond, mask = _cond(2, seed=3)
    out = {k: lm.generate(pattern, 10, condition=cond, condition_mask=mask, use_sampling=False, kernel=k)
           for k in ("gemm", "rowwise", "weight_left", "auto")}
    assert all(torch.equal(out["gemm"], out[k]) for k in ("rowwise", "weight_left", "auto"))


def test_auto_kernel_picks_weight_left_for_few_float32_cpu_rows_without_the_compiled_kernel():
    from musicgen.modules.fast_linear import AUTO_MAX_ROWS

    w = torch.randn(96, 40, generator=torch.Generator().manual_seed(0))
    few = torch.randn(2, 1, 40, generator=torch.Generator().manual_seed(1))
    many = torch.randn(2, AUTO_MAX_ROWS, 40, generator=torch.Generator().manual_seed(2))
    auto = PackedLinear(w, "auto")
    auto.f32_gemv_ready = False  # as on a CPU without AVX2 or a C compiler
    assert torch.equal(auto(few), PackedLinear(w, "weight_left")(few))
    assert auto(few).is_contiguous()  # a transposed result would send SDPA to its slow math kernel
    assert torch.equal(auto(many), PackedLinear(w, "gemm")(many))
    half = PackedLinear(w.bfloat16(), "auto")
    assert torch.equal(half(few.bfloat16()), PackedLinear(w.bfloat16(), "gemm")(few.bfloat16()))


def test_rowwise_is_bit_exact_whatever_the_batch():
    """At a width where the BLAS blocks by the number of rows, a row computed alone equals the row
    computed in a batch only with the rowwise kernel."""
    lm = tiny_lm(seed=1, dim=256, num_heads=4, card=64, cond_dim=24)
    cond, mask = _cond(4, seed=4)
    tokens = torch.randint(0, 65, (4, K, 1), generator=torch.Generator().manual_seed(5))
    batched = _step_logits(lm, "rowwise", cond, mask, tokens)
    for i in range(4):
        alone = _step_logits(lm, "rowwise", cond[i:i + 1], mask[i:i + 1], tokens[i:i + 1])
        assert torch.equal(alone[0], batched[i])
    pattern = get_pattern("delay", num_codebooks=K)
    kw = dict(condition_mask=mask, top_k=20, kernel="rowwise")
    clips = lm.generate(pattern, 6, condition=cond, seeds=[7, 8, 9, 10], **kw)
    alone = lm.generate(pattern, 6, condition=cond[2:3], seeds=[9], **{**kw, "condition_mask": mask[2:3]})
    assert torch.equal(alone[0], clips[2])


def test_packed_weights_follow_parameter_changes(lm):
    lm = tiny_lm(seed=2)
    cond, mask = _cond(1)
    tokens = torch.randint(0, 16, (1, K, 3), generator=torch.Generator().manual_seed(6))
    before = _step_logits(lm, "gemm", cond, mask, tokens)
    with torch.no_grad():
        lm.transformer.layers[0].self_attn.k_proj.weight.mul_(2.0)  # in place: the fused copy is stale
        lm.linears[1].weight.add_(0.5)
    after = _step_logits(lm, "gemm", cond, mask, tokens)
    assert torch.equal(after, _step_logits(lm, None, cond, mask, tokens))
    assert not torch.equal(after, before)


def test_packed_linear_shapes_and_errors():
    w1, w2 = torch.randn(5, 3), torch.randn(2, 3)
    fused = PackedLinear(fused_weight(w1, w2), "rowwise")
    x = torch.randn(2, 4, 3)
    y = fused(x)
    assert y.shape == (2, 4, 7)
    assert torch.allclose(y[..., :5], x @ w1.T, atol=1e-6) and torch.allclose(y[..., 5:], x @ w2.T, atol=1e-6)
    with pytest.raises(ValueError, match="unknown linear kernel 'fast'"):
        PackedLinear(w1, "fast")
    with pytest.raises(ValueError, match=r"\[D_out, D_in\]"):
        PackedLinear(torch.randn(3), "gemm")


def test_generate_option_errors(lm):
    pattern = get_pattern("delay", num_codebooks=K)
    cond, mask = _cond(1)
    with pytest.raises(ValueError, match="unknown kernel 'blas'"):
        lm.generate(pattern, 4, condition=cond, kernel="blas")
    with pytest.raises(ValueError, match="cuda_graph=True needs the LM on a CUDA device"):
        lm.generate(pattern, 4, condition=cond, cuda_graph=True)
    with pytest.raises(ValueError, match="two_step_cfg=True"):
        lm.generate(pattern, 4, condition=cond, static_shapes=True, two_step_cfg=True)


@pytest.mark.parametrize("kernel", ["gemm", "rowwise"])
def test_static_shape_steps_generate_the_same_codes(lm, kernel):
    """The step CUDA graphs replay (fixed shapes, attention over the whole cache under a position
    mask), run eagerly on CPU: same greedy and sampled codes, with a padded condition and a prompt."""
    pattern = get_pattern("delay", num_codebooks=K)
    cond, mask = _cond(2, seed=11)
    mask[1, 3:] = 0
    prompt = torch.randint(0, 16, (2, K, 3), generator=torch.Generator().manual_seed(12))
    for kw in (dict(use_sampling=False), dict(seeds=[3, 4], top_k=6)):
        kw.update(condition=cond, condition_mask=mask, prompt=prompt, kernel=kernel)
        assert torch.equal(lm.generate(pattern, 12, static_shapes=True, **kw), lm.generate(pattern, 12, **kw))


def test_static_step_matches_sliced_step_with_a_masked_prefix():
    lm = tiny_lm(seed=3, preset="tiny_melody")
    prefix = torch.randn(2, 3, 32, generator=torch.Generator().manual_seed(4))
    keep = torch.tensor([[1, 1, 1], [1, 0, 1]])
    kw = dict(prefix=prefix, prefix_mask=keep, use_sampling=False)
    pattern = get_pattern("delay", num_codebooks=K)
    assert torch.equal(lm.generate(pattern, 8, static_shapes=True, **kw), lm.generate(pattern, 8, **kw))


def test_bf16_weights_generate(lm):
    lm16 = tiny_lm(seed=0).to(torch.bfloat16)
    pattern = get_pattern("delay", num_codebooks=K)
    cond, mask = _cond(2, seed=3)
    codes = lm16.generate(pattern, 8, condition=cond, condition_mask=mask, seeds=[1, 2], top_k=5)
    assert codes.shape == (2, K, 8) and codes.dtype == torch.long and int(codes.max()) < 16
    again = lm16.generate(pattern, 8, condition=cond, condition_mask=mask, seeds=[1, 2], top_k=5)
    assert torch.equal(codes, again)


def test_bf16_clip_does_not_depend_on_the_batch_with_the_default_kernel():
    from musicgen.modules import gemv

    if not gemv.available():
        pytest.skip("bf16 kernel unavailable here (no AVX2 or no C compiler): auto runs gemm")
    lm16 = tiny_lm(seed=0).to(torch.bfloat16)
    pattern = get_pattern("delay", num_codebooks=K)
    cond, mask = _cond(3, seed=3)
    kw = dict(top_k=5)
    together = lm16.generate(pattern, 12, condition=cond, condition_mask=mask, seeds=[1, 2, 3], **kw)
    for i in range(3):
        alone = lm16.generate(pattern, 12, condition=cond[i : i + 1], condition_mask=mask[i : i + 1],
                              seeds=[i + 1], **kw)
        assert torch.equal(alone[0], together[i]), i


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("MUSICGEN_TEST_COMPILE") != "1",
                    reason="inductor compilation takes minutes on a 2-core CPU; set MUSICGEN_TEST_COMPILE=1")
def test_compiled_step_gives_the_same_tokens(lm):
    pattern = get_pattern("delay", num_codebooks=K)
    cond, mask = _cond(2, seed=3)
    kw = dict(condition=cond, condition_mask=mask, seeds=[1, 2], top_k=8)
    eager = lm.generate(pattern, 10, **kw)
    assert torch.equal(lm.generate(pattern, 10, compile=True, **kw), eager)
    one = lm.generate(pattern, 10, compile=True, **{**kw, "condition": cond[1:], "condition_mask": mask[1:],
                                                      "seeds": [2]})
    assert torch.equal(one[0], eager[1])


def test_half_weights_on_cpu_attend_in_float32(lm):
    """bf16 weights on CPU: caches and attention in float32 (attention_dtype), products in bf16; the
    step logits stay within bf16 rounding of the float32 model's."""
    import copy

    cond, mask = _cond(2, seed=4)
    tokens = torch.randint(0, 17, (2, K, 5), generator=torch.Generator().manual_seed(5))
    ref = _step_logits(lm, "auto", cond, mask, tokens)
    half = copy.deepcopy(lm).to(torch.bfloat16)
    state = half.start_state(2, 5, cond.bfloat16(), mask, None, kernel="auto")
    assert state.self_k[0].dtype == torch.float32 and state.cross_k[0].dtype == torch.float32
    out = half.heads(half.transformer.step(half.embed(tokens, 0), state), "auto")
    assert out.dtype == torch.bfloat16
    err = (out.float() - ref).abs().max() / ref.abs().max()
    assert 0 < err < 0.05
