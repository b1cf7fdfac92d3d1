"""Networks of the synth evaluators (``synth-tagger``, ``synth-clap``), trained by us on synthcaps.

Shared by the embedders (``bench.embedders.synth``) and the training recipe
(``bench.embedders.synth_train``).

Front end (16 kHz mono): STFT n_fft 1024, hop 320 (20 ms), periodic Hann window, centred frames with
reflect padding; power; 64 Slaney mel bands 0-8000 Hz (librosa's filters); ``log(mel + 1e-6)``;
then per-band standardisation with the training corpus' mean and std (stored with the weights).

Audio tower (``AudioTower``): three Conv1d layers over time with the mel bands as channels
(kernel 5, strides 1, 2, 2, ReLU), so one feature frame is 80 ms; features are averaged over
non-overlapping windows of 12 feature frames (0.96 s, as VGGish) and projected by Linear + ReLU to
the window embedding ``[W, D]``. A clip shorter than one window is one (shorter) window; a trailing
partial window shorter than half a window is dropped.

Tagger: window embeddings -> Linear heads (genre, lead instrument, mode), softmax per window.
CLAP: audio = mean of window embeddings -> Linear -> L2 norm; text = mean of learned word embeddings
over the caption's tokens (``tokenize``: lower-case, split on whitespace, strip punctuation around
each token; unknown words map to id 1, id 0 is padding) -> Linear -> L2 norm; a learned logit scale.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

SAMPLE_RATE = 16000
N_FFT = 1024
HOP = 320
N_MELS = 64
FEATURE_STRIDE = 4  # mel frames per feature frame (two stride-2 convs)
WINDOW_FEATURES = 12  # feature frames per window: 12 * 4 * 320 / 16000 = 0.96 s
WINDOW_SAMPLES = WINDOW_FEATURES * FEATURE_STRIDE * HOP
MIN_SAMPLES = WINDOW_SAMPLES // 2  # shorter clips are an error
PAD_ID, UNK_ID = 0, 1


@functools.lru_cache(maxsize=1)
def _mel_tables() -> tuple[torch.Tensor, torch.Tensor]:
    import librosa

    banks = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=0.0, fmax=8000.0)
    return torch.hann_window(N_FFT, periodic=True), torch.from_numpy(banks.astype(np.float32))


def log_mel(wav: torch.Tensor) -> torch.Tensor:
    """``[B, N]`` float at 16 kHz -> log mel ``[B, 64, 1 + N // 320]`` (float32, not standardised)."""
    window, banks = _mel_tables()
    spec = torch.stft(wav.float(), N_FFT, hop_length=HOP, window=window, center=True,
                      pad_mode="reflect", return_complex=True)
    power = spec.real ** 2 + spec.imag ** 2
    return torch.log(torch.matmul(banks, power) + 1e-6)


def tokenize(text: str) -> list[str]:
    """Lower-cased whitespace tokens with surrounding punctuation stripped (empty tokens dropped)."""
    tokens = (t.strip(string.punctuation) for t in text.lower().split())
    return [t for t in tokens if t]


class AudioTower(nn.Module):
    """Standardised log mel ``[B, 64, frames]`` -> window embeddings ``[B, W, dim]``."""

    def __init__(self, channels: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("mel_mean", torch.zeros(N_MELS, 1))
        self.register_buffer("mel_std", torch.ones(N_MELS, 1))
        self.conv = nn.Sequential(
            nn.Conv1d(N_MELS, channels, 5, padding=2), nn.ReLU(),
            nn.Conv1d(channels, channels, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv1d(channels, channels, 5, stride=2, padding=2), nn.ReLU())
        self.proj = nn.Linear(channels, dim)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        h = self.conv((mel - self.mel_mean) / self.mel_std)  # [B, C, F]
        return torch.relu(self.proj(window_pool(h).transpose(1, 2)))


def window_pool(h: torch.Tensor) -> torch.Tensor:
    """``[B, C, F]`` feature frames -> ``[B, C, W]`` means over windows of ``WINDOW_FEATURES``."""
    f = h.shape[-1]
    full, rest = divmod(f, WINDOW_FEATURES)
    parts = []
    if full:
        parts.append(h[..., :full * WINDOW_FEATURES].unflatten(-1, (full, WINDOW_FEATURES)).mean(-1))
    if rest and (rest * 2 >= WINDOW_FEATURES or not full):
        parts.append(h[..., full * WINDOW_FEATURES:].mean(-1, keepdim=True))
    return torch.cat(parts, dim=-1)


class SynthTagger(nn.Module):
    """Audio tagger: window embeddings ``[B, W, dim]`` and per-head logits ``[B, W, classes]``."""

    def __init__(self, head_sizes: dict[str, int], channels: int = 96, dim: int = 64) -> None:
        super().__init__()
        self.audio = AudioTower(channels, dim)
        self.heads = nn.ModuleDict({k: nn.Linear(dim, n) for k, n in head_sizes.items()})

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        emb = self.audio(mel)
        return emb, {k: head(emb) for k, head in self.heads.items()}


class SynthClap(nn.Module):
    """Text-audio contrastive model: ``embed_audio(mel) -> [B, dim]``, ``embed_tokens(ids) -> [B, dim]``
    (both L2-normalised); ``logit_scale`` is the log of the InfoNCE inverse temperature."""

    def __init__(self, vocab_size: int, channels: int = 96, dim: int = 64, word_dim: int = 64) -> None:
        super().__init__()
        self.audio = AudioTower(channels, dim)
        self.audio_proj = nn.Linear(dim, dim)
        self.words = nn.Embedding(vocab_size, word_dim, padding_idx=PAD_ID)
        self.text_proj = nn.Linear(word_dim, dim)
        self.logit_scale = nn.Parameter(torch.tensor(float(np.log(1 / 0.07))))

    def embed_audio(self, mel: torch.Tensor) -> torch.Tensor:
        pooled = self.audio(mel).mean(dim=1)
        return nn.functional.normalize(self.audio_proj(pooled), dim=-1)

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        """``ids`` ``[B, L]`` int64 padded with ``PAD_ID`` -> ``[B, dim]``."""
        mask = (ids != PAD_ID).float().unsqueeze(-1)
        mean = (self.words(ids) * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return nn.functional.normalize(self.text_proj(mean), dim=-1)


def encode_texts(texts: Sequence[str], vocab: dict[str, int]) -> torch.Tensor:
    """Token ids ``[N, L]`` (padded with ``PAD_ID``; an empty text is one ``UNK_ID``)."""
    rows = [[vocab.get(t, UNK_ID) for t in tokenize(text)] or [UNK_ID] for text in texts]
    width = max(len(r) for r in rows)
    return torch.tensor([r + [PAD_ID] * (width - len(r)) for r in rows], dtype=torch.int64)


def build_vocab(texts: Sequence[str], min_count: int = 1) -> list[str]:
    """Sorted words seen at least ``min_count`` times, after the padding and unknown entries."""
    counts: dict[str, int] = {}
    for text in texts:
        for t in tokenize(text):
            counts[t] = counts.get(t, 0) + 1
    return ["<pad>", "<unk>", *sorted(w for w, c in counts.items() if c >= min_count)]
