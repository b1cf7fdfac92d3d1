"""EnCodec pre-quantisation latents as an extra FAD backbone.

Runs transformers' ``EncodecModel`` encoder (``version`` ``1-transformers``), loaded from a local
folder or a hub id present in the local Hugging Face cache (default ``facebook/encodec_32khz``: 32 kHz
mono, hop 640, 50 Hz, 128-d). It returns the encoder output before the residual quantiser, one 128-d
frame per 20 ms: ``[F, D]``. musicgen's own codec computes the same latents
(``CompressionModel.encode_latents``); moving this embedder onto it would be a new ``version``.
A clip shorter than one hop (640 samples at 32 kHz) is an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from bench.api import Embedder, Params
from bench.embedders.common import check_weight_files, require_length
from musicgen.checkpoints.files import MissingCheckpointFile, looks_like_hub_id, require_file, resolve_local

HOW_TO_GET = ("On a machine with network run `huggingface-cli download facebook/encodec_32khz` "
              "(or copy its folder here) and pass the folder or hub id.")


CLIP_BATCH = 8  # clips of one length per encoder call


class EncodecParams(Params):
    model: str = "facebook/encodec_32khz"


class EncodecEmbedder(Embedder):
    """Pre-quantisation EnCodec latents ``[F, 128]`` at 50 Hz (32 kHz input)."""

    name: ClassVar[str] = "encodec"
    version: ClassVar[str] = "1-transformers"
    sample_rate: ClassVar[int] = 32000
    dim: ClassVar[int] = 128
    Params = EncodecParams

    def __init__(self, params: EncodecParams | None = None) -> None:
        super().__init__(params)
        self.model = None
        self.hop = 640

    def _folder(self):
        try:
            folder = resolve_local(self.params.model)
        except MissingCheckpointFile as e:  # a hub id's error already says how to get it
            hint = "" if looks_like_hub_id(self.params.model) else f" {HOW_TO_GET}"
            raise MissingCheckpointFile(f"EnCodec model: {e}{hint}") from None
        require_file(folder, "config.json", HOW_TO_GET)
        return folder

    def check(self) -> list[str]:
        names = (r"^quantizer\.layers\.0\.codebook\.embed$", r"^decoder\.layers\.")
        try:
            n = len(self.weight_files())
        except FileNotFoundError as e:
            return [str(e)]
        return check_weight_files(self, *[("EnCodec weights", names, HOW_TO_GET)] * n)

    def weight_files(self) -> list[Path]:
        folder = self._folder()
        files = [p for p in sorted(folder.iterdir()) if p.suffix in (".safetensors", ".bin")]
        if not files:
            raise MissingCheckpointFile(f"EnCodec model folder {folder} holds no weights. {HOW_TO_GET}")
        return files

    def load(self, device: str = "cpu") -> None:
        from transformers import EncodecModel

        model = EncodecModel.from_pretrained(str(self._folder()), local_files_only=True)
        self.set_model(model)
        self.in_memory = False  # loaded from weight_files(): their digest
        self.model = self.model.to(device)
        self.device = device

    def set_model(self, model) -> None:
        """Use an in-memory ``EncodecModel`` (tests, benchmarks); the digest becomes ``"in-memory"``."""
        if model.config.audio_channels != 1 or model.config.sampling_rate != self.sample_rate:
            raise ValueError(f"encodec embedder expects a mono {self.sample_rate} Hz model; got "
                             f"{model.config.audio_channels} channels at {model.config.sampling_rate} Hz")
        self.model = model.eval()
        self.use_in_memory()
        self.hop = int(np.prod(model.config.upsampling_ratios))

    def protocol(self) -> dict:
        return {**super().protocol(), "latents": "encoder output before quantisation", "hop": self.hop}

    def embed(self, wav: np.ndarray) -> np.ndarray:
        return self.embed_batch([wav])[0]

    @torch.inference_mode()
    def embed_batch(self, wavs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Clips of the same length share an encoder call (no padding: it would change the edges)."""
        if self.model is None:
            raise RuntimeError("encodec: call load() before embed()")
        xs = [require_length(w, self.hop, self.name, self.sample_rate) for w in wavs]
        out: dict[int, np.ndarray] = {}
        for n in sorted({len(x) for x in xs}):
            same = [i for i, x in enumerate(xs) if len(x) == n]
            for k in range(0, len(same), CLIP_BATCH):
                idx = same[k:k + CLIP_BATCH]
                batch = torch.from_numpy(np.stack([xs[i] for i in idx]))[:, None].to(self.device)
                latents = self.model.encoder(batch).transpose(1, 2).float().cpu()  # [B, F, D]
                out.update({i: lat.numpy() for i, lat in zip(idx, latents)})
        return [out[i] for i in range(len(xs))]
