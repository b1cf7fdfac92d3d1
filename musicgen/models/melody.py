"""Melody conditioning: chromagram of a reference -> projected prefix for MusicGen-Melody.

``ChromaConditioner`` turns melody audio into the chroma prefix of the released melody model
(transformers' ``MusicgenMelodyForConditionalGeneration`` semantics):

- audio ``[B, C, T]`` (or a list of ``[C, T]``) at ``sample_rate`` is resampled to 32 kHz (julius),
  averaged to mono and turned into one-hot chroma ``[B, frames, 12]`` (``musicgen.modules.chroma``);
- ``output_proj`` (``Linear(12, D)``, transformers' ``audio_enc_to_dec_proj``) maps it to the LM width;
- the projected chroma is tiled (repeated whole) when shorter than ``chroma_length`` frames and cut
  to ``chroma_length`` (235 frames = 30 s at 7.8125 Hz for the released model);
- the null melody (no reference, and the CFG null row) is the one-hot of bin 0 for every frame
  (transformers: ``null_audio_hidden_states[:, :, 0] = 1``; audiocraft: the argmax of a silent chroma).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from musicgen.modules.audio import resample, to_mono
from musicgen.modules.chroma import ChromaExtractor


class ChromaConditioner(nn.Module):
    """Melody audio -> chroma ``[B, frames, 12]`` -> prefix ``[B, chroma_length, output_dim]``."""

    def __init__(self, output_dim: int, num_chroma: int = 12, chroma_length: int = 235,
                 sample_rate: int = 32000, n_fft: int = 16384, hop_length: int = 4096) -> None:
        super().__init__()
        if chroma_length <= 0:
            raise ValueError(f"chroma_length must be positive, got {chroma_length}")
        self.extractor = ChromaExtractor(sample_rate, n_fft, hop_length, num_chroma)
        self.output_proj = nn.Linear(num_chroma, output_dim)
        self.num_chroma, self.chroma_length, self.output_dim = num_chroma, int(chroma_length), output_dim

    @property
    def sample_rate(self) -> int:
        return self.extractor.sample_rate

    def config(self) -> dict:
        e = self.extractor
        return {"output_dim": self.output_dim, "num_chroma": self.num_chroma,
                "chroma_length": self.chroma_length, "sample_rate": e.sample_rate, "n_fft": e.n_fft,
                "hop_length": e.hop_length}

    def prepare_audio(self, melody_wavs: torch.Tensor | Sequence[torch.Tensor | None], sample_rate: int,
                      batch_size: int) -> list[torch.Tensor | None]:
        """Check and resample melody audio: a ``[B, C, T]`` tensor or a list of ``[C, T]`` / ``None``
        -> list of mono ``[T']`` at the chroma sample rate (``None`` = no melody for that row)."""
        if not isinstance(sample_rate, int) or sample_rate <= 0:
            raise ValueError(f"melody_sample_rate must be a positive int (Hz), got {sample_rate!r}")
        if isinstance(melody_wavs, torch.Tensor):
            if melody_wavs.dim() == 2:
                melody_wavs = melody_wavs[:, None]
            if melody_wavs.dim() != 3:
                raise ValueError(f"melody_wavs must be [B, C, T] (or a list of [C, T]), got shape "
                                 f"{tuple(melody_wavs.shape)}")
            melody_wavs = list(melody_wavs)
        wavs = list(melody_wavs)
        if len(wavs) != batch_size:
            raise ValueError(f"got {len(wavs)} melodies for {batch_size} descriptions")
        out: list[torch.Tensor | None] = []
        for i, w in enumerate(wavs):
            if w is None:
                out.append(None)
                continue
            if w.dim() == 1:
                w = w[None]
            if w.dim() != 2 or w.shape[-1] == 0:
                raise ValueError(f"melody {i} must be [C, T] with T > 0 samples, got shape {tuple(w.shape)}")
            if not torch.isfinite(w).all():
                raise ValueError(f"melody {i} contains NaN or infinite samples")
            out.append(resample(to_mono(w.float()), sample_rate, self.sample_rate)[0])
        return out

    def chroma(self, wavs: Sequence[torch.Tensor | None]) -> list[torch.Tensor]:
        """One-hot chroma ``[frames, 12]`` per row (the null chroma ``[1, 12]`` for ``None``)."""
        device = self.output_proj.weight.device
        return [self.extractor(w[None].to(device))[0] if w is not None else self.null_chroma(1, device)[0]
                for w in wavs]

    def null_chroma(self, batch_size: int, device: torch.device | None = None) -> torch.Tensor:
        """``[B, 1, 12]``: one-hot bin 0."""
        x = torch.zeros(batch_size, 1, self.num_chroma, device=device)
        x[..., 0] = 1
        return x

    def project(self, chroma: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        """Chroma ``[B, F, 12]`` (or a list of ``[F_i, 12]``) -> ``[B, chroma_length, D]``: projected,
        tiled when shorter, cut when longer."""
        rows = list(chroma)
        out = []
        for c in rows:
            if c.dim() != 2 or c.shape[-1] != self.num_chroma or c.shape[0] == 0:
                raise ValueError(f"chroma must be [frames, {self.num_chroma}] per row, got {tuple(c.shape)}")
            x = self.output_proj(c.to(self.output_proj.weight))
            if x.shape[0] < self.chroma_length:
                x = x.repeat(-(-self.chroma_length // x.shape[0]), 1)
            out.append(x[: self.chroma_length])
        return torch.stack(out)

    def null(self, batch_size: int) -> torch.Tensor:
        """The null melody prefix ``[B, chroma_length, D]``."""
        return self.project(self.null_chroma(batch_size, self.output_proj.weight.device))
