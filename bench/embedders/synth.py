"""The synth evaluators: small models trained by us on synthcaps, shipped under ``weights/``.

Not published models: their names say "synth" wherever they are reported, and every protocol
records the weights' sha256 and the synthcaps corpus digest they were trained on. Architecture and
front end: ``bench.embedders.synth_models``; recipes: ``bench.embedders.synth_train`` and
``recipes/*.yaml``; results and retrain command: each weights folder's ``MODEL_CARD.md``.

- ``synth-tagger``: window embeddings ``[W, 64]`` (0.96 s windows, the layer before the heads) for FAD.
- ``synth-tagger-logits``: the same weights, per-window logits ``[W, C]`` of one head (``genre`` by
  default, C = 10) for the KL metric, which applies the softmax per window and averages per clip, as
  it does with PaSST's per-segment logits (``kl: {embedder: synth-tagger-logits}``).
- ``synth-clap``: one L2-normalised audio embedding ``[1, 64]`` of the whole clip, and
  ``embed_text(texts) -> [N, 64]`` for the CLAP score (``clap_score: {embedder: synth-clap}``).

Clips shorter than half a window (0.48 s) are an error; NaN/inf audio is an error.
"""

from __future__ import annotations

import abc
import json
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from bench.api import Embedder, Params
from bench.embedders.common import local_file, require_length
from bench.embedders.synth_models import (
    MIN_SAMPLES,
    SAMPLE_RATE,
    SynthClap,
    SynthTagger,
    encode_texts,
    log_mel,
)

WEIGHTS_DIR = Path(__file__).parent / "weights"


def shipped_weights(name: str) -> str:
    return str(WEIGHTS_DIR / name / "model.safetensors")


def read_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """State dict and config (the ``config`` JSON metadata entry) of a synth weights file."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if "config" not in meta:
        raise ValueError(f"{path}: not a synth evaluator weights file (no 'config' metadata entry)")
    return load_file(str(path)), json.loads(meta["config"])


class SynthParams(Params):
    weights: str = ""  # a model.safetensors path; empty = the shipped weights


class _SynthEmbedder(Embedder):
    """Common loading, digest and protocol of the synth evaluators."""

    sample_rate: ClassVar[int] = SAMPLE_RATE
    weights_name: ClassVar[str] = ""
    Params = SynthParams

    def __init__(self, params: SynthParams | None = None) -> None:
        super().__init__(params)
        self.model: torch.nn.Module | None = None
        self.config: dict[str, Any] = {}

    def _path(self) -> str:
        return self.params.weights or shipped_weights(self.weights_name)

    def weight_files(self) -> list[Path]:
        return [local_file(self._path(), f"{self.name} weights", self._how_to_get())]

    def _how_to_get(self) -> str:
        return (f"it ships with the package under bench/embedders/weights/{self.weights_name}/; "
                f"retrain with: python -m bench.embedders.synth_train "
                f"bench/embedders/recipes/{self.weights_name}.yaml --corpus DIR --out DIR")

    def load(self, device: str = "cpu") -> None:
        (path,) = self.weight_files()
        state, self.config = read_weights(path)
        model = self._build(self.config)
        model.load_state_dict(state)
        self.model = model.eval().to(device)
        self.device = device

    @abc.abstractmethod
    def _build(self, config: dict[str, Any]) -> torch.nn.Module:
        """The network for a weights file's config."""

    def protocol(self) -> dict[str, Any]:
        return {**super().protocol(), "trained_on": "synthcaps (ours; see MODEL_CARD.md)",
                "corpus_digest": self.config.get("corpus_digest"), "window_s": 0.96}

    def _mel(self, wav: np.ndarray) -> torch.Tensor:
        if self.model is None:
            raise RuntimeError(f"{self.name}: call load() before embed()")
        x = require_length(wav, MIN_SAMPLES, self.name, SAMPLE_RATE)
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{self.name}: audio contains NaN or inf")
        return log_mel(torch.from_numpy(x)[None]).to(self.device)


class SynthTaggerEmbedder(_SynthEmbedder):
    """``embed``: mono float32 ``[T]`` at 16 kHz -> window embeddings ``[W, 64]`` (for FAD)."""

    name = "synth-tagger"
    weights_name = "synth-tagger"
    dim = 64

    def _build(self, config: dict[str, Any]) -> torch.nn.Module:
        r = config["recipe"]
        return SynthTagger({k: len(v) for k, v in config["classes"].items()}, r["channels"], r["dim"])

    def protocol(self) -> dict[str, Any]:
        return {**super().protocol(), "output": "window embeddings before the heads"}

    @torch.no_grad()
    def embed(self, wav: np.ndarray) -> np.ndarray:
        mel = self._mel(wav)
        emb, _ = self.model(mel)
        return emb[0].cpu().numpy()


class SynthTaggerLogitsParams(SynthParams):
    head: Literal["genre", "instrument", "mode"] = "genre"


class SynthTaggerLogitsEmbedder(SynthTaggerEmbedder):
    """``embed``: mono ``[T]`` at 16 kHz -> per-window logits ``[W, C]`` of ``head`` (for KL)."""

    name = "synth-tagger-logits"
    Params = SynthTaggerLogitsParams
    dim = 10

    def load(self, device: str = "cpu") -> None:
        super().load(device)
        if self.params.head not in self.config["classes"]:
            raise ValueError(f"{self.name}: head {self.params.head!r} not in the weights' heads "
                             f"{sorted(self.config['classes'])}")

    def labels(self) -> list[str]:
        """Class names of the head, in logit order."""
        return list(self.config["classes"][self.params.head])

    def protocol(self) -> dict[str, Any]:
        return {**super().protocol(), "output": f"per-window logits of the {self.params.head!r} head",
                "classes": self.config.get("classes", {}).get(self.params.head)}

    @torch.no_grad()
    def embed(self, wav: np.ndarray) -> np.ndarray:
        mel = self._mel(wav)
        _, logits = self.model(mel)
        return logits[self.params.head][0].cpu().numpy()


class SynthClapEmbedder(_SynthEmbedder):
    """``embed``: mono ``[T]`` at 16 kHz -> L2-normalised ``[1, 64]``; ``embed_text`` -> ``[N, 64]``."""

    name = "synth-clap"
    weights_name = "synth-clap"
    dim = 64

    def _build(self, config: dict[str, Any]) -> torch.nn.Module:
        r = config["recipe"]
        self.vocab = {w: i for i, w in enumerate(config["vocab"])}
        return SynthClap(len(config["vocab"]), r["channels"], r["dim"], r["word_dim"])

    def protocol(self) -> dict[str, Any]:
        return {**super().protocol(), "crop": "whole clip (mean over 0.96 s windows)",
                "text": "mean of learned word embeddings (lower-cased whitespace tokens)",
                "vocab_size": len(self.config.get("vocab", []))}

    @torch.no_grad()
    def embed(self, wav: np.ndarray) -> np.ndarray:
        mel = self._mel(wav)
        return self.model.embed_audio(mel).cpu().numpy()

    @torch.no_grad()
    def embed_text(self, texts: list[str]) -> np.ndarray:
        if self.model is None:
            raise RuntimeError(f"{self.name}: call load() before embed_text()")
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError(f"{self.name}: embed_text takes a list of strings")
        ids = encode_texts(list(texts), self.vocab).to(self.device)
        return self.model.embed_tokens(ids).cpu().numpy()
