"""audiocraft's MusicGen API on ours: the usage snippet of audiocraft's documentation runs unchanged
(``docs/MUSICGEN.md``, section "API", audiocraft v1.3.0) on a small local checkpoint (the audiocraft-
exported tiny MusicGen-Melody of ``fixtures/audiocraft``, placed in a Hugging Face cache as
``facebook/musicgen-melody``). Only the snippet's imports are provided by the test: ``audiocraft.models``
is our ``musicgen``, and ``torchaudio`` / ``audiocraft.data.audio`` read and write with soundfile."""

from __future__ import annotations

import importlib.machinery
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from musicgen import MusicGen

FIXTURE = Path(__file__).parent / "fixtures" / "audiocraft"

SNIPPET = """\
import torchaudio
from audiocraft.models import MusicGen
from audiocraft.data.audio import audio_write

model = MusicGen.get_pretrained('facebook/musicgen-melody')
model.set_generation_params(duration=8)  # generate 8 seconds.
wav = model.generate_unconditional(4)    # generates 4 unconditional audio samples
descriptions = ['happy rock', 'energetic EDM', 'sad jazz']
wav = model.generate(descriptions)  # generates 3 samples.

melody, sr = torchaudio.load('./assets/bach.mp3')
# generates using the melody from the given audio and the provided descriptions.
wav = model.generate_with_chroma(descriptions, melody[None].expand(3, -1, -1), sr)

for idx, one_wav in enumerate(wav):
    # Will save under {idx}.wav, with loudness normalization at -14 db LUFS.
    audio_write(f'{idx}', one_wav.cpu(), model.sample_rate, strategy="loudness", loudness_compressor=True)
"""


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A Hugging Face cache holding the tiny melody model as facebook/musicgen-melody and its T5."""
    cache = tmp_path / "hub"
    shutil.copytree(FIXTURE / "hub", cache)
    snap = cache / "models--facebook--musicgen-melody" / "snapshots" / "0123abcd"
    snap.mkdir(parents=True)
    (snap.parent.parent / "refs").mkdir()
    (snap.parent.parent / "refs" / "main").write_text("0123abcd")
    shutil.copy(FIXTURE / "melody" / "state_dict.bin", snap)
    shutil.copy(FIXTURE / "compression_state_dict.bin", snap)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture
def snippet_imports(monkeypatch):
    """``torchaudio``, ``audiocraft.models`` and ``audiocraft.data.audio`` as the snippet imports them."""
    def load(path):
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        return torch.from_numpy(data.T.copy()), sr

    def audio_write(stem, wav, sample_rate, strategy="peak", **kwargs):
        x = wav.numpy()
        sf.write(f"{stem}.wav", (x / max(1e-9, float(np.abs(x).max()))).T, sample_rate)

    import transformers.utils.import_utils  # noqa: F401  (its package checks run before the fakes exist)
    from transformers import T5EncoderModel  # noqa: F401

    def module(name, **attrs):
        m = types.ModuleType(name)
        m.__spec__ = importlib.machinery.ModuleSpec(name, None)
        m.__dict__.update(attrs)
        return m

    fakes = [module("torchaudio", load=load), module("audiocraft"),
             module("audiocraft.models", MusicGen=MusicGen), module("audiocraft.data"),
             module("audiocraft.data.audio", audio_write=audio_write)]
    for m in fakes:
        monkeypatch.setitem(sys.modules, m.__name__, m)


def test_documented_snippet_runs_unchanged(hub, snippet_imports, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "assets").mkdir()
    t = np.arange(int(2.5 * 44100)) / 44100
    sf.write(tmp_path / "assets" / "bach.mp3", 0.3 * np.sin(2 * np.pi * 440 * t), 44100, format="WAV")
    scope: dict = {}
    exec(compile(SNIPPET, "MUSICGEN.md", "exec"), scope)
    model, wav = scope["model"], scope["wav"]
    assert isinstance(model, MusicGen) and model.max_duration == 1.0  # from the checkpoint's xp.cfg
    assert wav.shape == (3, 1, 8 * model.sample_rate)
    assert all((tmp_path / f"{i}.wav").is_file() for i in range(3))


def test_audiocraft_names_are_aliases(hub):
    model = MusicGen.get_pretrained("melody", device="cpu")  # audiocraft's short name
    model.set_generation_params(use_sampling=False, duration=0.4, cfg_coef=3.0, extend_stride=0.5)
    assert model.duration_s == 0.4 and model.extend_stride_s == 0.5
    with pytest.raises(ValueError, match="duration=0.4 and duration_s=0.2 disagree"):
        model.set_generation_params(duration=0.4, duration_s=0.2)
    model.set_generation_params(use_sampling=False, duration=0.4)
    prompt = model.generate(["calm piano"], progress=True)
    out, tokens = model.generate_continuation(prompt=prompt[..., : model.sample_rate // 5],
                                              prompt_sample_rate=model.sample_rate,
                                              descriptions=["calm piano"], return_tokens=True)
    assert out.shape == (1, 1, int(0.4 * model.sample_rate)) and tokens.shape[-1] == 20
