from __future__ import annotations

import pytest
import torch

import musicgen.modules.patterns as patterns_module
from musicgen.modules.patterns import get_pattern, pattern_channels, pattern_names, pattern_steps

STEREO = {"stereo_delay", "stereo_partial_delay"}
SPECIAL = 2048


def make(name: str, num_codebooks: int | None = None, **options):
    if num_codebooks is None:
        num_codebooks = 8 if name in STEREO else 4
    return get_pattern(name, num_codebooks, **options)


ALL = pattern_names()
# every named pattern plus non-default options and other codebook counts
CASES = [(n, None, {}) for n in ALL] + [
    ("delay", 4, {"delays": [0, 2, 3, 5]}),
    ("delay", 3, {"delays": [0, 0, 4]}),
    ("partial_delay", 4, {"delay": 3}),
    ("delay", 1, {}),
    ("flattening", 2, {}),
    ("coarse_first", 8, {}),
    ("partial_flattening", 2, {}),
    ("stereo_delay", 4, {}),
    ("stereo_partial_delay", 8, {"delay": 2}),
]
IDS = [f"{n}-K{k}-{o}" if (k or o) else n for n, k, o in CASES]


def test_names_are_the_issue_list():
    assert set(ALL) == {
        "parallel", "delay", "partial_delay", "flattening", "partial_flattening", "coarse_first",
        "stereo_delay", "stereo_partial_delay",
    }


@pytest.mark.parametrize("name,K,opts", CASES, ids=IDS)
@pytest.mark.parametrize("T", [1, 2, 7])
def test_each_code_placed_exactly_once(name, K, opts, T):
    p = make(name, K, **opts)
    K = p.num_codebooks
    # codes encode (k, t) uniquely so we can count where each one lands
    codes = (torch.arange(K).view(K, 1) * T + torch.arange(T).view(1, T)).unsqueeze(0)
    seq, mask = p.build(codes, special_token=-1)
    S = p.num_steps(T)
    assert seq.shape == (1, K, S) and mask.shape == (K, S) and mask.dtype == torch.bool
    placed = seq[0][mask]
    counts = torch.bincount(placed, minlength=K * T)
    assert counts.tolist() == [1] * (K * T)
    # codebook k's codes only in row k; special token exactly where the mask is False
    for k in range(K):
        row = seq[0, k][mask[k]]
        assert ((row // T) == k).all()
    assert (seq[0][~mask] == -1).all()
    assert mask.sum().item() == K * T
    # step_index / frame_index / valid_mask agree with build
    steps = p.step_index(T)
    frames = p.frame_index(T)
    assert torch.equal(p.valid_mask(T), mask)
    assert torch.equal(frames >= 0, mask)
    for k in range(K):
        for t in range(T):
            assert seq[0, k, steps[k, t]].item() == k * T + t
            assert frames[k, steps[k, t]].item() == t


@pytest.mark.parametrize("name,K,opts", CASES, ids=IDS)
def test_revert_inverts_build(name, K, opts):
    p = make(name, K, **opts)
    K = p.num_codebooks
    g = torch.Generator().manual_seed(0)
    for T in (1, 5, 33):
        codes = torch.randint(0, SPECIAL, (3, K, T), generator=g)
        seq, _ = p.build(codes, SPECIAL)
        assert torch.equal(p.revert(seq), codes)
        assert p.num_frames(p.num_steps(T)) == T
        # logits-like tensors with trailing dims: revert picks the value at each code's step
        S = p.num_steps(T)
        logits = torch.randn(3, K, S, 5, 2, generator=g)
        out = p.revert(logits)
        assert out.shape == (3, K, T, 5, 2)
        steps = p.step_index(T)
        for k in range(K):
            assert torch.equal(out[:, k], logits[:, k, steps[k]])


@pytest.mark.parametrize("name,K,opts", CASES, ids=IDS)
def test_frames_of_a_codebook_placed_at_strictly_increasing_steps(name, K, opts):
    steps = make(name, K, **opts).step_index(9)
    assert (steps[:, 1:] > steps[:, :-1]).all()


@pytest.mark.parametrize("name", ALL)
def test_coarse_codebook_not_after_finer_ones_in_a_frame(name):
    steps = make(name).step_index(9)
    assert (steps[0:1] <= steps).all()


@pytest.mark.parametrize("name", ["delay", "flattening", "partial_flattening", "coarse_first",
                                  "stereo_delay"])
def test_autoregressive_patterns_place_coarse_strictly_before_fine(name):
    # these patterns let codebook 0 of a frame be seen when its finer codebooks are predicted
    # (input is shifted right by one step, so the step must be strictly earlier)
    p = make(name)
    steps = p.step_index(6)
    first_fine = 2 if name in STEREO else 1
    assert (steps[0:1] < steps[first_fine:]).all()


def test_delay_predicts_finer_codebook_after_every_coarser_code_of_its_frame():
    steps = make("delay").step_index(6)
    for k in range(1, 4):
        assert (steps[:k] < steps[k:k + 1]).all()


TABLE4 = {  # paper Table 4, T=1500 frames, K=4, plus our delay tail
    "parallel": 1500,
    "delay": 1500 + 3,
    "partial_delay": 1500 + 1,
    "partial_flattening": 3000,
    "coarse_first": 3000,
    "flattening": 6000,
}


@pytest.mark.parametrize("name", list(TABLE4))
def test_step_counts_match_table_4(name):
    p = make(name)
    assert p.num_steps(1500) == TABLE4[name]
    assert p.num_steps(1500) - p.max_delay == {"flattening": 6000, "partial_flattening": 3000,
                                                "coarse_first": 3000}.get(name, 1500)
    assert p.valid_mask(1500).shape == (4, TABLE4[name])


TABLE4_FORMULA = {"parallel": "T", "delay": "T", "partial_delay": "T", "partial_flattening": "2T",
                  "coarse_first": "2T", "flattening": "K·T"}


@pytest.mark.parametrize("name", list(TABLE4))
def test_pattern_steps_give_table_4_counts_the_tail_and_the_formula(name):
    counts = pattern_steps(name, num_codebooks=4, num_frames=1500)
    per_frame = {"T": 1, "2T": 2, "K·T": 4}[TABLE4_FORMULA[name]]  # Table 4, K=4: 1500 / 3000 / 6000
    assert (counts.pattern, counts.num_codebooks, counts.num_frames) == (name, 4, 1500)
    assert counts.formula == TABLE4_FORMULA[name]
    assert counts.steps == per_frame * 1500
    assert counts.tail == make(name).max_delay
    assert counts.total == TABLE4[name] == make(name).num_steps(1500)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("K,T", [(2, 1), (4, 7), (8, 30)])
def test_step_counts_total_is_num_steps_for_any_size(name, K, T):
    p = get_pattern(name, num_codebooks=K)
    counts = p.step_counts(T)
    assert counts.total == p.num_steps(T) == p.valid_mask(T).shape[1]
    assert counts.steps == p.steps_per_frame * T and counts.tail == p.max_delay
    assert counts == pattern_steps(name, K, T)


def test_stereo_is_an_attribute_not_a_name():
    for name in ALL:
        p = make(name)
        assert p.channels == pattern_channels(name) == (2 if name in STEREO else 1)
        assert p.step_counts(5).channels == p.channels
    from musicgen.modules.pattern_types import DelayPattern

    assert DelayPattern("stereo_custom", 4, [0, 0, 2, 2], channels=2).channels == 2
    assert DelayPattern("stereo_looking_name", 4, [0, 1, 2, 3]).channels == 1
    with pytest.raises(ValueError, match="channels"):
        DelayPattern("odd", 3, [0, 0, 1], channels=2)
    with pytest.raises(ValueError, match="unknown codebook pattern"):
        pattern_channels("stereo_flattening")


def test_step_counts_small():
    assert make("parallel").num_steps(3) == 3
    assert make("delay", 4, delays=[0, 2, 3, 5]).num_steps(3) == 8
    assert make("partial_delay", 4, delay=3).num_steps(3) == 6
    assert make("stereo_delay").num_steps(3) == 6
    assert make("stereo_partial_delay").num_steps(3) == 4
    assert make("flattening", 3).num_steps(5) == 15


def test_exact_step_formulas():
    T = 5
    t = torch.arange(T)
    k = torch.arange(4).view(4, 1)
    assert torch.equal(make("parallel").step_index(T), t.expand(4, T))
    assert torch.equal(make("delay").step_index(T), t + k)
    custom = make("delay", 4, delays=[3, 0, 2, 1]).step_index(T)
    assert torch.equal(custom, t + torch.tensor([[3], [0], [2], [1]]))
    assert torch.equal(make("partial_delay").step_index(T), t + torch.tensor([[0], [1], [1], [1]]))
    assert torch.equal(make("flattening").step_index(T), t * 4 + k)
    pf = make("partial_flattening").step_index(T)
    assert torch.equal(pf[0], 2 * t) and (pf[1:] == 2 * t + 1).all()
    cf = make("coarse_first").step_index(T)
    assert torch.equal(cf[0], t) and (cf[1:] == T + t).all()


def test_flattening_types_place_the_stated_codebooks_per_step():
    T = 4
    flat = make("flattening").valid_mask(T)
    assert (flat.sum(0) == 1).all()
    assert torch.equal(flat.float().argmax(0), torch.arange(4 * T) % 4)
    pf = make("partial_flattening").valid_mask(T)
    assert pf[0, 0::2].all() and not pf[1:, 0::2].any()
    assert pf[1:, 1::2].all() and not pf[0, 1::2].any()
    cf = make("coarse_first").valid_mask(T)
    assert cf[0, :T].all() and not cf[1:, :T].any()
    assert cf[1:, T:].all() and not cf[0, T:].any()


@pytest.mark.parametrize("name", sorted(STEREO))
@pytest.mark.parametrize("K", [2, 4, 8])
def test_stereo_left_and_right_share_a_step(name, K):
    p = make(name, K)
    steps = p.step_index(7)
    assert torch.equal(steps[0::2], steps[1::2])
    # and each channel on its own is the mono pattern over K/2 codebooks
    mono = make("delay" if name == "stereo_delay" else "partial_delay", K // 2)
    assert torch.equal(steps[0::2], mono.step_index(7))


def test_stereo_delays_are_audiocrafts():
    assert make("stereo_delay").delays == (0, 0, 1, 1, 2, 2, 3, 3)
    assert make("stereo_partial_delay").delays == (0, 0, 1, 1, 1, 1, 1, 1)
    assert make("stereo_delay").max_delay == 3


def test_attributes():
    p = make("delay")
    assert (p.name, p.num_codebooks, p.delays, p.max_delay) == ("delay", 4, (0, 1, 2, 3), 3)
    f = make("flattening")
    assert f.delays is None and f.max_delay == 0


def test_docstring_drawings_are_the_real_layouts():
    doc = patterns_module.__doc__
    for name in ALL:
        drawing = make(name).draw(3)
        indented = "\n".join("    " + line for line in drawing.splitlines())
        assert indented in doc, f"{name} drawing missing or stale in the module docstring:\n{drawing}"


def test_build_keeps_device_dtype_and_batch():
    p = make("delay")
    codes = torch.randint(0, 10, (2, 4, 6), dtype=torch.int32)
    seq, mask = p.build(codes, 10)
    assert seq.dtype == torch.int32 and seq.shape == (2, 4, 9)
    # the returned mask is a copy: editing it does not corrupt the cache
    mask[:] = False
    assert p.valid_mask(6).sum() == 24


def test_index_tensors_are_cached_with_a_bounded_cache():
    p = make("coarse_first")
    assert p.step_index(11) is p.step_index(11)
    assert p.valid_mask(11) is p.valid_mask(11)
    first = p.step_index(11)
    for T in range(1, 3 * p.cache_size):
        p.step_index(T)
        p.step_index(11)  # recently used entries stay
    assert len(p._cache) == p.cache_size
    assert p.step_index(11) is first


# ---------------------------------------------------------------------------------------- errors


def test_unknown_name_lists_close_matches():
    expected = r"unknown codebook pattern 'dealy'.*'delay'.*Known patterns: parallel"
    with pytest.raises(ValueError, match=expected):
        get_pattern("dealy", 4)
    with pytest.raises(ValueError, match="stereo_delay"):
        get_pattern("stereo-delay", 8)


def test_codebook_mismatch_names_both_counts():
    p = make("delay")
    with pytest.raises(ValueError, match=r"K=3 codebooks.*num_codebooks=4"):
        p.build(torch.zeros(1, 3, 5, dtype=torch.long), SPECIAL)
    with pytest.raises(ValueError, match=r"K=5 codebooks.*num_codebooks=4"):
        p.revert(torch.zeros(1, 5, 8))


@pytest.mark.parametrize("bad", [0, -3])
def test_non_positive_frames_and_steps(bad):
    p = make("delay")
    with pytest.raises(ValueError, match="must be positive"):
        p.num_steps(bad)
    with pytest.raises(ValueError, match="must be positive"):
        p.step_index(bad)
    with pytest.raises(ValueError, match="must be positive"):
        p.num_frames(bad)
    with pytest.raises(ValueError, match="must be positive"):
        get_pattern("delay", bad)


def test_empty_codes_and_bad_step_counts():
    with pytest.raises(ValueError, match="must be positive"):
        make("delay").build(torch.zeros(1, 4, 0, dtype=torch.long), SPECIAL)
    with pytest.raises(ValueError, match="holds no frame"):
        make("delay").revert(torch.zeros(1, 4, 3))
    with pytest.raises(ValueError, match="not a multiple of 4"):
        make("flattening").revert(torch.zeros(1, 4, 10))
    with pytest.raises(TypeError, match="must be an int"):
        make("delay").num_steps(3.0)


def test_wrong_ndim_and_dtype():
    p = make("parallel")
    with pytest.raises(ValueError, match=r"\[B, K, T\], got 2 dims"):
        p.build(torch.zeros(4, 5, dtype=torch.long), SPECIAL)
    with pytest.raises(TypeError, match="integer tensor"):
        p.build(torch.zeros(1, 4, 5), SPECIAL)
    with pytest.raises(TypeError, match="special_token must be an int"):
        p.build(torch.zeros(1, 4, 5, dtype=torch.long), 3.5)
    with pytest.raises(ValueError, match=r"\[B, K, S, \.\.\.\], got 2 dims"):
        p.revert(torch.zeros(4, 5))


def test_stereo_needs_even_codebooks():
    for name in sorted(STEREO):
        with pytest.raises(ValueError, match="must be even; got 7"):
            get_pattern(name, 7)


def test_bad_delays():
    with pytest.raises(ValueError, match="non-negative"):
        get_pattern("delay", 4, delays=[0, 1, -1, 2])
    with pytest.raises(ValueError, match=r"got 3 delays .* num_codebooks=4"):
        get_pattern("delay", 4, delays=[0, 1, 2])
    with pytest.raises(ValueError, match="non-negative"):
        get_pattern("partial_delay", 4, delay=-1)
    with pytest.raises(TypeError, match=r"unknown options \['delays'\]"):
        get_pattern("flattening", 4, delays=[0, 1, 2, 3])


def test_fine_codebook_patterns_need_two_codebooks():
    with pytest.raises(ValueError, match=">= 2"):
        get_pattern("coarse_first", 1)
