"""Chromagram of melody audio, as the released MusicGen melody model computes it.

Recipe (audiocraft's ``ChromaExtractor`` and transformers' ``MusicgenMelodyFeatureExtractor``):

1. audio at 32 kHz, mono ``[B, T]``; clips shorter than ``n_fft`` are zero-padded on both sides to
   ``n_fft`` samples (the extra sample, if any, on the right);
2. power spectrogram ``|STFT|^2`` with n_fft = window = 16384, hop 4096, periodic Hann window,
   centred with reflect padding, the complex STFT divided by ``sqrt(sum(window^2))`` (torchaudio's
   ``normalized=True``);
3. a librosa chroma filter bank (``librosa.filters.chroma(sr, n_fft, tuning=0, n_chroma=12)``) maps
   the ``n_fft // 2 + 1`` frequency bins onto 12 pitch classes;
4. each frame is divided by its maximum (``F.normalize(p=inf, eps=1e-6)``);
5. argmax one-hot per frame: the information bottleneck of the paper.

The frame rate is ``sample_rate / hop_length`` (7.8125 Hz at 32 kHz); ``num_frames = 1 + T // hop``.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from musicgen.modules.audio import resample, to_mono


def chroma_filter_bank(sample_rate: int, n_fft: int, num_chroma: int = 12) -> torch.Tensor:
    """librosa's chroma filter bank ``[num_chroma, n_fft // 2 + 1]`` (tuning 0, float32)."""
    import librosa

    bank = librosa.filters.chroma(sr=sample_rate, n_fft=n_fft, tuning=0.0, n_chroma=num_chroma)
    return torch.from_numpy(bank).float()


class ChromaExtractor(nn.Module):
    """Melody audio ``[B, T]`` or ``[B, C, T]`` (channels are averaged) -> chroma ``[B, frames, 12]``.

    ``argmax=True`` (default, as the released model) returns one-hot frames; ``argmax=False`` returns
    the max-normalised chroma in ``[0, 1]``.
    """

    def __init__(self, sample_rate: int = 32000, n_fft: int = 16384, hop_length: int = 4096,
                 num_chroma: int = 12, argmax: bool = True) -> None:
        super().__init__()
        if n_fft <= 0 or hop_length <= 0 or num_chroma <= 0:
            raise ValueError(f"n_fft ({n_fft}), hop_length ({hop_length}) and num_chroma ({num_chroma}) "
                             f"must be positive")
        self.sample_rate = int(sample_rate)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.num_chroma = int(num_chroma)
        self.argmax = argmax
        self.register_buffer("filters", chroma_filter_bank(sample_rate, n_fft, num_chroma), persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True), persistent=False)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    def num_frames(self, num_samples: int) -> int:
        """Chroma frames for ``num_samples`` samples of audio."""
        return 1 + max(num_samples, self.n_fft) // self.hop_length

    def power_spectrogram(self, wav: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` -> ``[B, n_fft // 2 + 1, frames]``, torchaudio ``Spectrogram(normalized=True)``."""
        spec = torch.stft(wav, n_fft=self.n_fft, hop_length=self.hop_length, win_length=self.n_fft,
                          window=self.window.to(wav.dtype), center=True, pad_mode="reflect",
                          normalized=False, onesided=True, return_complex=True)
        spec = spec / self.window.pow(2).sum().sqrt()
        return spec.abs().pow(2)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        if wav.dim() == 3:
            wav = wav.mean(dim=1)
        if wav.dim() != 2:
            raise ValueError(f"melody audio must be [B, T] or [B, C, T], got shape {tuple(wav.shape)}")
        if wav.shape[-1] == 0:
            raise ValueError("melody audio is empty (0 samples)")
        if not torch.isfinite(wav).all():
            raise ValueError("melody audio contains NaN or infinite samples")
        wav = wav.float()
        if wav.shape[-1] < self.n_fft:
            pad = self.n_fft - wav.shape[-1]
            wav = F.pad(wav, (pad // 2, pad - pad // 2))
        spec = self.power_spectrogram(wav)
        chroma = torch.einsum("cf,bft->bct", self.filters, spec)
        chroma = F.normalize(chroma, p=float("inf"), dim=-2, eps=1e-6).transpose(1, 2)  # [B, frames, 12]
        if not self.argmax:
            return chroma
        return F.one_hot(chroma.argmax(-1), self.num_chroma).to(chroma.dtype)


def remove_drums_and_bass(wav: torch.Tensor, sample_rate: int, repo: str | Path | None = None,
                          model_name: str = "htdemucs",
                          keep_stems: tuple[str, ...] = ("vocals", "other")) -> torch.Tensor:
    """Optional Demucs stem removal, as for the melody model's training: keep vocals + other.

    ``wav [B, C, T]`` at ``sample_rate`` -> ``[B, 1, T]`` mono at ``sample_rate``. Needs the ``demucs``
    package (extra ``stems``) and a local folder ``repo`` holding the model's files (``NAME.yaml`` and
    its ``.th`` weights, as ``demucs.pretrained.get_model(name, repo=...)`` reads them); demucs is only
    ever called with a local repo, so nothing is downloaded.
    """
    try:
        from demucs import pretrained  # type: ignore[import-not-found]
        from demucs.apply import apply_model  # type: ignore[import-not-found]
    except ImportError as e:
        raise ImportError("stem removal needs the `demucs` package (pip install demucs, or the extra "
                          "musicgen-bench[stems]) and its weights in a local folder; run without stem "
                          "removal otherwise") from e
    if repo is None or not Path(repo).is_dir():
        raise FileNotFoundError(
            f"Demucs weights folder {repo!r} not found: stem removal reads {model_name}.yaml and its .th "
            f"files from a local folder (pass repo=...). Nothing is downloaded at run time: copy them from "
            f"a machine where `python -m demucs -n {model_name}` has run (~/.cache/torch/hub/checkpoints)")
    try:
        model = pretrained.get_model(model_name, repo=Path(repo))
    except Exception as e:  # noqa: BLE001 - demucs raises several kinds here
        raise FileNotFoundError(f"Demucs model {model_name!r} could not be read from {str(repo)!r}: "
                                f"{e}") from e
    model.eval()
    x = wav if wav.dim() == 3 else wav[:, None]
    x = resample(x, sample_rate, model.samplerate)
    if x.shape[1] != model.audio_channels:
        x = to_mono(x).expand(-1, model.audio_channels, -1)
    with torch.no_grad():
        stems = apply_model(model, x)  # [B, S, C, T]
    idx = [model.sources.index(s) for s in keep_stems]
    out = to_mono(stems[:, idx].sum(1))
    return resample(out, model.samplerate, sample_rate)
