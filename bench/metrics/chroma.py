"""Chroma cosine similarity between the melody reference and the generated clip (paired).

The melody reference is the audio file at ``item.prompt.melody_path`` (the melody the generator was
asked to follow) when the prompt has one, else ``item.reference`` (the dataset's own audio, as
audiocraft compares with the conditioning waveform). Both are downmixed to mono and resampled
to 32 kHz (julius); the value is the frame-count weighted mean of per-frame cosines of argmax
one-hot chromagrams (see ``functional.similarity``). The bootstrap resamples clips with their
frame counts as weights.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bench.api import AudioClip, MetricInfo, MetricItem, MetricResult
from bench.audio import resample, to_mono
from bench.metrics.base import BaseMetric, MetricParams, item_key
from bench.metrics.functional.audio_checks import audio_flags
from bench.metrics.functional.similarity import (
    CHROMA_HOP,
    CHROMA_N_FFT,
    CHROMA_SAMPLE_RATE,
    N_CHROMA,
    chroma_cosine_sums,
)


class ChromaCosineSimilarity(BaseMetric):
    """Frame-weighted mean chroma cosine (higher is better)."""

    Params = MetricParams
    embedders = ()
    needs_reference = True

    mean_names = ("chroma_cosine",)

    def __init__(self, params: MetricParams | None = None) -> None:
        super().__init__(params)
        self.add_state("n_items")

    def _melody(self, item: MetricItem) -> AudioClip:
        if item.prompt.melody_path is None:
            if item.reference is not None:
                return item.reference
            raise ValueError(f"chroma cosine is paired: item {item_key(item)!r} has neither a reference "
                             f"clip nor a prompt.melody_path")
        import soundfile as sf

        data, sr = sf.read(str(item.prompt.melody_path), dtype="float32", always_2d=True)
        return AudioClip(wav=data.T, sample_rate=sr, prompt_id=item.prompt.id, seed=0)

    def update(self, item: MetricItem, features: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        melody = self._melody(item)
        if not self.accept(item):
            return
        if audio_flags(melody.wav):
            if self.params.on_bad_audio == "raise":
                raise ValueError(f"chroma cosine: melody of {item_key(item)!r} is {audio_flags(melody.wav)}")
            self.flagged.setdefault(f"melody {audio_flags(melody.wav)[0]}", []).append(item_key(item))
            self.state["n_flagged"] += 1.0
            return
        ref = resample(to_mono(melody.wav), melody.sample_rate, CHROMA_SAMPLE_RATE)
        gen = resample(to_mono(item.generated.wav), item.generated.sample_rate, CHROMA_SAMPLE_RATE)
        total, frames = chroma_cosine_sums(ref, gen)
        self.add_value("chroma_cosine", item_key(item), total / frames, weight=float(frames))
        self.state["n_items"] += 1.0

    def infos(self) -> list[MetricInfo]:
        proto = {**self.base_protocol(), "sample_rate": CHROMA_SAMPLE_RATE, "n_fft": CHROMA_N_FFT,
                 "win_length": CHROMA_N_FFT, "hop": CHROMA_HOP, "n_chroma": N_CHROMA, "argmax": True,
                 "length_policy": "both cut to the shorter clip; ceil(T / hop) frames",
                 "aggregation": "per-frame cosine, mean weighted by frame count"}
        return [MetricInfo("chroma_cosine", higher_is_better=True, protocol=proto)]

    def compute(self) -> dict[str, MetricResult]:
        return {"chroma_cosine": self.mean_result("chroma_cosine", int(self.state["n_items"]))}
