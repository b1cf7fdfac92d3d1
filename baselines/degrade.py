"""``degrade``: the dataset's reference clips through one named degradation at one level.

A control for checking metrics (``suites/sanity.yaml``, ``bench.sanity``): as the level grows stronger
a trustworthy metric should score the clips monotonically worse. ``level`` means, per ``degradation``:

==============  ===========================  ====================  ======================
degradation     level                        clean at              stronger when
==============  ===========================  ====================  ======================
none            (ignored; the clean clip)    -                     -
white_noise     SNR in dB                    +inf                  lower
pink_noise      SNR in dB                    +inf                  lower
lowpass         cutoff in Hz                 Nyquist               lower
pitch_shift     semitones                    0                     further from 0
time_stretch    duration factor (> 1 slow)   1                     further from 1 (log)
codec           codebooks kept (n of K)      K                     lower
clipping        gain above the peak, dB      0                     higher
reverb          RT60 in seconds              0                     higher
==============  ===========================  ====================  ======================

``severity`` (a computed, recorded parameter) is a number that grows with the strength of the
degradation (``-level``, ``|level|``, ``|log2 level|`` or ``level`` as in the table; 0 for none), so
that analyses can order levels without knowing each degradation.

The signal processing is in ``baselines.degradations`` (documented there). The codec round trip
resamples to the codec's rate (julius), encodes with ``CompressionModel`` keeping the first ``n`` of
its ``K`` codebooks, decodes and resamples back: ``codec`` is any path ``CompressionModel
.from_pretrained`` reads, by default the built-in ``builtin:codec-small`` (16 kHz, K = 4; offline);
EnCodec 32 kHz (``facebook/encodec_32khz``, K = 4) works when its folder is in the local Hugging Face
cache. The codec's weights digest is part of the fingerprint.

Random degradations (noise, reverb) draw from a generator seeded by (seed, degradation, prompt id),
so a clip does not depend on its batch. Reference clips are resampled to ``sample_rate`` when set and
cropped to the requested duration before degrading (time stretch then crops its longer output to
the duration again, so a factor > 1 shows the first ``1 / factor`` of the clip, slowed down). A clip
whose peak exceeds 1 after degrading (loud noise) is scaled down to peak 1, never clipped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import Field, computed_field, model_validator

from baselines import degradations as dg
from baselines._common import fingerprint_of, fit_length, prompt_seed, weights_digest
from baselines.controls import ReferenceGenerator
from bench.api import AudioClip, Generator, Params, Prompt
from bench.audio import resample

CODE_VERSION = "1"

Degradation = Literal["none", "white_noise", "pink_noise", "lowpass", "pitch_shift", "time_stretch", "codec",
                      "clipping", "reverb"]


class DegradeParams(Params):
    degradation: Degradation
    level: float | None = Field(default=None, description="strength, in the unit of the degradation")
    sample_rate: int | None = Field(default=None, gt=0, description="resample references to this rate")
    codec: str = Field(default="builtin:codec-small", description="codec for 'codec' (path or builtin:NAME)")
    lowpass_order: int = Field(default=8, ge=1, le=16)
    reverb_drr_db: float = 0.0

    @model_validator(mode="after")
    def _check_level(self) -> DegradeParams:
        d, x = self.degradation, self.level
        if d == "none":
            return self
        if x is None or not math.isfinite(x):
            raise ValueError(f"degradation {d!r} needs a finite level; got {x!r}")
        rules = {"lowpass": (x > 0, "a cutoff > 0 Hz"), "time_stretch": (x > 0, "a factor > 0"),
                 "codec": (x >= 1 and float(x).is_integer(), "a whole number of codebooks >= 1"),
                 "clipping": (x >= 0, "a gain >= 0 dB"), "reverb": (x > 0, "an RT60 > 0 s")}
        ok, want = rules.get(d, (True, ""))
        if not ok:
            raise ValueError(f"degradation {d!r}: level {x!r} is not {want}")
        return self

    @computed_field  # type: ignore[prop-decorator]
    @property
    def severity(self) -> float:
        """Grows with the strength of the degradation (see the module table); 0 for none."""
        d, x = self.degradation, self.level
        if d == "none" or x is None:
            return 0.0
        if d in ("white_noise", "pink_noise", "lowpass", "codec"):
            return -float(x)
        if d == "pitch_shift":
            return abs(float(x))
        if d == "time_stretch":
            return abs(math.log2(float(x)))
        return float(x)


class DegradeGenerator(Generator):
    """Reference audio through one degradation (see the module docstring)."""

    Params = DegradeParams

    def __init__(self, params: DegradeParams | None = None, context=None) -> None:
        super().__init__(params, context)
        self.codec_model = None

    def _codec_path(self) -> str:
        return self.context.resolve(self.params.codec)

    def check(self) -> list[str]:
        if self.params.degradation != "codec":
            return []
        from musicgen.checkpoints.files import resolve_local

        try:
            resolve_local(self._codec_path())
        except FileNotFoundError as e:
            return [f"degrade codec: {e}"]
        return []

    def load(self, device: str = "cpu") -> None:
        if self.params.degradation != "codec" or self.codec_model is not None:
            return
        from musicgen.models.codec import CompressionModel

        model = CompressionModel.from_pretrained(self._codec_path(), stereo=False)
        n = int(self.params.level or 0)
        if n > model.total_codebooks:
            raise ValueError(f"degrade codec: level {n} codebooks but codec {self.params.codec!r} has "
                             f"{model.total_codebooks}")
        self.codec_model = model.eval()

    def fingerprint(self) -> str:
        extra = {}
        if self.params.degradation == "codec":
            from musicgen.checkpoints.files import resolve_local

            extra["codec_digest"] = weights_digest(resolve_local(self._codec_path()), self.context.cache_dir)
        return fingerprint_of("degrade", CODE_VERSION, self.params, **extra)

    def codec_round_trip(self, wav: np.ndarray, sample_rate: int) -> np.ndarray:
        """``[C, T]`` through the codec with ``level`` codebooks, each channel on its own."""
        import torch

        if self.codec_model is None:
            self.load()
        model = self.codec_model
        x = resample(wav, sample_rate, model.sample_rate)
        with torch.no_grad():
            t = torch.from_numpy(np.ascontiguousarray(x[:, None, :], dtype=np.float32))  # [C, 1, T]
            codes = model.encode(t, num_codebooks=int(self.params.level))
            y = model.decode(codes, length=t.shape[-1])[:, 0].numpy()
        y = resample(y, model.sample_rate, sample_rate)
        out = np.zeros_like(wav, dtype=np.float32)
        n = min(wav.shape[1], y.shape[1])
        out[:, :n] = y[:, :n]
        return out

    def degrade(self, wav: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        """One clip ``[C, T]`` through the configured degradation."""
        p = self.params
        d, x = p.degradation, p.level
        if d == "none":
            return np.asarray(wav, dtype=np.float32)
        if d in ("white_noise", "pink_noise"):
            return dg.add_noise(wav, x, rng, colour=d.split("_")[0])
        if d == "lowpass":
            return dg.lowpass(wav, sample_rate, x, p.lowpass_order)
        if d == "pitch_shift":
            return dg.pitch_shift(wav, sample_rate, x)
        if d == "time_stretch":
            return dg.time_stretch(wav, x)
        if d == "clipping":
            return dg.hard_clip(wav, x)
        if d == "reverb":
            return dg.reverb(wav, sample_rate, x, rng, p.reverb_drr_db)
        return self.codec_round_trip(wav, sample_rate)

    def generate(self, prompts: Sequence[Prompt], seed: int, duration_s: float) -> list[AudioClip]:
        clean = ReferenceGenerator(ReferenceGenerator.Params(sample_rate=self.params.sample_rate))
        out = []
        for clip in clean.generate(prompts, seed, duration_s):
            rng = np.random.default_rng(prompt_seed(seed, f"{self.params.degradation}|{clip.prompt_id}"))
            y = fit_length(self.degrade(clip.wav, clip.sample_rate, rng), clip.wav.shape[1])
            peak = float(np.max(np.abs(y))) if y.size else 0.0
            if peak > 1.0:  # scaled, never clipped: the runner's loudness normalisation sets the level
                y = (y / peak).astype(np.float32)
            out.append(AudioClip(y, clip.sample_rate, clip.prompt_id, seed,
                                 meta={**clip.meta, "degradation": self.params.degradation,
                                       "level": self.params.level}))
        return out
