"""The compression model (EnCodec-style codec): waveform <-> discrete codes.

``CompressionModel`` = SEANet encoder -> residual vector quantizer -> SEANet decoder.

- ``encode(wav [B, C, T]) -> codes [B, K, F]`` with ``F = ceil(T / hop_length)`` (int64 in
  ``[0, cardinality)``);
- ``decode(codes [B, K, F]) -> wav [B, C, F * hop_length]`` (pass ``length=T`` to trim to the input
  length); ``K`` may be any number from 1 to ``total_codebooks`` (fewer codebooks = lower bit rate);
- ``encode_latents(wav) -> [B, D, F]``: the continuous latents before quantization (used as an
  embedding backbone by the metrics); ``decode_latents(codes) -> [B, D, F]``: quantized latents.

Input rules (each a ``ValueError`` that names the value and what was expected): audio is a float
tensor ``[B, C, T]`` with ``C == channels``, ``T >= 1`` and finite values. ``sample_rate`` is an
argument of ``encode``/``encode_latents``: left out, the audio is taken to be at the model's rate;
given and different from it, the audio is resampled (julius) to the model's rate first. Channels are
never mixed implicitly.

Stereo (as MusicGen's stereo models): ``StereoCompressionModel`` encodes left and right with the
same mono codec and interleaves their codebooks as ``[L0, R0, L1, R1, ...]`` (audiocraft's
``InterleaveStereoCompressionModel`` with ``per_timestep=False``), so ``num_codebooks`` is ``2 K``.
``CompressionModel.from_pretrained(path, stereo=True)`` returns it.

Not supported (clear ``NotImplementedError`` when a checkpoint asks for it): input renormalisation
(``normalize``/``renormalize``, used by the 48 kHz EnCodec, not by MusicGen) and chunked encoding.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from musicgen.models.codec_config import CodecConfig, CodecParts, musicgen_32khz_config, tiny_config
from musicgen.modules.audio import resample
from musicgen.modules.rvq import ResidualVectorQuantizer
from musicgen.modules.seanet import SEANetDecoder, SEANetEncoder
from musicgen.modules.seanet_fast import seanet_inference

__all__ = ["CodecConfig", "CodecOutput", "CodecParts", "CompressionModel", "StereoCompressionModel",
           "check_audio", "check_codes", "musicgen_32khz_config", "tiny_config"]

@dataclass
class CodecOutput:
    """What ``CompressionModel.forward`` returns (training and evaluation)."""

    audio: torch.Tensor  # [B, C, T] reconstruction, trimmed to the input length
    codes: torch.Tensor  # [B, K, F]
    latents: torch.Tensor  # [B, D, F] quantized latents (straight-through in training)
    commitment_loss: torch.Tensor  # scalar
    bandwidth_kbps: float


def check_audio(wav: torch.Tensor, channels: int, what: str = "wav") -> None:
    """Raise ``ValueError`` unless ``wav`` is a finite float ``[B, channels, T]`` tensor with ``T >= 1``."""
    if not isinstance(wav, torch.Tensor):
        raise ValueError(f"{what} must be a torch.Tensor [B, C, T], got {type(wav).__name__}")
    if wav.dim() != 3:
        raise ValueError(f"{what} must have shape [B, C, T], got {tuple(wav.shape)}")
    if not wav.is_floating_point():
        raise ValueError(f"{what} must be floating point audio, got dtype {wav.dtype}")
    if wav.shape[1] != channels:
        raise ValueError(
            f"{what} has {wav.shape[1]} channels, this codec expects {channels} "
            f"(shape [B, C, T] = {tuple(wav.shape)})"
        )
    if wav.shape[0] == 0 or wav.shape[-1] == 0:
        raise ValueError(f"{what} is empty (shape {tuple(wav.shape)}); expected at least one sample")
    if not torch.isfinite(wav).all():
        raise ValueError(f"{what} contains NaN or infinite samples")


def check_codes(codes: torch.Tensor, total_codebooks: int, cardinality: int, what: str = "codes") -> None:
    """Raise ``ValueError`` unless ``codes`` is an integer ``[B, K, F]`` tensor with valid K and values."""
    if not isinstance(codes, torch.Tensor) or codes.dim() != 3:
        shape = tuple(codes.shape) if isinstance(codes, torch.Tensor) else type(codes).__name__
        raise ValueError(f"{what} must be a tensor [B, K, F], got {shape}")
    if codes.is_floating_point() or codes.is_complex() or codes.dtype == torch.bool:
        raise ValueError(f"{what} must be integer, got dtype {codes.dtype}")
    if not 1 <= codes.shape[1] <= total_codebooks:
        raise ValueError(f"{what} have K={codes.shape[1]} codebooks, expected 1..{total_codebooks}")
    if codes.shape[0] == 0 or codes.shape[-1] == 0:
        raise ValueError(f"{what} are empty (shape {tuple(codes.shape)})")
    lo, hi = int(codes.min()), int(codes.max())
    if lo < 0 or hi >= cardinality:
        raise ValueError(f"{what} hold values in [{lo}, {hi}], expected [0, {cardinality - 1}]")


class CompressionModel(nn.Module):
    """EnCodec-style codec (mono or multichannel as configured). See the module docstring."""

    def __init__(self, config: CodecConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or CodecConfig()
        seanet = dict(
            channels=config.channels,
            dimension=config.dimension,
            n_filters=config.n_filters,
            ratios=config.ratios,
            residual_layers=config.residual_layers,
            kernel_size=config.kernel_size,
            last_kernel_size=config.last_kernel_size,
            residual_kernel_size=config.residual_kernel_size,
            dilation_base=config.dilation_base,
            compress=config.compress,
            lstm_layers=config.lstm_layers,
            causal=config.causal,
            pad_mode=config.pad_mode,
            true_skip=config.true_skip,
            norm=config.norm,
        )
        self.encoder = SEANetEncoder(**seanet)
        self.decoder = SEANetDecoder(**seanet, trim_right_ratio=config.trim_right_ratio)
        self.quantizer = ResidualVectorQuantizer(
            config.dimension,
            config.codebook_size,
            config.num_codebooks,
            q_dropout=config.q_dropout,
            decay=config.decay,
            kmeans_init=config.kmeans_init,
            kmeans_iters=config.kmeans_iters,
            threshold_ema_dead_code=config.threshold_ema_dead_code,
        )

    # -- properties -------------------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def channels(self) -> int:
        return self.config.channels

    @property
    def hop_length(self) -> int:
        return self.config.hop_length

    @property
    def frame_rate(self) -> float:
        return self.config.sample_rate / self.config.hop_length

    @property
    def cardinality(self) -> int:
        return self.config.codebook_size

    @property
    def num_codebooks(self) -> int:
        """Codebooks ``encode`` returns (settable with ``set_num_codebooks`` / ``set_bandwidth``)."""
        return self.quantizer.num_codebooks

    @property
    def total_codebooks(self) -> int:
        return self.quantizer.total_codebooks

    @property
    def dimension(self) -> int:
        return self.config.dimension

    def set_num_codebooks(self, n: int) -> None:
        self.quantizer.set_num_codebooks(n)

    def set_bandwidth(self, bandwidth_kbps: float) -> int:
        """Use as many codebooks as fit ``bandwidth_kbps``; returns that number."""
        n = self.quantizer.num_codebooks_for_bandwidth(bandwidth_kbps, self.frame_rate)
        self.set_num_codebooks(n)
        return n

    # -- inference --------------------------------------------------------------------------------
    def _prepare(self, wav: torch.Tensor, sample_rate: int | None) -> torch.Tensor:
        if sample_rate is not None and int(sample_rate) != self.sample_rate:
            if int(sample_rate) <= 0:
                raise ValueError(f"sample_rate must be positive, got {sample_rate}")
            check_audio(wav, self.channels)
            wav = resample(wav, int(sample_rate), self.sample_rate)
        check_audio(wav, self.channels)
        return wav

    def encode_latents(self, wav: torch.Tensor, sample_rate: int | None = None) -> torch.Tensor:
        """Waveform ``[B, C, T]`` -> continuous latents before quantization ``[B, D, ceil(T / hop)]``."""
        return self.encoder(self._prepare(wav, sample_rate))

    def encode(
        self, wav: torch.Tensor, sample_rate: int | None = None, num_codebooks: int | None = None
    ) -> torch.Tensor:
        """Waveform ``[B, C, T]`` -> codes ``[B, K, ceil(T / hop)]`` (int64)."""
        return self.quantizer.encode(self.encode_latents(wav, sample_rate), num_codebooks)

    def decode_latents(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, K, F]`` -> quantized latents ``[B, D, F]``."""
        check_codes(codes, self.total_codebooks, self.cardinality)
        return self.quantizer.decode(codes.long())

    def decode(self, codes: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """Codes ``[B, K, F]`` -> waveform ``[B, C, F * hop]`` (or its first ``length`` samples)."""
        latents = self.decode_latents(codes)
        if torch.is_grad_enabled() or latents.device.type != "cpu":
            wav = self.decoder(latents)
        else:  # inference on CPU: the same layers in channels-last layout (musicgen.modules.seanet_fast)
            wav = seanet_inference(self.decoder.layers, latents)
        return wav if length is None else wav[..., :length]

    # -- training ---------------------------------------------------------------------------------
    def forward(self, wav: torch.Tensor, num_codebooks: int | None = None) -> CodecOutput:
        """Encode, quantize (updating codebooks in training) and decode ``wav [B, C, T]``."""
        check_audio(wav, self.channels)
        latents = self.encoder(wav)
        q = self.quantizer(latents, self.frame_rate, num_codebooks)
        audio = self.decoder(q.quantized)[..., : wav.shape[-1]]
        return CodecOutput(audio, q.codes, q.quantized, q.commitment_loss, q.bandwidth_kbps)

    # -- files (formats: musicgen.checkpoints.codec_formats) --------------------------------------
    def save_pretrained(self, folder: str | os.PathLike[str], stereo: bool = False) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (our native format) into ``folder``."""
        from musicgen.checkpoints.codec_formats import save_codec

        return save_codec(self, folder, stereo=stereo)

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike[str],
        stereo: bool | None = None,
    ) -> CompressionModel | StereoCompressionModel:
        """Load a codec from a local folder/file or a hub id in the local HF cache (never downloads).

        Formats (see ``musicgen.checkpoints.codec_formats``): our native folder; a transformers
        ``EncodecModel`` folder (or a ``MusicgenForConditionalGeneration`` folder, whose
        ``audio_encoder`` is used); an audiocraft ``compression_state_dict.bin`` (file or folder holding
        it). ``stereo=True`` wraps the mono codec in ``StereoCompressionModel``; ``None`` follows the
        native file's flag (else mono). The model is returned in eval mode.
        """
        from musicgen.checkpoints.codec_formats import read_codec
        from musicgen.checkpoints.files import load_state_strict

        parts = read_codec(path)
        model = cls(parts.config)
        load_state_strict(model, parts.state, parts.source, "codec weights")
        model.eval()
        if stereo if stereo is not None else parts.stereo:
            return StereoCompressionModel(model)
        return model


def load_codec_state(model: CompressionModel, state: dict[str, torch.Tensor], source: str) -> None:
    """Deprecated alias of ``musicgen.checkpoints.files.load_state_strict`` (strict load, clear errors)."""
    from musicgen.checkpoints.files import load_state_strict

    warnings.warn("musicgen.models.codec.load_codec_state is deprecated: use "
                  "musicgen.checkpoints.files.load_state_strict", DeprecationWarning, stacklevel=2)
    load_state_strict(model, state, source, "codec weights")


class StereoCompressionModel(nn.Module):
    """Stereo through a mono codec: codes ``[B, 2K, F]`` interleaved as ``[L0, R0, L1, R1, ...]``."""

    def __init__(self, mono: CompressionModel) -> None:
        super().__init__()
        if mono.channels != 1:
            raise ValueError(
                f"StereoCompressionModel wraps a mono codec, got one with {mono.channels} channels"
            )
        self.model = mono

    sample_rate = property(lambda self: self.model.sample_rate)
    frame_rate = property(lambda self: self.model.frame_rate)
    cardinality = property(lambda self: self.model.cardinality)
    hop_length = property(lambda self: self.model.hop_length)
    dimension = property(lambda self: self.model.dimension)
    channels = property(lambda self: 2)
    num_codebooks = property(lambda self: 2 * self.model.num_codebooks)
    total_codebooks = property(lambda self: 2 * self.model.total_codebooks)
    config = property(lambda self: self.model.config)

    def set_num_codebooks(self, n: int) -> None:
        """Set the codebooks per channel (the interleaved total is ``2 n``)."""
        self.model.set_num_codebooks(n)

    def _split(self, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_audio(wav, 2)
        return wav[:, :1], wav[:, 1:]

    def encode_latents(self, wav: torch.Tensor, sample_rate: int | None = None) -> torch.Tensor:
        """``[B, 2, T]`` -> ``[B, 2 D, F]`` (left latents then right latents)."""
        left, right = self._split(wav)
        return torch.cat(
            [self.model.encode_latents(left, sample_rate), self.model.encode_latents(right, sample_rate)],
            dim=1,
        )

    def encode(
        self, wav: torch.Tensor, sample_rate: int | None = None, num_codebooks: int | None = None
    ) -> torch.Tensor:
        left, right = self._split(wav)
        cl = self.model.encode(left, sample_rate, num_codebooks)
        cr = self.model.encode(right, sample_rate, num_codebooks)
        return torch.stack([cl, cr], dim=2).flatten(1, 2)  # [B, K, 2, F] -> [B, 2K, F]

    def split_codes(self, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Interleaved ``[B, 2K, F]`` -> (left ``[B, K, F]``, right ``[B, K, F]``)."""
        if codes.dim() != 3 or codes.shape[1] % 2:
            raise ValueError(f"stereo codes must be [B, 2K, F] with an even K, got {tuple(codes.shape)}")
        return codes[:, 0::2], codes[:, 1::2]

    def decode(self, codes: torch.Tensor, length: int | None = None) -> torch.Tensor:
        left, right = self.split_codes(codes)
        return torch.cat([self.model.decode(left, length), self.model.decode(right, length)], dim=1)

    def save_pretrained(self, folder: str | os.PathLike[str]) -> Path:
        return self.model.save_pretrained(folder, stereo=True)
