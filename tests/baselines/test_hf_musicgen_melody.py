"""hf-musicgen given a MusicGen-Melody checkpoint uses transformers' melody class (the text-only class
would leave its cross-attention random): clips equal ``MusicgenMelodyForConditionalGeneration``'s, with
and without a melody; other model types are refused by ``check``."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf
import torch
from transformers import AutoTokenizer

from baselines._common import prompt_seed
from baselines.hf_musicgen import HFMusicGen
from bench.api import Context, Prompt
from bench.audio import resample
from musicgen.modules.chroma import ChromaExtractor


def _reference(model, folder, text, duration_s, features=None):
    """transformers' sampling (top-k 4, CFG 3) under the seed the adapter uses for prompt id 'a'."""
    cfg = model.config
    frame_rate = cfg.audio_encoder.sampling_rate / np.prod(cfg.audio_encoder.upsampling_ratios)
    inputs = dict(AutoTokenizer.from_pretrained(str(folder))([text], padding=True, return_tensors="pt"))
    if features is not None:
        inputs["input_features"] = features
    torch.manual_seed(prompt_seed(0, "a"))
    with torch.no_grad():
        out = model.generate(**inputs, do_sample=True, top_k=4, guidance_scale=3.0,
                             max_new_tokens=int(np.ceil(duration_s * frame_rate)) + cfg.decoder.num_codebooks)
    return out[0].numpy()


def test_melody_checkpoint_uses_the_melody_class(hf_melody, tmp_path):
    model, folder = hf_melody
    g = HFMusicGen(HFMusicGen.Params(model=str(folder), top_k=4), Context(cache_dir=tmp_path))
    assert g.check() == []
    g.load("cpu")
    assert type(g._model).__name__ == "MusicgenMelodyForConditionalGeneration"
    [clip] = g.generate([Prompt("a", "calm piano")], seed=0, duration_s=0.2)
    expected = _reference(model, folder, "calm piano", 0.2)
    np.testing.assert_allclose(clip.wav, expected[..., :clip.wav.shape[-1]], atol=1e-5)

    rng = np.random.default_rng(0)
    melody = (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000) + 0.01 * rng.standard_normal(16000))
    sf.write(tmp_path / "m.wav", melody.astype(np.float32), 16000)
    prompt = Prompt("a", "calm piano", melody_path=tmp_path / "m.wav")
    [with_melody] = g.generate([prompt], seed=0, duration_s=0.2)
    feats = ChromaExtractor()(torch.from_numpy(resample(melody[None].astype(np.float32), 16000, 32000)))
    expected = _reference(model, folder, "calm piano", 0.2, feats)
    np.testing.assert_allclose(with_melody.wav, expected[..., :with_melody.wav.shape[-1]], atol=1e-5)
    assert not np.allclose(with_melody.wav, clip.wav)


def test_other_model_types_are_refused(hf_melody, tmp_path):
    _, folder = hf_melody
    other = tmp_path / "other"
    other.mkdir()
    for f in folder.iterdir():
        (other / f.name).write_bytes(f.read_bytes())
    config = json.loads((other / "config.json").read_text())
    config["model_type"] = "encodec"
    (other / "config.json").write_text(json.dumps(config))
    problems = HFMusicGen(HFMusicGen.Params(model=str(other))).check()
    assert any("model_type 'encodec' is not a MusicGen checkpoint" in p for p in problems)
