"""Control generators: the metrics' best case (``reference``) and worst cases (``noise``, ``silence``).

- ``reference`` returns the dataset's own audio for each prompt (resampled to ``sample_rate`` when set,
  cropped to the requested duration): a good metric scores it best.
- ``noise`` returns Gaussian white noise of ``amplitude_dbfs`` RMS, seeded by (seed, prompt id).
- ``silence`` returns zeros (loudness normalisation leaves silence silent).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import Field

from baselines._common import fingerprint_of, fit_length, prompt_seed
from bench.api import AudioClip, Generator, Params, Prompt
from bench.audio import read_audio, resample

CODE_VERSION = "1"


class ReferenceGenerator(Generator):
    class Params(Params):
        sample_rate: int | None = Field(default=None, gt=0, description="resample to this rate; None keeps")

    def load(self, device: str = "cpu") -> None:
        pass

    def fingerprint(self) -> str:
        return fingerprint_of("reference", CODE_VERSION, self.params)

    def generate(self, prompts: Sequence[Prompt], seed: int, duration_s: float) -> list[AudioClip]:
        out = []
        for p in prompts:
            if p.reference_path is None:
                raise ValueError(f"prompt {p.id!r} has no reference audio: the 'reference' control needs "
                                 f"a dataset with audio")
            wav, sr = read_audio(p.reference_path)
            if self.params.sample_rate and self.params.sample_rate != sr:
                wav, sr = resample(wav, sr, self.params.sample_rate), self.params.sample_rate
            out.append(AudioClip(fit_length(wav, round(duration_s * sr)), sr, p.id, seed,
                                 meta={"source": str(p.reference_path)}))
        return out


class NoiseGenerator(Generator):
    class Params(Params):
        sample_rate: int = Field(default=32000, gt=0)
        channels: int = Field(default=1, ge=1)
        amplitude_dbfs: float = Field(default=-20.0, le=0)

    def load(self, device: str = "cpu") -> None:
        pass

    def fingerprint(self) -> str:
        return fingerprint_of("noise", CODE_VERSION, self.params)

    def generate(self, prompts: Sequence[Prompt], seed: int, duration_s: float) -> list[AudioClip]:
        p = self.params
        n = round(duration_s * p.sample_rate)
        rms = 10.0 ** (p.amplitude_dbfs / 20.0)
        out = []
        for prompt in prompts:
            rng = np.random.default_rng(prompt_seed(seed, prompt.id))
            wav = (rng.standard_normal((p.channels, n)) * rms).clip(-1.0, 1.0).astype(np.float32)
            out.append(AudioClip(wav, p.sample_rate, prompt.id, seed))
        return out


class SilenceGenerator(Generator):
    class Params(Params):
        sample_rate: int = Field(default=32000, gt=0)
        channels: int = Field(default=1, ge=1)

    def load(self, device: str = "cpu") -> None:
        pass

    def fingerprint(self) -> str:
        return fingerprint_of("silence", CODE_VERSION, self.params)

    def generate(self, prompts: Sequence[Prompt], seed: int, duration_s: float) -> list[AudioClip]:
        n = round(duration_s * self.params.sample_rate)
        return [AudioClip(np.zeros((self.params.channels, n), np.float32), self.params.sample_rate,
                          p.id, seed) for p in prompts]
