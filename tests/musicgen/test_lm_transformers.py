"""Parity of our LM with transformers' MusicGen decoder on tiny random weights."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from musicgen.checkpoints.files import MissingCheckpointFile
from musicgen.checkpoints.lm_audiocraft import load_audiocraft_lm
from musicgen.checkpoints.lm_transformers import load_transformers_lm
from musicgen.modules.patterns import get_pattern
from musicgen.testing import tiny_transformers_musicgen, tiny_transformers_musicgen_melody


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
    codes_ref = _transformers_codes(model, new_tokens, input_ids=ids, attention_mask=mask)
    t = new_tokens - 3
    ours = lm.generate(get_pattern("delay", num_codebooks=4), t, condition=hidden, condition_mask=mask,
                       cfg_coef=3.0, use_sampling=False)
    assert ours.shape == (2, 4, t)
    assert len(codes_ref.unique()) > 4  # a non-degenerate sequence
    assert torch.equal(ours, codes_ref)


def _transformers_codes(model, new_tokens, **inputs):
    """transformers' generated codes ``[B, K, T]``, captured on their way into the audio decoder
    (stereo: one decode call per channel, codebooks interleaved L/R in the LM)."""
    captured = []
    original = model.audio_encoder.decode

    def grab(codes, *args, **kwargs):
        captured.append(codes[0])
        return original(codes, *args, **kwargs)

    model.audio_encoder.decode = grab
    try:
        with torch.no_grad():
            model.generate(**inputs, do_sample=False, guidance_scale=3.0, max_new_tokens=new_tokens)
    finally:
        model.audio_encoder.decode = original
    if len(captured) == 1:
        return captured[0]
    left, right = captured
    return torch.stack([left, right], dim=2).flatten(1, 2)


def _audiocraft_state_from_transformers(model) -> dict[str, torch.Tensor]:
    """Write transformers' weights in audiocraft's layout (fused q/k/v, audiocraft names)."""
    dec = model.decoder.model.decoder
    out: dict[str, torch.Tensor] = {}
    for k, emb in enumerate(dec.embed_tokens):
        out[f"emb.{k}.weight"] = emb.weight.detach().clone()
    for k, head in enumerate(model.decoder.lm_heads):
        out[f"linears.{k}.weight"] = head.weight.detach().clone()
    out["out_norm.weight"], out["out_norm.bias"] = dec.layer_norm.weight, dec.layer_norm.bias
    for i, layer in enumerate(dec.layers):
        p = f"transformer.layers.{i}."
        for ours, attn in (("self_attn", layer.self_attn), ("cross_attention", layer.encoder_attn)):
            out[p + ours + ".in_proj_weight"] = torch.cat(
                [attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight]).detach().clone()
            out[p + ours + ".out_proj.weight"] = attn.out_proj.weight.detach().clone()
        norms = (("norm1", layer.self_attn_layer_norm), ("norm_cross", layer.encoder_attn_layer_norm),
                 ("norm2", layer.final_layer_norm))
        for ours, norm in norms:
            out[p + ours + ".weight"], out[p + ours + ".bias"] = norm.weight, norm.bias
        out[p + "linear1.weight"] = layer.fc1.weight
        out[p + "linear2.weight"] = layer.fc2.weight
    proj = "condition_provider.conditioners.description.output_proj."
    out[proj + "weight"], out[proj + "bias"] = model.enc_to_dec_proj.weight, model.enc_to_dec_proj.bias
    return {k: v.detach().clone() for k, v in out.items()}


def test_audiocraft_state_dict_gives_the_same_logits(hf, tmp_path):
    model, lm, _ = hf
    cfg = "transformer_lm:\n  num_heads: 4\n  activation: gelu\n  n_q: 4\n  card: 16\n"
    torch.save({"best_state": _audiocraft_state_from_transformers(model), "xp.cfg": cfg, "exported": True},
               tmp_path / "state_dict.bin")
    ac_lm, extras = load_audiocraft_lm(tmp_path)
    assert extras == {}
    assert ac_lm.config == lm.config
    _, mask, hidden = _text(model)
    codes = torch.randint(0, 17, (2, 4, 7), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = model(encoder_outputs=(hidden,), attention_mask=mask,
                    decoder_input_ids=codes.reshape(8, 7)).logits.reshape(2, 4, 7, -1)
        ours = ac_lm(codes, condition=hidden, condition_mask=mask)
    assert (ours - ref).abs().max() < 1e-4


def test_audiocraft_without_cfg_infers_sizes_and_names_missing_keys(hf, tmp_path):
    model, lm, _ = hf
    state = _audiocraft_state_from_transformers(model)
    torch.save({"best_state": {"model": state}}, tmp_path / "state_dict.bin")
    inferred, _ = load_audiocraft_lm(tmp_path / "state_dict.bin")  # no xp.cfg: heads = max(1, dim // 64)
    assert inferred.config == dataclasses.replace(lm.config, num_heads=1)
    del state["transformer.layers.1.linear2.weight"]
    cfg = "transformer_lm:\n  num_heads: 4\n"
    torch.save({"best_state": state, "xp.cfg": cfg}, tmp_path / "state_dict.bin")
    with pytest.raises(ValueError, match=r"transformer\.layers\.1\.linear2\.weight"):
        load_audiocraft_lm(tmp_path / "state_dict.bin")
    cfg = "transformer_lm:\n  num_heads: 4\n  positional_embedding: rope\n"
    torch.save({"best_state": state, "xp.cfg": cfg}, tmp_path / "state_dict.bin")
    with pytest.raises(ValueError, match="positional_embedding"):
        load_audiocraft_lm(tmp_path / "state_dict.bin")
    (tmp_path / "state_dict.bin").unlink()
    with pytest.raises(MissingCheckpointFile, match="state_dict.bin"):
        load_audiocraft_lm(tmp_path)


def test_transformers_directory_errors_name_the_file(hf, tmp_path):
    (tmp_path / "config.json").write_text((hf[2] / "config.json").read_text())
    with pytest.raises(MissingCheckpointFile, match="model.safetensors"):
        load_transformers_lm(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(MissingCheckpointFile, match="config.json"):
        load_transformers_lm(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "t5"}')
    with pytest.raises(ValueError, match="decoder"):
        load_transformers_lm(tmp_path)


def test_melody_decoder_with_prefix_matches_transformers(tmp_path):
    model = tiny_transformers_musicgen_melody(tmp_path, seed=4)
    lm, extras = load_transformers_lm(tmp_path)
    assert not lm.config.cross_attention
    assert sorted(extras) == ["audio_enc_to_dec_proj.bias", "audio_enc_to_dec_proj.weight",
                              "enc_to_dec_proj.bias", "enc_to_dec_proj.weight"]
    prefix = torch.randn(2, 7, 32, generator=torch.Generator().manual_seed(5))  # projected chroma + text
    codes = torch.randint(0, 17, (2, 4, 5), generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        ref = model(encoder_hidden_states=prefix, decoder_input_ids=codes.reshape(8, 5)).logits
        ours = lm(codes, prefix=prefix)
    ref = ref.reshape(2, 4, -1, 16)[:, :, -5:]  # transformers also returns the prefix positions
    assert (ours - ref).abs().max() < 1e-4


def test_stereo_greedy_cfg_generation_matches_transformers(tmp_path):
    model = tiny_transformers_musicgen(tmp_path, seed=7, num_codebooks=8, audio_channels=2)
    lm, _ = load_transformers_lm(tmp_path)
    ids, mask, hidden = _text(model, seed=8)
    new_tokens = 10
    codes_ref = _transformers_codes(model, new_tokens, input_ids=ids, attention_mask=mask)
    ours = lm.generate(get_pattern("stereo_delay", num_codebooks=8), new_tokens - 3, condition=hidden,
                       condition_mask=mask, cfg_coef=3.0, use_sampling=False)
    assert ours.shape == codes_ref.shape == (2, 8, new_tokens - 3)
    assert len(codes_ref.unique()) > 4
    assert torch.equal(ours, codes_ref)


def test_melody_greedy_cfg_generation_with_prefix_matches_transformers(tmp_path):
    """Pins the MusicGen-Melody conditioning the pipeline must build: prefix = [projected chroma
    (tiled/cut to chroma_length); projected text * mask], no prefix mask; null prefix = [projected
    one-hot-bin-0 chroma; zeros]."""
    model = tiny_transformers_musicgen_melody(tmp_path, seed=9)
    lm, extras = load_transformers_lm(tmp_path)
    ids, mask, hidden = _text(model, seed=10)
    g = torch.Generator().manual_seed(11)
    chroma = torch.nn.functional.one_hot(torch.randint(0, 12, (2, 4), generator=g), 12).float()
    null_chroma = torch.zeros(2, 1, 12)
    null_chroma[..., 0] = 1

    def linear(x, name):
        return torch.nn.functional.linear(x, extras[name + ".weight"], extras[name + ".bias"])

    def chroma_part(c):
        c = linear(c, "audio_enc_to_dec_proj")
        return c.repeat(1, -(-6 // c.shape[1]), 1)[:, :6]

    text = linear(hidden, "enc_to_dec_proj") * mask[..., None]
    prefix = torch.cat([chroma_part(chroma), text], dim=1)
    null_prefix = torch.cat([chroma_part(null_chroma), torch.zeros_like(text)], dim=1)
    new_tokens = 9
    ref = _transformers_codes(model, new_tokens, input_ids=ids, attention_mask=mask, input_features=chroma)
    ours = lm.generate(get_pattern("delay", num_codebooks=4), new_tokens - 3, prefix=prefix,
                       null_prefix=null_prefix, cfg_coef=3.0, use_sampling=False)
    assert len(ref.unique()) > 4
    assert torch.equal(ours, ref)
