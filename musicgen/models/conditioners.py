"""Conditioners: text (and melody, CLAP) -> ``(embeds [B, L, D], mask [B, L])`` for the LM.

Every conditioner returns a ``Condition``: ``embeds`` already projected to the LM width ``D`` and
zeroed where ``mask`` is 0, and ``mask`` (1 = a real position). The LM attends to ``embeds``
(cross-attention, or as a prefix for melody).

The null condition used for classifier-free guidance is ``Condition.null()``: zero embeddings and an
all-zero mask of the same shape. This is both transformers' MusicGen semantics (``generate`` appends
``zeros_like`` encoder states and a zero attention mask, and the projected states are multiplied by
the mask) and audiocraft's (a ``None`` description tokenises to an empty mask and the projected
embeddings are multiplied by the mask). With the mask all zero, cross-attention contributes nothing.

Text conditioners here:

- ``LUTConditioner``: whitespace words -> learned embeddings, vocabulary built from a corpus with an
  unknown-word id; for tiny models trained in this project. Saves/loads in our native format.
Frozen pretrained encoders (T5, sentence encoders) build on ``TextConditioner`` elsewhere
(``musicgen.models.text_conditioners``); every conditioner's ``config()`` is what our native format
(``musicgen.checkpoints.text_native``) writes.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

PAD_ID = 0
UNK_ID = 1
NUM_WORD = "<num>"  # the one vocabulary entry of every number when number features are on


@dataclass
class Condition:
    """``embeds [B, L, D]`` (zero where masked) and ``mask [B, L]`` (1 = real position, long)."""

    embeds: torch.Tensor
    mask: torch.Tensor

    def __iter__(self):  # allows ``embeds, mask = cond``
        return iter((self.embeds, self.mask))

    @property
    def batch_size(self) -> int:
        return self.embeds.shape[0]

    def null(self) -> Condition:
        """The classifier-free-guidance null condition: zero embeddings and an all-zero mask."""
        return Condition(torch.zeros_like(self.embeds), torch.zeros_like(self.mask))

    def with_null(self) -> Condition:
        """``[cond; null]`` stacked on the batch axis (``[2B, L, D]``), the CFG batch layout."""
        return cat_conditions([self, self.null()])

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Condition:
        return Condition(self.embeds.to(device=device, dtype=dtype), self.mask.to(device=device))


def cat_conditions(conds: Sequence[Condition]) -> Condition:
    """Concatenate conditions on the batch axis, right-padding shorter ones with masked zeros."""
    length = max(c.embeds.shape[1] for c in conds)
    embeds, masks = [], []
    for c in conds:
        pad = length - c.embeds.shape[1]
        embeds.append(nn.functional.pad(c.embeds, (0, 0, 0, pad)))
        masks.append(nn.functional.pad(c.mask, (0, pad)))
    return Condition(torch.cat(embeds), torch.cat(masks))


def check_texts(texts: Sequence[str | None]) -> list[str | None]:
    """``texts`` as a list, each a string or ``None``; a lone string or an empty list is an error."""
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings (or None for the null condition), not one string")
    out = list(texts)
    if not out:
        raise ValueError("texts is empty: give at least one description (None for no description)")
    for i, t in enumerate(out):
        if t is not None and not isinstance(t, str):
            raise TypeError(f"texts[{i}] is {type(t).__name__}, expected a string or None")
    return out


class TextConditioner(nn.Module):
    """Base class: ``texts (list of str | None) -> Condition`` at width ``output_dim``.

    ``None`` or an empty string gives an all-masked row (the null condition for that item).
    """

    kind = "base"
    output_dim: int

    def forward(self, texts: Sequence[str | None]) -> Condition:  # pragma: no cover - abstract
        raise NotImplementedError

    def null(self, batch_size: int) -> Condition:
        """A null condition for ``batch_size`` rows: one masked zero position each."""
        p = next(self.parameters())
        return Condition(torch.zeros(batch_size, 1, self.output_dim, device=p.device, dtype=p.dtype),
                         torch.zeros(batch_size, 1, dtype=torch.long, device=p.device))

    def config(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError


# --------------------------------------------------------------------------------------------------
# Lookup table


_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|\d+(?:\.\d+)?", re.UNICODE)
_WORD_SHARP = re.compile(r"[^\W_]+(?:['’][^\W_]+)*#?|\d+(?:\.\d+)?", re.UNICODE)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def split_words(text: str, keep_sharps: bool = False) -> list[str]:
    """Lower-cased word tokens: letters/digits runs, punctuation dropped (``"Lo-fi, 90 BPM!"`` ->
    ``["lo", "fi", "90", "bpm"]``).

    ``keep_sharps``: a ``#`` (or ``♯``) right after a word stays part of it, so the keys ``C#`` and
    ``C`` are different words (``"C# minor"`` -> ``["c#", "minor"]``; without it ``["c", "minor"]``).
    """
    if keep_sharps:
        return _WORD_SHARP.findall(text.lower().replace("♯", "#"))
    return _WORD.findall(text.lower())


def build_vocabulary(corpus: Iterable[str], min_count: int = 1, max_size: int | None = None,
                     keep_sharps: bool = False, numbers: bool = False) -> list[str]:
    """Words of ``corpus`` seen at least ``min_count`` times, most frequent first (ties sorted),
    at most ``max_size``; ``["<pad>", "<unk>"]`` come first (ids 0 and 1).

    ``numbers``: number words (``"128"``) are not entries of their own; ``"<num>"`` (id 2) stands for
    all of them (see ``LUTConditioner``'s ``number_features``)."""
    counts = Counter(w for text in corpus for w in split_words(text, keep_sharps)
                     if not (numbers and _NUMBER.fullmatch(w)))
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    head = ["<pad>", "<unk>", NUM_WORD] if numbers else ["<pad>", "<unk>"]
    if max_size is not None:
        words = words[: max(0, max_size - len(head))]
    return [*head, *words]


def number_features(values: torch.Tensor, size: int) -> torch.Tensor:
    """Fixed features of positive numbers on a log scale: ``values [...]`` -> ``[..., 2 * size]``.

    ``u = log2(value)``; features ``sin(w_j u), cos(w_j u)`` with ``w_j = 2 pi 2**j / 8`` for
    ``j < size``: periods of 8, 4, 2, 1, 1/2 ... octaves, so close tempos (120 and 124 BPM) get close
    features and a learned projection can interpolate between numbers it saw rarely. Values <= 0 use
    ``u = 0``.
    """
    u = torch.log2(values.clamp_min(1.0))
    freqs = 2 * torch.pi * 2.0 ** torch.arange(size, dtype=u.dtype, device=u.device) / 8
    angles = u[..., None] * freqs
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class LUTConditioner(TextConditioner):
    """Whitespace words -> learned embeddings ``[B, L, dim]`` -> linear projection to ``output_dim``.

    Words not in ``vocabulary`` map to ``<unk>`` (id 1); ``<pad>`` (id 0) fills short rows and is
    masked. ``max_length`` words are kept at most. ``keep_sharps`` chooses the word splitting of
    :func:`split_words` (saved in the config; older configs without it split sharps off).

    ``number_features`` (0 = off): every number word (a BPM such as ``"128"``) is looked up as
    ``"<num>"`` and gets ``number_proj(number_features(value))`` added to its embedding, so the value
    reaches the LM as a quantity on a log scale instead of as one rare word per value. The vocabulary
    must then hold ``"<num>"`` (``build_vocabulary(..., numbers=True)``).
    """

    kind = "lut"

    def __init__(self, vocabulary: Sequence[str], dim: int, output_dim: int, max_length: int = 64,
                 keep_sharps: bool = False, number_features: int = 0) -> None:
        super().__init__()
        vocabulary = list(vocabulary)
        if vocabulary[:2] != ["<pad>", "<unk>"]:
            raise ValueError(f"vocabulary must start with '<pad>', '<unk>' (got {vocabulary[:2]}); "
                             f"build it with build_vocabulary()")
        if len(set(vocabulary)) != len(vocabulary):
            raise ValueError("vocabulary has duplicate words")
        if dim <= 0 or output_dim <= 0 or max_length <= 0:
            raise ValueError(f"dim ({dim}), output_dim ({output_dim}) and max_length ({max_length}) "
                             f"must be positive")
        self.vocabulary = vocabulary
        self.index = {w: i for i, w in enumerate(vocabulary)}
        self.dim, self.output_dim, self.max_length = int(dim), int(output_dim), int(max_length)
        self.keep_sharps = bool(keep_sharps)
        self.number_features = int(number_features)
        if self.number_features < 0:
            raise ValueError(f"number_features must be >= 0 (0 = off), got {number_features}")
        if self.number_features and NUM_WORD not in self.index:
            raise ValueError(f"number_features needs {NUM_WORD!r} in the vocabulary; "
                             f"build it with build_vocabulary(..., numbers=True)")
        self.embed = nn.Embedding(len(vocabulary), dim)
        self.number_proj = nn.Linear(2 * self.number_features, dim) if self.number_features else None
        self.output_proj = nn.Linear(dim, output_dim)

    @classmethod
    def from_corpus(cls, corpus: Iterable[str], dim: int, output_dim: int, min_count: int = 1,
                    max_size: int | None = None, max_length: int = 64, keep_sharps: bool = False,
                    number_features: int = 0) -> LUTConditioner:
        vocabulary = build_vocabulary(corpus, min_count, max_size, keep_sharps, numbers=number_features > 0)
        return cls(vocabulary, dim, output_dim, max_length, keep_sharps, number_features)

    def _word_id(self, word: str) -> tuple[int, float]:
        if self.number_features and _NUMBER.fullmatch(word):
            return self.index[NUM_WORD], float(word)
        return self.index.get(word, UNK_ID), 0.0

    def tokenize_values(self, texts: Sequence[str | None]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``texts`` -> ``(ids [B, L] long, mask [B, L] long, values [B, L] float)``; ``L >= 1``.

        ``values`` holds each number word's value (0 elsewhere, and everywhere when number features
        are off)."""
        rows = [[self._word_id(w) for w in split_words(t or "", self.keep_sharps)][: self.max_length]
                for t in check_texts(texts)]
        length = max(1, max(len(r) for r in rows))
        ids = torch.full((len(rows), length), PAD_ID, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        values = torch.zeros((len(rows), length), dtype=torch.float32)
        for i, r in enumerate(rows):
            if r:
                ids[i, : len(r)] = torch.tensor([w for w, _ in r], dtype=torch.long)
                values[i, : len(r)] = torch.tensor([v for _, v in r], dtype=torch.float32)
            mask[i, : len(r)] = 1
        device = self.embed.weight.device
        return ids.to(device), mask.to(device), values.to(device)

    def tokenize(self, texts: Sequence[str | None]) -> tuple[torch.Tensor, torch.Tensor]:
        """``texts`` -> ``(ids [B, L] long, mask [B, L] long)``; ``L >= 1``."""
        ids, mask, _ = self.tokenize_values(texts)
        return ids, mask

    def forward(self, texts: Sequence[str | None]) -> Condition:
        ids, mask, values = self.tokenize_values(texts)
        x = self.embed(ids)
        if self.number_proj is not None:
            is_number = (ids == self.index[NUM_WORD])[..., None].to(x.dtype)
            x = x + self.number_proj(number_features(values, self.number_features).to(x.dtype)) * is_number
        embeds = self.output_proj(x) * mask[..., None].to(self.embed.weight.dtype)
        return Condition(embeds, mask)

    def config(self) -> dict[str, Any]:
        config = {"type": self.kind, "vocabulary": self.vocabulary, "dim": self.dim,
                  "output_dim": self.output_dim, "max_length": self.max_length}
        # Options are written only when on, so configs written before them read the same.
        if self.keep_sharps:
            config["keep_sharps"] = True
        if self.number_features:
            config["number_features"] = self.number_features
        return config
