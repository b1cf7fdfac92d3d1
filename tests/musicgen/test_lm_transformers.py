"""Parity of our LM with transformers' MusicGen decoder on tiny random weights."""
from __future__ import annotations

import pytest
import torch

try:
    from musicgen.modules.patterns import get_pattern
except ImportError:  # until the patterns branch is merged
    from _tmp_delay import get_pattern

from musicgen.checkpoints.lm_transformers import load_transformers_lm
from musicgen.testing import tiny_transformers_musicgen


@pytest.fixture(scope="module")
def hf(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf_musicgen")
    model = tiny_transformers_musicgen(folder, seed=0)
    lm, extras = load_transformers_lm(folder)
    return model, lm, folder


def _text(model, batch=2, length=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, 64, (batch, length), generator=g)
    mask = torch.ones(batch, length, dtype=torch.long)
    mask[1, 3:] = 0  # a padded row
    with torch.no_grad():
        hidden = model.text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state
    return ids, mask, hidden


def test_decoder_logits_match_transformers(hf):
    model, lm, _ = hf
    ids, mask, hidden = _text(model)
    g = torch.Generator().manual_seed(2)
    codes = torch.randint(0, 17, (2, 4, 9), generator=g)
    with torch.no_grad():
        ref = model(encoder_outputs=(hidden,), attention_mask=mask,
                    decoder_input_ids=codes.reshape(8, 9)).logits.reshape(2, 4, 9, -1)
        ours = lm(codes, condition=hidden, condition_mask=mask)
    assert ours.shape == (2, 4, 9, 16)
    assert (ours - ref).abs().max() < 1e-4


def test_greedy_cfg_generation_matches_transformers(hf):
    model, lm, _ = hf
    ids, mask, hidden = _text(model)
    new_tokens = 12
    # transformers returns audio; its codes are captured on their way into the audio decoder
    codes_ref = _transformers_codes(model, ids, mask, new_tokens)
    t = new_tokens - 3
    ours = lm.generate(get_pattern("delay", num_codebooks=4), t, condition=hidden, condition_mask=mask,
                       cfg_coef=3.0, use_sampling=False)
    assert ours.shape == (2, 4, t)
    assert len(codes_ref.unique()) > 4  # a non-degenerate sequence
    assert torch.equal(ours, codes_ref)


def _transformers_codes(model, ids, mask, new_tokens):
    captured = {}
    original = model.audio_encoder.decode

    def grab(codes, *args, **kwargs):
        captured["codes"] = codes
        return original(codes, *args, **kwargs)

    model.audio_encoder.decode = grab
    try:
        with torch.no_grad():
            model.generate(input_ids=ids, attention_mask=mask, do_sample=False, guidance_scale=3.0,
                           max_new_tokens=new_tokens)
    finally:
        model.audio_encoder.decode = original
    return captured["codes"][0]
