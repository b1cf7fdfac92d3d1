"""Test plug-ins and data for harness tests: a tiny embedder and metric, a slow generator, tones.

``register()`` adds them to the registries through the public API (as a third-party package would
through entry points); ``python -m bench.testing ARGS`` runs ``bench`` with them registered (for
subprocess tests). ``write_tones`` writes an audio-folder dataset of sine tones with sidecars.
Nothing here is registered unless a test asks for it.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
from pydantic import Field

from bench.api import (
    AudioClip,
    Embedder,
    Generator,
    Metric,
    MetricInfo,
    MetricItem,
    MetricResult,
    Params,
    Prompt,
)

TONE_RATE = 16000


class BandEmbedder(Embedder):
    """Frames of 512 samples at 8 kHz -> log energy in 8 equal frequency bands ``[F, 8]``."""

    name = "test-bands"
    version = "1"
    sample_rate = 8000
    dim = 8

    def load(self, device: str = "cpu") -> None:
        self.loaded = True

    def embed(self, wav: np.ndarray) -> np.ndarray:
        n = len(wav) // 512
        if n == 0:
            raise ValueError(f"clip of {len(wav)} samples is shorter than one 512-sample frame")
        frames = wav[: n * 512].reshape(n, 512)
        power = np.abs(np.fft.rfft(frames, axis=1))[:, :256] ** 2
        return np.log10(power.reshape(n, 8, 32).sum(axis=2) + 1e-8)


class MeanDistance(Metric):
    """Mean over items of the L2 distance between the generated and reference mean embeddings."""

    embedders = ("test-bands",)
    needs_reference = True

    def __init__(self, params: Params | None = None) -> None:
        super().__init__(params)
        self.add_state("sum")
        self.add_state("count")

    def bind_embedder(self, name: str, protocol: Mapping[str, object]) -> None:
        self.bound = {name: dict(protocol)}

    def infos(self) -> list[MetricInfo]:
        return [MetricInfo("test_distance", higher_is_better=False, unit="log10 energy",
                           protocol={"backbone": "test-bands", "bound": getattr(self, "bound", None)})]

    def update(self, item: MetricItem, features: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, float]:
        f = features["test-bands"]
        d = float(np.linalg.norm(f["generated"].mean(0) - f["reference"].mean(0)))
        self.state["sum"] += d
        self.state["count"] += 1
        return {"test_distance": d}

    def compute(self) -> dict[str, MetricResult]:
        n = int(self.state["count"])
        if n == 0:
            raise ValueError("no items")
        return {"test_distance": MetricResult(float(self.state["sum"] / n), n)}


class SlowNoise(Generator):
    """White noise that takes ``delay_s`` per clip (to be killed mid-run); silence for the prompt ids
    in ``silent`` (flagged by the metrics) and noise far above full scale (RMS 10) for those in
    ``loud``; raises on prompt ``fail_prompt`` (a failing rank)."""

    class Params(Params):
        delay_s: float = Field(default=0.0, ge=0)
        sample_rate: int = 16000
        silent: list[str] = Field(default_factory=list)
        loud: list[str] = Field(default_factory=list)
        fail_prompt: str | None = None

    def load(self, device: str = "cpu") -> None:
        pass

    def fingerprint(self) -> str:
        silent = f"-silent={','.join(self.params.silent)}" if self.params.silent else ""
        loud = f"-loud={','.join(self.params.loud)}" if self.params.loud else ""
        return f"slow-noise-{self.params.sample_rate}{silent}{loud}"

    def generate(self, prompts: Sequence[Prompt], seed: int, duration_s: float) -> list[AudioClip]:
        out = []
        for p in prompts:
            if p.id == self.params.fail_prompt:
                raise RuntimeError(f"model exploded on {p.id}")
            time.sleep(self.params.delay_s)
            rng = np.random.default_rng([seed, int(p.id.split("_")[-1])])
            n = round(duration_s * self.params.sample_rate)
            gain = 0.0 if p.id in self.params.silent else 10.0 if p.id in self.params.loud else 0.1
            out.append(AudioClip((gain * rng.standard_normal((1, n))).astype(np.float32),
                                 self.params.sample_rate, p.id, seed))
        return out


class NeedsWeights(Generator):
    class Params(Params):
        weights: Path

    def check(self) -> list[str]:
        return [] if self.params.weights.is_file() else [f"weights file {self.params.weights} is missing"]

    def load(self, device: str = "cpu") -> None:
        raise AssertionError("must not be loaded when check() fails")

    def fingerprint(self) -> str:
        return "needs-weights"

    def generate(self, prompts, seed, duration_s):  # pragma: no cover - never reached
        raise AssertionError("must not generate")


PLUGINS = {
    "embedders": {"test-bands": BandEmbedder},
    "metrics": {"test-distance": MeanDistance},
    "generators": {"slow-noise": SlowNoise, "needs-weights": NeedsWeights},
}


def register() -> None:
    from bench.registry import REGISTRIES

    for kind, table in PLUGINS.items():
        for name, cls in table.items():
            REGISTRIES[kind].register(name, cls, replace=True)


def unregister() -> None:
    from bench.registry import REGISTRIES

    for kind, table in PLUGINS.items():
        for name in table:
            REGISTRIES[kind].unregister(name)


def write_tones(folder: Path, n: int = 5, duration_s: float = 1.5, split: str | None = "test") -> Path:
    """``n`` sine tones (220 Hz * 1.25^i) with JSON sidecars in ``folder[/split]``; returns the root."""
    target = folder / split if split else folder
    target.mkdir(parents=True, exist_ok=True)
    t = np.arange(round(duration_s * TONE_RATE)) / TONE_RATE
    for i in range(n):
        f0 = 220.0 * 1.25 ** i
        sf.write(target / f"tone_{i}.wav", (0.3 * np.sin(2 * np.pi * f0 * t)).astype(np.float32), TONE_RATE)
        (target / f"tone_{i}.json").write_text(json.dumps(
            {"description": f"a pure sine tone at {f0:.0f} hertz, {'low' if i < 2 else 'high'} pitch",
             "genre": "test", "index": i}))
    return folder


def save_tiny_hf_musicgen(folder: Path, seed: int = 0) -> Path:
    """A randomly initialised, tiny transformers ``MusicgenForConditionalGeneration`` (8 kHz codec at
    125 frames/s, 2 codebooks of 16 entries, one-layer T5 and decoder) with a word-level tokenizer,
    saved with ``save_pretrained`` into ``folder``: a local checkpoint for adapter tests."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        EncodecConfig,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        PreTrainedTokenizerFast,
        T5Config,
    )

    torch.manual_seed(seed)
    codebook = 16
    text = T5Config(vocab_size=32, d_model=16, d_ff=32, num_layers=1, num_heads=2, d_kv=8)
    audio = EncodecConfig(sampling_rate=8000, num_filters=4, hidden_size=8, codebook_size=codebook,
                          codebook_dim=8, upsampling_ratios=[8, 8], num_lstm_layers=1,
                          target_bandwidths=[2.5], audio_channels=1)  # 1000 * 2.5 // (125 * 10) = 2 codebooks
    decoder = MusicgenDecoderConfig(vocab_size=codebook, hidden_size=16, num_hidden_layers=1,
                                    num_attention_heads=2, ffn_dim=32, num_codebooks=2,
                                    max_position_embeddings=256, pad_token_id=codebook, bos_token_id=codebook)
    model = MusicgenForConditionalGeneration(MusicgenConfig(text_encoder=text, audio_encoder=audio,
                                                            decoder=decoder))
    with torch.no_grad():  # transformers starts codebooks at zero: every code would decode alike
        for layer in model.audio_encoder.quantizer.layers:
            layer.codebook.embed.normal_()
    for name in ("decoder_start_token_id", "pad_token_id", "bos_token_id"):
        setattr(model.generation_config, name, codebook)
    model.save_pretrained(folder)
    words = "a the calm loud piano rock guitar tone sine pure at hertz low high pitch".split()
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(words)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>",
                            unk_token="<unk>").save_pretrained(folder)
    return Path(folder)


def write_tone_dataset(root: Path) -> Path:
    """``root/test`` with 5 tones and ``root/train`` with 6 (1.5 s each), as ``TONES_SUITE`` expects."""
    write_tones(root, n=5, split="test")
    write_tones(root, n=6, split="train")
    return root


#: a suite over ``write_tone_dataset(<suite folder>/data)`` with the controls and the test metric
TONES_SUITE = """
name: tones
dataset:
  name: audio-folder
  params: {root: data, split: test}
generation:
  duration_s: 1.0
  seeds: [0]
  batch_size: 2
generators:
  - {name: reference}
  - {name: noise, params: {sample_rate: 16000}}
  - {name: silence, params: {sample_rate: 16000}}
  - name: retrieval
    params:
      train: {name: audio-folder, params: {root: data, split: train}}
metrics:
  - name: test-distance
"""


if __name__ == "__main__":
    register()
    from bench.cli import main

    sys.exit(main(sys.argv[1:]))
