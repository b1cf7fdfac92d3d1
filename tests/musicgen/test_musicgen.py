"""The MusicGen pipeline end to end: parity with transformers, continuation, long form, stereo, seeds."""
from __future__ import annotations

import pytest
import torch

from musicgen import MusicGen
from musicgen.checkpoints.files import MissingCheckpointFile
from musicgen.checkpoints.musicgen_formats import read_audiocraft_musicgen
from musicgen.modules.chroma import ChromaExtractor
from musicgen.testing import (
    tiny_musicgen,
    tiny_text_tokenizer,
    tiny_transformers_musicgen,
)
from tests.musicgen.audiocraft_fixture import audiocraft_lm_state

TEXTS = ["happy rock song with electric guitar and drums", "calm piano"]


def _transformers_generate(model, frames: int, **inputs):
    """transformers' greedy CFG generation: (codes [B, K, frames], audio [B, C, T])."""
    captured = {}
    original = model.audio_encoder.decode

    def grab(codes, *args, **kwargs):
        captured["codes"] = codes
        return original(codes, *args, **kwargs)

    model.audio_encoder.decode = grab
    try:
        with torch.no_grad():
            audio = model.generate(**inputs, do_sample=False, guidance_scale=3.0,
                                   max_new_tokens=frames + model.decoder.config.num_codebooks - 1)
    finally:
        model.audio_encoder.decode = original
    return captured["codes"][0], audio


@pytest.fixture(scope="module")
def hf_text(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf_musicgen")
    model = tiny_transformers_musicgen(folder, seed=0)
    tiny_text_tokenizer().save_pretrained(str(folder))
    return model, folder


def _tokenize(folder, texts):
    from transformers import AutoTokenizer

    return dict(AutoTokenizer.from_pretrained(str(folder))(texts, padding=True, return_tensors="pt"))


def test_text_to_music_matches_transformers(hf_text):
    model, folder = hf_text
    ours = MusicGen.from_pretrained(str(folder))
    frames = 11
    ours.set_generation_params(duration_s=frames / ours.frame_rate, use_sampling=False, cfg_coef=3.0)
    audio, tokens = ours.generate(TEXTS, return_tokens=True)
    ref_codes, ref_audio = _transformers_generate(model, frames, **_tokenize(folder, TEXTS))
    assert tokens.shape == (2, 4, frames) and audio.shape == ref_audio.shape
    assert len(tokens.unique()) > 4  # a non-degenerate sequence
    assert torch.equal(tokens, ref_codes)
    assert (audio - ref_audio).abs().max() < 1e-4


def test_melody_text_and_chroma_match_transformers(hf_melody):
    model, folder = hf_melody
    ours = MusicGen.from_pretrained(str(folder))
    frames = 9
    ours.set_generation_params(duration_s=frames / ours.frame_rate, use_sampling=False, cfg_coef=3.0)
    melody = torch.randn(2, 1, 32000, generator=torch.Generator().manual_seed(0)) * 0.3
    audio, tokens = ours.generate_with_chroma(TEXTS, melody, 32000, return_tokens=True)
    chroma = ChromaExtractor()(melody[:, 0])
    ref_codes, ref_audio = _transformers_generate(model, frames, input_features=chroma,
                                                  **_tokenize(folder, TEXTS))
    assert torch.equal(tokens, ref_codes)
    assert (audio - ref_audio).abs().max() < 1e-4
    # text only: transformers puts the null (one-hot C) chroma in both rows
    audio_t, tokens_t = ours.generate(TEXTS, return_tokens=True)
    ref_codes_t, ref_audio_t = _transformers_generate(model, frames, **_tokenize(folder, TEXTS))
    assert torch.equal(tokens_t, ref_codes_t) and not torch.equal(tokens_t, tokens)
    assert (audio_t - ref_audio_t).abs().max() < 1e-4


def test_continuation_keeps_the_prompt_tokens():
    model = tiny_musicgen(seed=0)
    model.set_generation_params(duration_s=0.1)  # 25 frames at 250 Hz
    prompt = torch.randn(2, 1, 8000 // 25, generator=torch.Generator().manual_seed(1)) * 0.3  # 10 frames
    audio, tokens = model.generate_continuation(prompt, 8000, TEXTS, seed=0, return_tokens=True)
    expected = model.codec.encode(prompt)
    assert tokens.shape == (2, 4, 25) and audio.shape == (2, 1, 25 * model.codec.hop_length)
    assert torch.equal(tokens[..., : expected.shape[-1]], expected)
    # resampled prompts are accepted; a prompt as long as the request is not
    model.generate_continuation(torch.randn(1, 1, 400), 16000, seed=0)
    with pytest.raises(ValueError, match="not shorter"):
        model.generate_continuation(torch.randn(1, 1, 8000), 8000, seed=0)
    with pytest.raises(ValueError, match="channels"):
        model.generate_continuation(torch.randn(1, 2, 800), 8000, seed=0)
    model.max_duration_s = 0.1
    model.set_generation_params(duration_s=0.3, extend_stride_s=0.05)
    with pytest.raises(ValueError, match="one generation window"):
        model.generate_continuation(torch.randn(1, 1, 960), 8000, seed=0)  # 30 frames > 25


def test_long_form_windows_are_prompted_by_the_previous_window():
    model = tiny_musicgen(seed=0)
    model.max_duration_s = 0.1  # 25-frame windows
    model.set_generation_params(duration_s=0.26, extend_stride_s=0.06, use_sampling=False)  # 65 frames
    calls = []
    original = model.lm.generate

    def spy(pattern, frames, prompt=None, **kwargs):
        out = original(pattern, frames, prompt=prompt, **kwargs)
        calls.append((frames, None if prompt is None else prompt.clone(), out))
        return out

    model.lm.generate = spy
    tokens = model.generate(TEXTS[:1], return_tokens=True)[1]
    assert tokens.shape == (1, 4, 65)
    # windows start at frames 0, 15, 30, 45; the last one ends at frame 65 (audiocraft's schedule)
    assert [c[0] for c in calls] == [25, 25, 25, 20]
    stride = 15
    for (_, _, prev), (_, prompt, out) in zip(calls, calls[1:]):
        assert torch.equal(prompt, prev[..., stride:])  # the last 10 frames prompt the next window
        assert torch.equal(out[..., : prompt.shape[-1]], prompt)
    assert torch.equal(tokens[..., :25], calls[0][2])
    assert torch.equal(tokens[..., 25:40], calls[1][2][..., 10:])
    model.lm.generate = original
    with pytest.raises(ValueError, match="extension is off"):
        model.set_generation_params(duration_s=0.26, extend_stride_s=None)


def test_stereo_shapes_and_interleaving():
    model = tiny_musicgen(seed=0, stereo=True)
    model.set_generation_params(duration_s=0.04)  # 10 frames
    audio, tokens = model.generate(TEXTS, seed=3, return_tokens=True)
    assert audio.shape == (2, 2, 10 * model.codec.hop_length) and tokens.shape == (2, 8, 10)
    assert model.pattern.name == "stereo_delay"
    left = model.codec.model.decode(tokens[:, 0::2])
    torch.testing.assert_close(audio[:, :1], left)


def test_unconditional_equals_null_texts_and_seeds_reproduce():
    model = tiny_musicgen(seed=0)
    model.set_generation_params(duration_s=0.06)
    a = model.generate_unconditional(2, seed=5, return_tokens=True)[1]
    b = model.generate([None, None], seed=5, return_tokens=True)[1]  # guided, but cond == null
    assert torch.equal(a, b)
    x = model.generate(TEXTS, seed=11, return_tokens=True)[1]
    y = model.generate(TEXTS, seed=11, return_tokens=True)[1]
    z = model.generate(TEXTS, seed=12, return_tokens=True)[1]
    assert torch.equal(x, y) and not torch.equal(x, z)
    w = model.generate(TEXTS, seed=[11, 12], return_tokens=True)[1]
    assert torch.equal(w, x)  # an int seed s gives row i the seed s + i


def test_progress_callback_reaches_the_total():
    model = tiny_musicgen(seed=0)
    model.set_generation_params(duration_s=0.04)
    seen = []
    model.generate(TEXTS[:1], seed=0, progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1] == (10, 10) and all(b >= a for (a, _), (b, _) in zip(seen, seen[1:]))


def test_native_save_load_round_trip_and_missing_file(tmp_path):
    model = tiny_musicgen(seed=0, melody=True)
    model.set_generation_params(duration_s=0.04)
    model.save_pretrained(str(tmp_path / "m"))
    loaded = MusicGen.from_pretrained(str(tmp_path / "m"))
    loaded.set_generation_params(duration_s=0.04)
    melody = torch.randn(1, 1, 8000)
    a = model.generate_with_chroma(TEXTS[:1], melody, 8000, seed=1, return_tokens=True)[1]
    b = loaded.generate_with_chroma(TEXTS[:1], melody, 8000, seed=1, return_tokens=True)[1]
    assert torch.equal(a, b)
    (tmp_path / "m" / "lm" / "lm.safetensors").unlink()
    with pytest.raises(MissingCheckpointFile, match="lm.safetensors"):
        MusicGen.from_pretrained(str(tmp_path / "m"))


def test_transformers_folder_missing_files_are_named(hf_text, tmp_path):
    _, folder = hf_text
    for name in ("config.json", "model.safetensors"):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    with pytest.raises(MissingCheckpointFile, match="tokenizer.json"):
        MusicGen.from_pretrained(str(tmp_path))
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(MissingCheckpointFile, match="model.safetensors"):
        MusicGen.from_pretrained(str(tmp_path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingCheckpointFile, match="not a MusicGen checkpoint"):
        MusicGen.from_pretrained(str(tmp_path / "empty"))


def test_bad_input_is_refused():
    model = tiny_musicgen(seed=0)
    with pytest.raises(ValueError, match="empty"):
        model.generate([])
    with pytest.raises(TypeError, match="list of strings"):
        model.generate("happy rock")
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="duration_s"):
            model.set_generation_params(duration_s=bad)
    with pytest.raises(ValueError, match="max_duration_s"):
        model.set_generation_params(duration_s=model.max_duration_s * 2, extend_stride_s=None)
    with pytest.raises(ValueError, match="no melody"):
        model.generate_with_chroma(TEXTS, torch.randn(2, 1, 8000), 8000)
    melody_model = tiny_musicgen(seed=0, melody=True)
    melody_model.set_generation_params(duration_s=0.02)
    with pytest.raises(ValueError, match=r"\[B, C, T\]"):
        melody_model.generate_with_chroma(TEXTS, torch.randn(2, 1, 1, 8000), 8000)
    with pytest.raises(ValueError, match="melody_sample_rate"):
        melody_model.generate_with_chroma(TEXTS, torch.randn(2, 1, 8000), 0)
    with pytest.raises(ValueError, match="melody_sample_rate"):
        melody_model.generate_with_chroma(TEXTS, torch.randn(2, 1, 8000), 8000.5)
    with pytest.raises(ValueError, match="3 melodies for 2"):
        melody_model.generate_with_chroma(TEXTS, torch.randn(3, 1, 8000), 8000)
    with pytest.raises(ValueError, match="T > 0"):
        melody_model.generate_with_chroma(TEXTS, torch.zeros(2, 1, 0), 8000)


def test_generate_command_writes_a_wav(tmp_path, capsys):
    import soundfile as sf

    from musicgen.cli import main

    tiny_musicgen(seed=0).save_pretrained(str(tmp_path / "m"))
    rc = main(["generate", "happy rock", "-o", str(tmp_path / "out.wav"), "--model", str(tmp_path / "m"),
               "--duration", "0.05"])
    assert rc == 0
    data, sr = sf.read(str(tmp_path / "out.wav"))
    assert sr == 8000 and len(data) == round(0.05 * 250) * 32
    rc = main(["generate", "x", "-o", str(tmp_path / "o.wav"), "--model", str(tmp_path / "missing")])
    assert rc == 2 and "does not exist" in capsys.readouterr().err
    rc = main(["generate", "x", "-o", str(tmp_path / "o.wav"), "--model", str(tmp_path / "m"),
               "--duration", "-1"])
    assert rc == 2 and "duration_s" in capsys.readouterr().err


def test_stereo_transformers_checkpoint_matches(tmp_path):
    model = tiny_transformers_musicgen(tmp_path, seed=0, num_codebooks=8, audio_channels=2)
    tiny_text_tokenizer().save_pretrained(str(tmp_path))
    ours = MusicGen.from_pretrained(str(tmp_path))
    assert ours.pattern.name == "stereo_delay" and ours.audio_channels == 2
    frames = 9
    ours.set_generation_params(duration_s=frames / ours.frame_rate, use_sampling=False)
    audio, tokens = ours.generate(TEXTS, return_tokens=True)
    with torch.no_grad():
        ref = model.generate(**_tokenize(tmp_path, TEXTS), do_sample=False, guidance_scale=3.0,
                             max_new_tokens=frames + 3)
    assert tokens.shape == (2, 8, frames) and audio.shape == ref.shape == (2, 2, frames * 8)
    assert (audio - ref).abs().max() < 1e-4


def test_audiocraft_folder_loads_with_its_own_semantics(hf_text, tmp_path):
    model, folder = hf_text
    ac = tmp_path / "ac"
    ac.mkdir()
    cfg = "transformer_lm:\n  num_heads: 4\n  activation: gelu\n"
    torch.save({"best_state": audiocraft_lm_state(model), "xp.cfg": cfg}, ac / "state_dict.bin")
    with pytest.raises(MissingCheckpointFile, match="compression_state_dict.bin"):
        MusicGen.from_pretrained(str(ac))
    torch.save({"pretrained": str(folder)}, ac / "compression_state_dict.bin")  # as released folders do
    with pytest.raises(MissingCheckpointFile, match="t5"):
        MusicGen.from_pretrained(str(ac))
    model.text_encoder.save_pretrained(str(ac / "t5"))
    tiny_text_tokenizer().save_pretrained(str(ac / "t5"))
    ours = MusicGen.from_pretrained(str(ac))
    assert not ours.mask_cross_attention and ours.lm.condition_proj is None  # projection in the conditioner
    frames = 10
    ours.set_generation_params(duration_s=frames / ours.frame_rate, use_sampling=False)
    audio, tokens = ours.generate(TEXTS[:1], return_tokens=True)  # one prompt: no padding, both agree
    ref_codes, ref_audio = _transformers_generate(model, frames, **_tokenize(folder, TEXTS[:1]))
    assert torch.equal(tokens, ref_codes)
    assert (audio - ref_audio).abs().max() < 1e-4


def test_long_form_melody_windows_follow_the_reference():
    model = tiny_musicgen(seed=0, melody=True)  # chroma at 15.625 frames/s, 8-frame prefix
    chroma = torch.nn.functional.one_hot(torch.arange(20) % 12, 12).float()
    assert torch.equal(model._window_chroma(chroma, 0.0), chroma)
    shifted = model._window_chroma(chroma, 0.192)  # 3 chroma frames later, looped past the end
    assert torch.equal(shifted, chroma[(torch.arange(8) + 3) % 20])
    model.max_duration_s = 0.1
    model.set_generation_params(duration_s=0.18, extend_stride_s=0.06)
    wav = torch.randn(1, 1, 8000, generator=torch.Generator().manual_seed(0))
    tokens = model.generate_with_chroma(TEXTS[:1], wav, 8000, seed=0, return_tokens=True)[1]
    assert tokens.shape == (1, 4, 45)


def test_transformers_model_saved_natively_gives_the_same_tokens(hf_text, tmp_path):
    _, folder = hf_text
    model = MusicGen.from_pretrained(str(folder))
    model.set_generation_params(duration_s=0.01)
    model.save_pretrained(str(tmp_path / "native"))
    loaded = MusicGen.from_pretrained(str(tmp_path / "native"))
    loaded.set_generation_params(duration_s=0.01)
    a = model.generate(TEXTS, seed=4, return_tokens=True)[1]
    b = loaded.generate(TEXTS, seed=4, return_tokens=True)[1]
    assert torch.equal(a, b)
    assert (tmp_path / "native" / "text" / "encoder" / "config.json").is_file()


def test_audiocraft_melody_folder_matches_transformers_melody(hf_melody, tmp_path):
    model, folder = hf_melody
    ac = tmp_path / "ac"
    ac.mkdir()
    torch.save({"best_state": audiocraft_lm_state(model), "xp.cfg": "transformer_lm:\n  num_heads: 4\n"},
               ac / "state_dict.bin")
    torch.save({"pretrained": str(folder)}, ac / "compression_state_dict.bin")
    model.text_encoder.save_pretrained(str(ac / "t5"))
    tiny_text_tokenizer().save_pretrained(str(ac / "t5"))
    ours = MusicGen.from_parts(read_audiocraft_musicgen(ac, chroma_length=model.config.chroma_length))
    frames = 9
    ours.set_generation_params(duration_s=frames / ours.frame_rate, use_sampling=False)
    melody = torch.randn(2, 1, 32000, generator=torch.Generator().manual_seed(0)) * 0.3
    audio, tokens = ours.generate_with_chroma(TEXTS, melody, 32000, return_tokens=True)
    chroma = ChromaExtractor()(melody[:, 0])
    ref_codes, ref_audio = _transformers_generate(model, frames, input_features=chroma,
                                                  **_tokenize(folder, TEXTS))
    assert torch.equal(tokens, ref_codes)
    assert (audio - ref_audio).abs().max() < 1e-4
