"""CLAP embedding conditioner (audiocraft's ``CLAPEmbeddingConditioner``): a joint text/audio
embedding, quantised by a residual vector quantizer, projected to the LM width as one condition
position.

- Training: the embedding of the training audio (or, with probability ``text_p``, of its text);
  inference: the embedding of the description. Both live in the same CLAP space, so a model
  trained on audio embeddings can be prompted with text.
- The unit-norm embedding ``[B, dim]`` is quantised by ``ResidualVectorQuantizer`` (audiocraft:
  12 codebooks of 1024 entries over 512 dims, EMA updates, k-means init) - the bottleneck that
  narrows the gap between text and audio embeddings - then ``output_proj`` maps it to ``[B, 1, D]``.
- ``None`` rows (and the CFG null condition) are zeros with a zero mask.

The embedding model is any object with ``dim``, ``text_embedding(texts) -> [B, dim]`` and
``audio_embedding(wav [B, C, T], sample_rate) -> [B, dim]``. ``TransformersClapEmbedder`` wraps a
transformers ``ClapModel`` folder (e.g. laion/larger_clap_music converted, saved locally): no extra
package is needed. The laion_clap checkpoint files used by audiocraft are NOT read here (that
package pins numpy < 2); convert them to a transformers folder first (transformers'
``models/clap/convert_clap_original_pytorch_to_hf.py`` holds the key renames).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from musicgen.models.conditioners import Condition, check_texts
from musicgen.modules.audio import resample, to_mono


class TransformersClapEmbedder(nn.Module):
    """A frozen transformers ``ClapModel`` + tokenizer + feature extractor from a local folder."""

    def __init__(self, model: nn.Module, tokenizer: Any, feature_extractor: Any = None) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.feature_extractor = feature_extractor
        self.dim = int(model.config.projection_dim)

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> TransformersClapEmbedder:
        from transformers import ClapFeatureExtractor, ClapModel

        from musicgen.models.text_conditioners import check_encoder_folder, load_tokenizer

        folder = check_encoder_folder(folder, "CLAP model")
        model = ClapModel.from_pretrained(str(folder), local_files_only=True)
        fe = None
        if (folder / "preprocessor_config.json").is_file():
            fe = ClapFeatureExtractor.from_pretrained(str(folder), local_files_only=True)
        return cls(model, load_tokenizer(folder), fe)

    @torch.no_grad()
    def text_embedding(self, texts: Sequence[str]) -> torch.Tensor:
        tokens = self.tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
        device = next(self.model.parameters()).device
        out = self.model.get_text_features(input_ids=tokens["input_ids"].to(device),
                                           attention_mask=tokens["attention_mask"].to(device))
        return out.pooler_output if hasattr(out, "pooler_output") else out

    @torch.no_grad()
    def audio_embedding(self, wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
        if self.feature_extractor is None:
            raise FileNotFoundError("this CLAP folder has no preprocessor_config.json (the audio feature "
                                    "extractor): save it with ClapFeatureExtractor.save_pretrained")
        target = int(self.feature_extractor.sampling_rate)
        mono = resample(to_mono(wav.float())[:, 0], int(sample_rate), target)  # [B, T]
        feats = self.feature_extractor([m.cpu().numpy() for m in mono], sampling_rate=target,
                                       return_tensors="pt")
        device = next(self.model.parameters()).device
        out = self.model.get_audio_features(input_features=feats["input_features"].to(device),
                                            is_longer=feats.get("is_longer"))
        return out.pooler_output if hasattr(out, "pooler_output") else out


class CLAPConditioner(nn.Module):
    """Text or audio -> CLAP embedding -> RVQ -> ``Condition(embeds [B, 1, output_dim], mask [B, 1])``."""

    def __init__(self, embedder: Any, output_dim: int, num_codebooks: int = 12, codebook_size: int = 1024,
                 text_p: float = 0.0) -> None:
        super().__init__()
        try:
            from musicgen.modules.rvq import ResidualVectorQuantizer
        except ImportError as e:  # pragma: no cover - the codec's RVQ is part of the package
            raise ImportError("the CLAP conditioner needs musicgen.modules.rvq") from e
        self.embedder = embedder
        self.dim = int(embedder.dim)
        self.output_dim = int(output_dim)
        self.text_p = float(text_p)
        self.quantizer = ResidualVectorQuantizer(self.dim, codebook_size, num_codebooks)
        self.output_proj = nn.Linear(self.dim, output_dim)
        self.last_commitment_loss = torch.zeros(())

    def config(self) -> dict[str, Any]:
        raise NotImplementedError("saving a CLAP-conditioned MusicGen in our native format is not "
                                  "implemented yet (the CLAP folder path and the quantizer would be saved)")

    def quantize(self, embedding: torch.Tensor) -> torch.Tensor:
        """``[B, dim]`` -> quantised ``[B, dim]`` (codebooks updated and straight-through in training)."""
        q = self.quantizer(embedding[..., None], frame_rate=1.0)
        self.last_commitment_loss = q.commitment_loss
        return q.quantized[..., 0]

    def _condition(self, embedding: torch.Tensor, present: torch.Tensor) -> Condition:
        emb = self.quantize(embedding.to(self.output_proj.weight))
        out = self.output_proj(emb)[:, None] * present[:, None, None].to(emb.dtype)
        return Condition(out, present[:, None].long())

    def forward(self, texts: Sequence[str | None] | None = None, wavs: torch.Tensor | None = None,
                sample_rate: int | None = None) -> Condition:
        """Inference: ``texts``. Training: ``wavs [B, C, T]`` at ``sample_rate`` (each row uses its
        text instead with probability ``text_p`` when ``texts`` is given too)."""
        if texts is None and wavs is None:
            raise ValueError("give texts (inference) or wavs + sample_rate (training)")
        device = self.output_proj.weight.device
        if wavs is None:
            texts = check_texts(texts)
            present = torch.tensor([t is not None and bool(t.strip()) for t in texts], device=device)
            embedding = torch.zeros(len(texts), self.dim, device=device)
            idx = present.nonzero()[:, 0].tolist()
            if idx:
                embedding[idx] = self.embedder.text_embedding([texts[i] for i in idx]).to(device)
            return self._condition(embedding, present)
        if sample_rate is None:
            raise ValueError("wavs need their sample_rate")
        if wavs.dim() != 3:
            raise ValueError(f"wavs must be [B, C, T], got shape {tuple(wavs.shape)}")
        embedding = self.embedder.audio_embedding(wavs, int(sample_rate)).to(device)
        present = torch.ones(wavs.shape[0], dtype=torch.bool, device=device)
        if texts is not None and self.training and self.text_p > 0:
            texts = check_texts(texts)
            use_text = [i for i, t in enumerate(texts) if t and float(torch.rand(())) < self.text_p]
            if use_text:
                embedding[use_text] = self.embedder.text_embedding([texts[i] for i in use_text]).to(device)
        return self._condition(embedding, present)
