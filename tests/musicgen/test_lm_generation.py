"""LM forward/decoding properties and generation behaviour on tiny random models."""
from __future__ import annotations

import pytest
import torch

from musicgen.checkpoints.lm_native import load_lm, save_lm
from musicgen.modules.patterns import get_pattern, pattern_names
from musicgen.testing import tiny_lm

K = 4


@pytest.fixture(scope="module")
def lm():
    return tiny_lm(seed=0)


def _cond(batch: int, length: int = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    cond = torch.randn(batch, length, 24, generator=g)
    mask = torch.ones(batch, length, dtype=torch.long)
    if batch > 1:
        mask[1, 2:] = 0
    return cond, mask


def test_incremental_decoding_matches_full_forward(lm):
    cond, mask = _cond(2)
    tokens = torch.randint(0, 17, (2, K, 8), generator=torch.Generator().manual_seed(1))
    full = lm(tokens, condition=cond, condition_mask=mask)
    state = lm.start_state(2, 8, cond, mask, None)
    steps = [lm.heads(lm.transformer.step(lm.embed(tokens[..., :3], 0), state))]  # a 3-token prefill
    for s in range(3, 8):
        steps.append(lm.heads(lm.transformer.step(lm.embed(tokens[..., s:s + 1], s), state)))
    assert (torch.cat(steps, dim=2) - full).abs().max() < 1e-5


def test_logits_are_causal_and_ignore_masked_condition(lm):
    cond, mask = _cond(2)
    tokens = torch.randint(0, 16, (2, K, 6), generator=torch.Generator().manual_seed(2))
    base = lm(tokens, condition=cond, condition_mask=mask)
    changed = tokens.clone()
    changed[..., 4:] = (changed[..., 4:] + 1) % 16
    out = lm(changed, condition=cond, condition_mask=mask)
    assert torch.equal(out[..., :4, :], base[..., :4, :])
    assert not torch.allclose(out[..., 4:, :], base[..., 4:, :])
    cond2 = cond.clone()
    cond2[1, 2:] = 100.0  # masked positions of row 1
    out = lm(tokens, condition=cond2, condition_mask=mask)
    assert torch.allclose(out, base, atol=1e-6)


def test_prefix_lm_masked_prefix_positions_do_not_matter():
    lm = tiny_lm(seed=3, preset="tiny_melody")
    prefix = torch.randn(2, 3, 32, generator=torch.Generator().manual_seed(4))
    keep = torch.tensor([[1, 1, 1], [1, 0, 1]])
    tokens = torch.randint(0, 16, (2, K, 5), generator=torch.Generator().manual_seed(5))
    base = lm(tokens, prefix=prefix, prefix_mask=keep)
    moved = prefix.clone()
    moved[1, 1] += 50.0
    out = lm(tokens, prefix=moved, prefix_mask=keep)
    assert torch.allclose(out[1], base[1], atol=1e-5)
    out = lm(tokens, prefix=moved)
    assert not torch.allclose(out[1], base[1], atol=1e-3)
    codes = lm.generate(get_pattern("delay", num_codebooks=K), 6, prefix=prefix, prefix_mask=keep,
                        seeds=[0, 1], top_k=5)
    assert codes.shape == (2, K, 6) and int(codes.max()) < 16


def test_same_seed_bit_identical_and_batch_invariant(lm):
    pattern = get_pattern("delay", num_codebooks=K)
    cond, mask = _cond(3, seed=6)
    mask[1] = 1
    kw = dict(cfg_coef=3.0, top_k=8, temperature=1.0)
    a = lm.generate(pattern, 10, condition=cond, condition_mask=mask, seeds=[11, 12, 13], **kw)
    b = lm.generate(pattern, 10, condition=cond, condition_mask=mask, seeds=[11, 12, 13], **kw)
    assert torch.equal(a, b)
    for i, seed in enumerate([11, 12, 13]):
        row = slice(i, i + 1)
        alone = lm.generate(pattern, 10, condition=cond[row], condition_mask=mask[row], seeds=[seed], **kw)
        assert torch.equal(alone[0], a[i])
    other = lm.generate(pattern, 10, condition=cond, condition_mask=mask, seeds=[14, 12, 13], **kw)
    assert not torch.equal(other[0], a[0]) and torch.equal(other[1:], a[1:])


def test_two_step_cfg_equals_batched_cfg(lm):
    pattern = get_pattern("delay", num_codebooks=K)
    cond, mask = _cond(2, seed=7)
    one = lm.generate(pattern, 9, condition=cond, condition_mask=mask, use_sampling=False)
    two = lm.generate(pattern, 9, condition=cond, condition_mask=mask, use_sampling=False, two_step_cfg=True)
    assert torch.equal(one, two)
    plain = lm.generate(pattern, 9, condition=cond, condition_mask=mask, use_sampling=False, cfg_coef=1.0)
    assert not torch.equal(one, plain)  # guidance changes the greedy path of this random model


def test_continuation_keeps_the_prompt_and_reports_progress(lm):
    pattern = get_pattern("delay", num_codebooks=K)
    cond, mask = _cond(2, seed=8)
    prompt = torch.randint(0, 16, (2, K, 4), generator=torch.Generator().manual_seed(9))
    calls = []
    out = lm.generate(pattern, 10, condition=cond, condition_mask=mask, prompt=prompt, seeds=[1, 2],
                      callback=lambda done, total: calls.append((done, total)))
    assert torch.equal(out[..., :4], prompt)
    total = pattern.num_steps(10) - 4  # steps before the first unknown position are a single prefill
    assert calls == [(i, total) for i in range(1, total + 1)]
    full = lm.generate(pattern, 4, condition=cond, condition_mask=mask, prompt=prompt)
    assert torch.equal(full, prompt)


def test_generation_errors(lm):
    pattern = get_pattern("delay", num_codebooks=K)
    cond, mask = _cond(1)
    with pytest.raises(ValueError, match="pattern has 3 codebooks"):
        lm.generate(get_pattern("delay", num_codebooks=3), 5, condition=cond)
    with pytest.raises(ValueError, match="num_frames must be positive"):
        lm.generate(pattern, 0, condition=cond)
    with pytest.raises(ValueError, match="max_positions=256"):
        lm.generate(pattern, 300, condition=cond)
    with pytest.raises(ValueError, match=r"prompt codes must be < card=16"):
        lm.generate(pattern, 5, condition=cond, prompt=torch.full((1, K, 2), 16))
    with pytest.raises(ValueError, match=r"expected 0..16"):
        lm.generate(pattern, 5, condition=cond, prompt=torch.full((1, K, 2), -1))
    with pytest.raises(ValueError, match="condition"):
        lm.generate(pattern, 5, batch_size=1)
    with pytest.raises(ValueError, match="2 seeds for a batch of 1"):
        lm.generate(pattern, 5, condition=cond, seeds=[1, 2])
    with pytest.raises(ValueError, match=r"tokens must be \[B, 4, S\]"):
        lm(torch.zeros(1, 3, 5, dtype=torch.long), condition=cond)
    with pytest.raises(ValueError, match=r"expected 0..16"):
        lm(torch.full((1, K, 5), 17), condition=cond)


def test_native_round_trip_is_exact(lm, tmp_path):
    save_lm(lm, tmp_path / "lm")
    again = load_lm(tmp_path / "lm")
    assert again.config == lm.config
    for (n1, p1), (n2, p2) in zip(lm.state_dict().items(), again.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2)
    cond, mask = _cond(1)
    pattern = get_pattern("delay", num_codebooks=K)
    assert torch.equal(lm.generate(pattern, 6, condition=cond, seeds=[5]),
                       again.generate(pattern, 6, condition=cond, seeds=[5]))
    (tmp_path / "lm" / "lm.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="lm.safetensors"):
        load_lm(tmp_path / "lm")


def _reference_greedy(lm, pattern, num_frames, cond, prompt):
    """Slow reference: full teacher-forced forward at every step, no cache, no CFG."""
    card = lm.config.card
    codes = torch.zeros(cond.shape[0], pattern.num_codebooks, num_frames, dtype=torch.long)
    codes[..., : prompt.shape[-1]] = prompt
    seq, valid = pattern.build(codes, card)
    known = torch.zeros_like(codes)
    known[..., : prompt.shape[-1]] = 1
    known_seq, _ = pattern.build(known, 0)
    for s in range(seq.shape[-1]):
        inputs = torch.cat([torch.full_like(seq[..., :1], card), seq[..., :s]], dim=-1)
        best = lm(inputs, condition=cond)[..., -1, :].argmax(-1)
        sample_here = valid[:, s] & (known_seq[0, :, s] == 0)
        seq[..., s] = torch.where(sample_here, best, seq[..., s])
    return pattern.revert(seq)


@pytest.mark.parametrize("name", pattern_names())
def test_every_pattern_generates_like_a_cache_free_reference(name):
    k = 8 if name.startswith("stereo") else 4
    lm = tiny_lm(seed=1, num_codebooks=k)
    pattern = get_pattern(name, num_codebooks=k)
    cond, _ = _cond(2, seed=10)
    prompt = torch.randint(0, 16, (2, k, 2), generator=torch.Generator().manual_seed(11))
    ours = lm.generate(pattern, 5, condition=cond, prompt=prompt, use_sampling=False, cfg_coef=1.0)
    assert ours.shape == (2, k, 5) and int(ours.min()) >= 0 and int(ours.max()) < 16
    assert torch.equal(ours[..., :2], prompt)
    assert torch.equal(ours, _reference_greedy(lm, pattern, 5, cond, prompt))
    sampled = lm.generate(pattern, 5, condition=cond, seeds=[3, 4], top_k=4)
    assert sampled.shape == (2, k, 5) and int(sampled.max()) < 16


def test_short_null_condition_is_padded_with_masked_zeros(lm):
    pattern = get_pattern("delay", num_codebooks=K)
    cond, mask = _cond(2, seed=12)
    default = lm.generate(pattern, 7, condition=cond, condition_mask=mask, use_sampling=False)
    short = dict(null_condition=torch.zeros(2, 1, 24), null_condition_mask=torch.zeros(2, 1, dtype=torch.int))
    assert torch.equal(default, lm.generate(pattern, 7, condition=cond, condition_mask=mask,
                                            use_sampling=False, **short))
    assert torch.equal(default, lm.generate(pattern, 7, condition=cond, condition_mask=mask,
                                            use_sampling=False, two_step_cfg=True, **short))
    with pytest.raises(ValueError, match="give masks"):
        lm.generate(pattern, 7, condition=cond, null_condition=torch.zeros(2, 1, 24))
