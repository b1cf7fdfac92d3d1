"""Text preprocessing for training: metadata merge, description dropout, word dropout, CFG dropout.

Paper values (Copet et al. 2023, section 4 / appendix): metadata merged into the description with
probability 0.25, description dropped with 0.5, word dropout 0.3; conditions dropped for
classifier-free guidance (audiocraft's ``classifier_free_guidance.training_dropout`` = 0.2).

The order follows audiocraft's music dataset:

1. with probability ``merge_metadata_p`` the metadata fields that are present (key, bpm, genre,
   instrument, mood, ...) are written as ``"field: value"`` pairs in a random order, each field kept
   with probability ``keep_field_p``, joined with ``". "``; in that case the description itself is
   dropped with probability ``drop_description_p`` (only the metadata text is left);
2. the description and the metadata text are joined as ``"description. key: C major. bpm: 120"``;
3. word dropout: each whitespace-separated word is removed with probability ``word_dropout_p``;
4. condition dropout for CFG: with probability ``cfg_dropout_p`` the whole text becomes ``None``
   (the null condition).

Every random choice comes from a ``random.Random(seed)`` owned by the ``TextAugmenter``, so the same
seed gives the same texts. ``TextAugmenter(...).eval_mode()`` turns everything off.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

METADATA_FIELDS = ("key", "bpm", "genre", "instrument", "mood", "moods", "keywords")


def format_value(value: Any) -> str | None:
    """A metadata value as text: lists joined with ``", "``, floats without a trailing ``.0``."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        parts = [format_value(v) for v in value]
        text = ", ".join(p for p in parts if p)
        return text or None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text or None


@dataclass
class TextAugmenter:
    """Seeded text augmentation for training; probabilities are in ``[0, 1]``."""

    merge_metadata_p: float = 0.25
    drop_description_p: float = 0.5
    word_dropout_p: float = 0.3
    cfg_dropout_p: float = 0.2
    keep_field_p: float = 1.0
    fields: tuple[str, ...] = METADATA_FIELDS
    seed: int = 0
    rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("merge_metadata_p", "drop_description_p", "word_dropout_p", "cfg_dropout_p",
                     "keep_field_p"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value}")
        self.rng = random.Random(self.seed)

    def eval_mode(self) -> TextAugmenter:
        """A copy that changes nothing (inference): all probabilities 0."""
        return replace(self, merge_metadata_p=0.0, drop_description_p=0.0, word_dropout_p=0.0,
                       cfg_dropout_p=0.0)

    def metadata_text(self, metadata: Mapping[str, Any]) -> str:
        """The present metadata fields as ``"key: C major. bpm: 120"`` (shuffled, fields kept with
        ``keep_field_p``)."""
        pairs = []
        for name in self.fields:
            value = format_value(metadata.get(name))
            if value is not None and self.rng.random() < self.keep_field_p:
                pairs.append(f"{name}: {value}")
        self.rng.shuffle(pairs)
        return ". ".join(pairs)

    def merge(self, description: str | None, metadata: Mapping[str, Any] | None) -> str | None:
        """Steps 1-2: the description, possibly merged with metadata, possibly dropped."""
        description = description.strip() if description and description.strip() else None
        if metadata and self.rng.random() < self.merge_metadata_p:
            meta = self.metadata_text(metadata)
            if self.rng.random() < self.drop_description_p:
                description = None
            if meta:
                description = meta if description is None else f"{description.rstrip('.')}. {meta}"
        return description

    def word_dropout(self, text: str | None) -> str | None:
        """Step 3: drop each word with ``word_dropout_p``; ``None`` if no word is left."""
        if text is None or self.word_dropout_p == 0.0:
            return text
        kept = [w for w in text.split() if self.rng.random() >= self.word_dropout_p]
        return " ".join(kept) if kept else None

    def __call__(self, description: str | None, metadata: Mapping[str, Any] | None = None) -> str | None:
        """One training text (``None`` = the null condition)."""
        text = self.word_dropout(self.merge(description, metadata))
        if self.cfg_dropout_p > 0.0 and self.rng.random() < self.cfg_dropout_p:
            return None
        return text

    def batch(self, descriptions: Sequence[str | None],
              metadata: Sequence[Mapping[str, Any] | None] | None = None) -> list[str | None]:
        if metadata is not None and len(metadata) != len(descriptions):
            raise ValueError(f"{len(descriptions)} descriptions but {len(metadata)} metadata entries")
        metas = metadata if metadata is not None else [None] * len(descriptions)
        return [self(d, m) for d, m in zip(descriptions, metas)]


def dropout_conditions(texts: Sequence[str | None], p: float, rng: random.Random) -> list[str | None]:
    """Condition dropout for CFG alone: each text becomes ``None`` with probability ``p``."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"condition dropout must be a probability in [0, 1], got {p}")
    return [None if rng.random() < p else t for t in texts]
