"""LAION CLAP (HTSAT-base audio tower, RoBERTa text tower) from the laion ``.pt`` checkpoint, run with
transformers' ``ClapModel``; our own audio front end.

Checkpoint (laion_clap 1.1.7 layout, e.g. ``music_audioset_epoch_15_esc_90.14.pt``): a dict with
``state_dict`` (keys prefixed ``module.``) plus ``epoch``/``optimizer`` and numpy scalars, read with
``weights_only=True`` and numpy's scalar classes allow-listed (never an unsafe load). Keys are renamed
to ``ClapModel``'s (``laion_to_transformers``) and the config is read off the tensor shapes
(``config_from_state_dict``: HTSAT-base gives patch embed 128, depths [2, 2, 12, 2], heads
[4, 8, 16, 32], hidden 1024; text RoBERTa-base with layer-norm eps 1e-5). Every model weight must be
present; the keys the original uses only for training or computes itself (its STFT/mel layers,
``tscam_conv``/``head``, the ``*_transform`` MLPs, attention masks) are ignored, anything else
unexpected is an error. When the checkpoint holds the original's mel matrix, it is compared with ours.

Audio front end (48 kHz mono, 10 s = 480000 samples): shorter clips are repeated
``int(480000 / n)`` times then zero-padded ("repeatpad"); longer clips are cropped deterministically
(``crop="center"`` by default, or ``"start"``; the original crops at random), recorded in the
protocol. Power STFT n_fft = win = 1024, hop 480, periodic Hann, centred with reflect padding; librosa
Slaney mel, 64 bands, 50-14000 Hz; ``10 log10(max(x, 1e-10))`` -> ``[1001, 64]``. This equals
transformers' ``ClapFeatureExtractor(frequency_min=50, truncation="rand_trunc", padding="repeatpad")``.

``embed`` returns the L2-normalised audio embedding ``[1, 512]``; ``embed_text`` the text embeddings
``[N, 512]`` (tokenizer from a local folder, padded to 77 tokens). CLAP score = mean cosine; the
logit scales are not used.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch

from bench.api import Embedder, Params
from bench.embedders.common import check_weight_files, local_file, torch_load_with_numpy, unwrap_state_dict

SAMPLE_RATE = 48000
MAX_SAMPLES = 480000
N_FFT = 1024
HOP = 480
N_MELS = 64
HOW_TO_GET = ("Download music_audioset_epoch_15_esc_90.14.pt from huggingface.co/lukewys/laion_clap "
              "and pass its path.")
TOKENIZER_HOW = ("The text tower needs a local RoBERTa tokenizer folder (roberta-base: on a machine with "
                 "network run `huggingface-cli download roberta-base`, or pass a folder path).")

#: original keys that ClapModel does not hold (computed by it, or training-only)
IGNORED_KEYS = re.compile(r"(spectrogram_extractor|logmel_extractor|tscam_conv|audio_branch\.head\.|"
                          r"_transform\.|attn_mask|position_ids|token_type_ids|relative_position_index)")
RENAMES = [("text_branch.", "text_model."), ("audio_branch.", "audio_model.audio_encoder."),
           (".attn.proj.", ".attention.output.dense."), (".attn.", ".attention.self."),
           (".mlp.fc1.", ".intermediate.dense."), (".mlp.fc2.", ".output.dense."),
           (".norm1.", ".layernorm_before."), (".norm2.", ".layernorm_after."), (".bn0.", ".batch_norm."),
           ("audio_projection.0.", "audio_projection.linear1."),
           ("audio_projection.2.", "audio_projection.linear2."),
           ("text_projection.0.", "text_projection.linear1."),
           ("text_projection.2.", "text_projection.linear2.")]


def laion_to_transformers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a laion CLAP state dict (``module.`` prefix allowed) to ``ClapModel`` keys; fused
    ``qkv`` is split in thirds; ignorable keys (``IGNORED_KEYS``) are dropped."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if IGNORED_KEYS.search(key):
            continue
        for old, new in RENAMES:
            key = key.replace(old, new)
        if ".attention.self.qkv." in key:
            for name, part in zip(("query", "key", "value"), value.chunk(3, dim=0)):
                out[key.replace(".qkv.", f".{name}.")] = part
        else:
            out[key] = value
    return out


def config_from_state_dict(state: dict[str, torch.Tensor]):
    """A ``ClapConfig`` whose sizes match a renamed state dict (heads of the text tower: 64 dims each)."""
    from transformers import ClapConfig

    enc = "audio_model.audio_encoder."
    n_stages = 1 + max(int(k.split(".")[3]) for k in state if k.startswith(enc + "layers."))
    depths, heads = [], []
    for i in range(n_stages):
        blocks = {int(k.split(".")[5]) for k in state if k.startswith(f"{enc}layers.{i}.blocks.")}
        depths.append(len(blocks))
        heads.append(state[f"{enc}layers.{i}.blocks.0.attention.self.relative_position_bias_table"].shape[1])
    window = int(round((state[f"{enc}layers.0.blocks.0.attention.self.relative_position_bias_table"].shape[0]
                        ** 0.5 + 1) / 2))
    words = state["text_model.embeddings.word_embeddings.weight"]
    text_layers = 1 + max(int(k.split(".")[3]) for k in state if k.startswith("text_model.encoder.layer."))
    audio_config = {"patch_embeds_hidden_size": state[enc + "patch_embed.proj.weight"].shape[0],
                    "depths": depths, "num_attention_heads": heads, "window_size": window,
                    "hidden_size": state["audio_projection.linear1.weight"].shape[1],
                    "num_mel_bins": state[enc + "batch_norm.weight"].shape[0]}
    emb = "text_model.embeddings."
    text_config = {"vocab_size": words.shape[0], "hidden_size": words.shape[1],
                   "num_hidden_layers": text_layers, "num_attention_heads": max(1, words.shape[1] // 64),
                   "intermediate_size": state[
                       "text_model.encoder.layer.0.intermediate.dense.weight"].shape[0],
                   "max_position_embeddings": state[emb + "position_embeddings.weight"].shape[0],
                   "type_vocab_size": state[emb + "token_type_embeddings.weight"].shape[0],
                   "layer_norm_eps": 1e-5, "pad_token_id": 1}
    return ClapConfig(audio_config=audio_config, text_config=text_config,
                      projection_dim=state["audio_projection.linear2.weight"].shape[0])


@functools.lru_cache(maxsize=2)
def clap_mel_filters() -> torch.Tensor:
    """librosa Slaney mel filters ``[64, 513]`` (50-14000 Hz at 48 kHz), float64."""
    import librosa

    return torch.from_numpy(librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=50.0,
                                                fmax=14000.0, htk=False, norm="slaney").astype(np.float64))


def clap_input_wav(wav: np.ndarray, crop: Literal["center", "start"] = "center") -> np.ndarray:
    """Mono ``[T]`` -> exactly 480000 samples: repeatpad when shorter, deterministic crop when longer."""
    x = np.asarray(wav, dtype=np.float32).reshape(-1)
    n = x.shape[0]
    if n == 0:
        raise ValueError("clap: empty clip")
    if n > MAX_SAMPLES:
        start = (n - MAX_SAMPLES) // 2 if crop == "center" else 0
        return x[start:start + MAX_SAMPLES]
    if n < MAX_SAMPLES:
        x = np.tile(x, MAX_SAMPLES // n)
        x = np.pad(x, (0, MAX_SAMPLES - x.shape[0]))
    return x


def clap_log_mel(wav: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Prepared 480000-sample clip ``[480000]`` (or clips ``[B, 480000]``) -> log mel ``[1001, 64]``
    (``[B, 1001, 64]``), dB, float32.

    ``dtype`` is the precision of the STFT and mel arithmetic; float32 (the default) stays within
    float tolerance of float64 (``benchmarks/front_end_precision.py``, the tests)."""
    x = torch.from_numpy(np.asarray(wav)).to(dtype)
    spec = torch.stft(x, N_FFT, hop_length=HOP, window=torch.hann_window(N_FFT, dtype=dtype),
                      center=True, pad_mode="reflect", return_complex=True)  # [(B,) 513, frames]
    power = spec.real ** 2 + spec.imag ** 2
    mel = torch.matmul(clap_mel_filters().to(dtype), power)
    return (10.0 * torch.log10(torch.clamp(mel, min=1e-10))).transpose(-1, -2).float()


class ClapParams(Params):
    checkpoint: str = "music_audioset_epoch_15_esc_90.14.pt"
    tokenizer: str = "roberta-base"
    crop: Literal["center", "start"] = "center"
    max_text_tokens: int = 77


CLIP_BATCH = 8  # 10 s windows per network call


class ClapEmbedder(Embedder):
    """LAION CLAP audio embeddings ``[1, 512]`` (48 kHz, one 10 s window) and text embeddings."""

    name: ClassVar[str] = "clap"
    version: ClassVar[str] = "1"
    sample_rate: ClassVar[int] = SAMPLE_RATE
    dim: ClassVar[int] = 512
    Params = ClapParams

    def __init__(self, params: ClapParams | None = None) -> None:
        super().__init__(params)
        self.model = None
        self.tokenizer = None

    def check(self) -> list[str]:
        return check_weight_files(self, ("CLAP checkpoint", (r"audio_branch\.patch_embed\.proj\.weight$",
                                                             r"text_branch\.embeddings\.word_embeddings\.weight$",
                                                             r"audio_projection\.0\.weight$"), HOW_TO_GET))

    def weight_files(self) -> list[Path]:
        return [local_file(self.params.checkpoint, "CLAP checkpoint", HOW_TO_GET)]

    def load(self, device: str = "cpu") -> None:
        from transformers import ClapModel

        (path,) = self.weight_files()
        raw = unwrap_state_dict(torch_load_with_numpy(path), keys=("state_dict",))
        mel_key = "audio_branch.logmel_extractor.melW"
        mel_w = raw.get("module." + mel_key, raw.get(mel_key))
        if mel_w is not None and not torch.allclose(mel_w.double().T, clap_mel_filters(), atol=1e-6):
            raise ValueError(f"{path}: the checkpoint's mel filters differ from the front end's "
                             "(expected librosa Slaney, 64 bands, 50-14000 Hz at 48 kHz)")
        state = laion_to_transformers(raw)
        try:
            config = config_from_state_dict(state)
        except (KeyError, ValueError) as e:
            raise ValueError(f"{path}: not a laion CLAP HTSAT/RoBERTa checkpoint: missing [{e}]") from None
        with torch.device("meta"):
            model = ClapModel(config)
        expected = set(model.state_dict())
        computed = {k for k in expected if IGNORED_KEYS.search(k) or k.endswith("num_batches_tracked")}
        missing = sorted(expected - computed - set(state))
        unexpected = sorted(set(state) - expected)
        if missing or unexpected:
            raise ValueError(f"{path}: not a laion CLAP HTSAT/RoBERTa checkpoint: missing {missing[:8]} "
                             f"({len(missing)}), unexpected {unexpected[:8]} ({len(unexpected)})")
        model.to_empty(device="cpu")
        model.load_state_dict(state, strict=False)
        _recompute_buffers(model)
        self.model = model.eval().to(device)
        self.device = device

    def set_model(self, model, tokenizer=None) -> None:
        """Use an in-memory ``ClapModel`` (tests, benchmarks); the digest becomes ``"in-memory"``."""
        self.model = model.eval()
        self.use_in_memory()
        if tokenizer is not None:
            self.tokenizer = tokenizer

    def _load_tokenizer(self):
        if self.tokenizer is None:
            from transformers import AutoTokenizer

            from musicgen.checkpoints.files import MissingCheckpointFile, resolve_local

            try:
                folder = resolve_local(self.params.tokenizer)
            except MissingCheckpointFile as e:
                raise MissingCheckpointFile(f"CLAP tokenizer: {e} {TOKENIZER_HOW}") from None
            self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        return self.tokenizer

    def protocol(self) -> dict:
        return {**super().protocol(), "window_s": MAX_SAMPLES / SAMPLE_RATE,
                "shorter": "repeatpad", "longer": f"{self.params.crop} crop (deterministic)",
                "tokenizer": self.params.tokenizer, "text_tokens": self.params.max_text_tokens}

    def embed(self, wav: np.ndarray) -> np.ndarray:
        return self.embed_batch([wav])[0]

    @torch.inference_mode()
    def embed_batch(self, wavs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Every clip is one 10 s window: ``CLIP_BATCH`` windows per network call."""
        if self.model is None:
            raise RuntimeError("clap: call load() before embed()")
        prepared = [clap_input_wav(w, self.params.crop) for w in wavs]
        out = []
        for k in range(0, len(prepared), CLIP_BATCH):
            mel = clap_log_mel(np.stack(prepared[k:k + CLIP_BATCH]))[:, None].to(self.device)
            pooled = self.model.get_audio_features(input_features=mel).pooler_output
            out += list(pooled.float().cpu()[:, None])
        return [o.numpy() for o in out]

    @torch.inference_mode()
    def embed_text(self, texts: list[str]) -> np.ndarray:
        """Texts -> L2-normalised text embeddings ``[N, 512]``."""
        if self.model is None:
            raise RuntimeError("clap: call load() before embed_text()")
        tok = self._load_tokenizer()(list(texts), padding="max_length", truncation=True,
                                     max_length=self.params.max_text_tokens, return_tensors="pt")
        out = self.model.get_text_features(input_ids=tok["input_ids"].to(self.device),
                                           attention_mask=tok["attention_mask"].to(self.device)).pooler_output
        return out.float().cpu().numpy()


def _recompute_buffers(model) -> None:
    """Deterministic buffers ClapModel computes itself (left uninitialised by ``to_empty``)."""
    from transformers.models.clap.modeling_clap import ClapAudioSelfAttention, ClapTextEmbeddings

    for m in model.modules():
        if isinstance(m, ClapAudioSelfAttention):
            m.relative_position_index = m.create_relative_position_index()
        elif isinstance(m, ClapTextEmbeddings):
            n = m.position_embeddings.num_embeddings
            m.position_ids = torch.arange(n).expand((1, -1)).clone()
            m.token_type_ids = torch.zeros((1, n), dtype=torch.long)
        elif isinstance(m, torch.nn.BatchNorm2d) and m.num_batches_tracked is not None:
            m.num_batches_tracked = torch.zeros((), dtype=torch.long)
