"""The codec's hyper-parameters (``CodecConfig``) and its presets, apart from the model so that the
checkpoint readers can describe a codec without building one.

Defaults are MusicGen's 32 kHz EnCodec (audiocraft ``config/model/encodec/encodec_large_nq4_s640.yaml``
and the ``facebook/encodec_32khz`` config): 32 kHz mono, SEANet ratios [8, 5, 4, 4] (hop 640, 50 Hz
frames), 64 filters, dimension 128, 2 LSTM layers, 4 codebooks of 2048 entries.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class CodecConfig:
    """Every hyper-parameter of the codec. Defaults are MusicGen's 32 kHz EnCodec."""

    sample_rate: int = 32000
    channels: int = 1
    dimension: int = 128
    n_filters: int = 64
    ratios: list[int] = field(default_factory=lambda: [8, 5, 4, 4])
    residual_layers: int = 1
    kernel_size: int = 7
    last_kernel_size: int = 7
    residual_kernel_size: int = 3
    dilation_base: int = 2
    compress: int = 2
    lstm_layers: int = 2
    causal: bool = False
    pad_mode: str = "reflect"
    true_skip: bool = True
    norm: str = "weight_norm"
    trim_right_ratio: float = 1.0
    codebook_size: int = 2048
    num_codebooks: int = 4
    decay: float = 0.99
    kmeans_init: bool = True
    kmeans_iters: int = 50
    threshold_ema_dead_code: float = 2.0
    q_dropout: bool = False

    @property
    def hop_length(self) -> int:
        return math.prod(self.ratios)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CodecConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown codec config fields {unknown}; expected some of {sorted(names)}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def musicgen_32khz_config(**overrides: Any) -> CodecConfig:
    """MusicGen's codec: 32 kHz mono, hop 640 (50 Hz), 4 codebooks of 2048, dim 128, 64 filters."""
    return CodecConfig(**overrides)


def tiny_config(**overrides: Any) -> CodecConfig:
    """A small codec for tests: 8 kHz, hop 32 (250 Hz), 4 codebooks of 64, dim 16, 8 filters."""
    base = dict(
        sample_rate=8000,
        dimension=16,
        n_filters=8,
        ratios=[4, 4, 2],
        codebook_size=64,
        num_codebooks=4,
        lstm_layers=1,
        kmeans_iters=5,
    )
    base.update(overrides)
    return CodecConfig(**base)


CODEC_PRESETS = {"tiny": tiny_config, "musicgen_32khz": musicgen_32khz_config}


def codec_config(preset: str, **overrides: Any) -> CodecConfig:
    """The :class:`CodecConfig` of a named preset (``CODEC_PRESETS``) with some fields overridden."""
    if preset not in CODEC_PRESETS:
        raise ValueError(f"unknown codec preset {preset!r}; known: {sorted(CODEC_PRESETS)}")
    return CODEC_PRESETS[preset](**overrides)


@dataclass
class CodecParts:
    """A codec as a checkpoint reader returns it and ``CompressionModel.from_pretrained`` assembles it."""

    config: CodecConfig
    state: dict[str, Any]  # weights under our key names
    source: str  # the file the weights came from, for error messages
    stereo: bool = False  # our native format's ``interleave_stereo`` flag
