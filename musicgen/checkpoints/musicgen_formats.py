"""Whole MusicGen checkpoints in three formats -> ``MusicGenParts`` (LM, codec, conditioners and the
settings that join them); ``MusicGen.from_pretrained`` / ``MusicGen.from_parts`` assemble the pipeline
(this module never imports it). ``read_musicgen`` finds the format.

1. Our native folder::

       musicgen.json        {"format": "musicgen-bench", "version": 1, "pattern": "delay", ...}
       lm/                  lm_config.json + lm.safetensors           (lm_native)
       codec/               config.json + model.safetensors           (codec_formats, native)
       text/                text_conditioner.json + .safetensors [+ encoder/]   (text_native)
       melody.safetensors   the chroma projection (melody models only)

2. A transformers ``MusicgenForConditionalGeneration`` / ``MusicgenMelodyForConditionalGeneration``
   folder: ``config.json`` + ``model.safetensors`` + the T5 tokenizer files (``tokenizer.json`` or
   ``spiece.model``) saved beside them, as on the hub. The T5 encoder comes from the
   ``text_encoder.*`` weights; transformers' semantics are kept (cross-attention masks padded text).

3. An audiocraft folder: ``state_dict.bin`` + ``compression_state_dict.bin`` and the T5 encoder its
   ``xp.cfg`` names, found locally by ``musicgen.checkpoints.text_encoder`` (``text_encoder=PATH``,
   ``t5/`` inside the folder, or the local HF cache under any spelling of the name).
   audiocraft's semantics are kept: the text projection is applied in the conditioner and padded text
   positions are attended as zero vectors (no cross-attention mask). Melody checkpoints (a
   ``self_wav`` chroma conditioner) load too.

A missing file raises ``MissingCheckpointFile`` naming it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from musicgen.checkpoints.files import (
    MissingCheckpointFile,
    atomic_write_json,
    load_state_dict,
    read_json,
    require_file,
    resolve_local,
    state_dict_digest,
)
from musicgen.models.codec import CompressionModel
from musicgen.models.melody import ChromaConditioner
from musicgen.modules.patterns import get_pattern

if TYPE_CHECKING:
    from musicgen.models.musicgen import MusicGen

FORMAT, VERSION = "musicgen-bench", 1
CONFIG_NAME = "musicgen.json"
RELEASED_MAX_DURATION_S = 30.0


@dataclass
class MusicGenParts:
    """A MusicGen checkpoint as the readers return it; the arguments of ``MusicGen(...)``."""

    lm: nn.Module
    codec: nn.Module
    text_conditioner: nn.Module | None
    pattern: str | None = None  # a pattern name (``None``: delay, or stereo_delay for a stereo codec)
    melody: ChromaConditioner | None = None
    max_duration_s: float | None = None
    mask_cross_attention: bool = True  # transformers' semantics; audiocraft's is False
    name: str = ""
    two_step_cfg_coef: float | None = None  # audiocraft: the LM's own coefficient in the two-step path


def read_musicgen(path_or_id: str | Path, text_encoder: str | Path | None = None) -> MusicGenParts:
    """Detect the format of ``path_or_id`` and read it (see the module docstring).

    ``text_encoder`` (a folder or a locally cached hub id) overrides where an audiocraft checkpoint's
    T5 encoder is found; the other formats carry their encoder and refuse it."""
    folder = resolve_local(path_or_id)
    if folder.is_file():
        folder = folder.parent
    own = CONFIG_NAME if (folder / CONFIG_NAME).is_file() else "config.json"
    if text_encoder is not None and (folder / own).is_file():
        raise ValueError(f"text_encoder={str(text_encoder)!r}: only audiocraft checkpoints take their "
                         f"T5 encoder from elsewhere; {folder} ({own}) carries its own")
    if (folder / CONFIG_NAME).is_file():
        return read_native_musicgen(folder)
    if (folder / "config.json").is_file():
        return read_transformers_musicgen(folder)
    if (folder / "state_dict.bin").is_file():
        return read_audiocraft_musicgen(folder, text_encoder)
    present = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    raise MissingCheckpointFile(
        f"{str(folder)!r} is not a MusicGen checkpoint we know: expected {CONFIG_NAME} (our format), "
        f"config.json + model.safetensors (transformers) or state_dict.bin + compression_state_dict.bin "
        f"(audiocraft); the folder holds {present or 'nothing'}")


# --- native -------------------------------------------------------------------------------------

def save_musicgen(model: MusicGen, folder: str | Path, codec_ref: str | None = None) -> Path:
    """Write ``model`` in our native format. With ``codec_ref`` (a path or ``builtin:NAME`` whose
    codec has the very same weights) the folder records the reference instead of a ``codec/`` copy."""
    from safetensors.torch import save_file

    from musicgen.checkpoints.codec_formats import save_codec
    from musicgen.checkpoints.lm_native import save_lm
    from musicgen.checkpoints.text_native import save_text_conditioner

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_lm(model.lm, folder / "lm")
    codec = model.codec
    stereo = codec.channels == 2 and hasattr(codec, "model")
    mono = codec.model if stereo else codec
    if codec_ref is None:
        save_codec(mono, folder / "codec", stereo=False)
    else:
        ref = CompressionModel.from_pretrained(resolve_local(codec_ref))
        if state_dict_digest(ref.state_dict()) != state_dict_digest(mono.state_dict()):
            raise ValueError(f"codec_ref {codec_ref!r} has other weights than this model's codec; "
                             f"save without codec_ref to copy the codec")
    if model.text_conditioner is not None:
        save_text_conditioner(model.text_conditioner, folder / "text")
    if model.melody is not None:
        state = {k: v.detach().cpu().contiguous() for k, v in model.melody.output_proj.state_dict().items()}
        save_file(state, str(folder / "melody.safetensors"))
    doc = {"format": FORMAT, "version": VERSION, "name": model.name,
           "pattern": getattr(model.pattern, "name", "delay"),
           "max_duration_s": model.max_duration_s, "mask_cross_attention": model.mask_cross_attention,
           "stereo": stereo, "text": model.text_conditioner is not None, "codec": codec_ref,
           "melody": model.melody.config() if model.melody is not None else None,
           "two_step_cfg_coef": getattr(model, "two_step_cfg_coef", None)}
    atomic_write_json(folder / CONFIG_NAME, doc, sort_keys=False)
    return folder


def read_native_musicgen(folder: Path) -> MusicGenParts:
    from musicgen.checkpoints.lm_native import load_lm
    from musicgen.checkpoints.text_native import load_text_conditioner

    doc = read_json(folder / CONFIG_NAME)
    if doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise ValueError(f"{folder / CONFIG_NAME}: format {doc.get('format')!r} version "
                         f"{doc.get('version')!r}; expected {FORMAT!r} version {VERSION}")
    codec_ref = doc.get("codec")
    for sub in ("lm",) + (() if codec_ref else ("codec",)) + (("text",) if doc.get("text") else ()):
        if not (folder / sub).is_dir():
            raise MissingCheckpointFile(f"missing checkpoint folder {str(folder / sub)!r} "
                                        f"(written by MusicGen.save_pretrained)")
    lm = load_lm(folder / "lm")
    codec_folder = resolve_local(codec_ref) if codec_ref else folder / "codec"
    codec = CompressionModel.from_pretrained(codec_folder, stereo=bool(doc.get("stereo")))
    text = load_text_conditioner(folder / "text") if doc.get("text") else None
    melody = None
    if doc.get("melody"):
        melody = ChromaConditioner(**doc["melody"])
        state = load_state_dict(require_file(folder, "melody.safetensors"))
        melody.output_proj.load_state_dict(state)
    return MusicGenParts(lm, codec, text, doc.get("pattern"), melody, doc.get("max_duration_s"),
                         doc.get("mask_cross_attention", True), name=doc.get("name", folder.name),
                         two_step_cfg_coef=doc.get("two_step_cfg_coef"))


# --- transformers -------------------------------------------------------------------------------

def _read_prefixed(folder: Path, prefix: str) -> dict[str, torch.Tensor]:
    """The tensors under ``prefix`` (stripped) of a transformers folder's weights, read lazily."""
    from safetensors import safe_open

    files = [folder / "model.safetensors"]
    if not files[0].is_file():
        index = require_file(folder, "model.safetensors.index.json")
        files = sorted({folder / f for f in read_json(index)["weight_map"].values()})
    out = {}
    for f in files:
        with safe_open(str(require_file(f.parent, f.name)), framework="pt") as h:
            for key in h.keys():  # noqa: SIM118 - safe_open handles are not iterable
                if key.startswith(prefix):
                    out[key[len(prefix):]] = h.get_tensor(key)
    return out


def _tokenizer(folder: Path) -> Any:
    from musicgen.models.text_conditioners import load_tokenizer

    if not any((folder / n).is_file() for n in ("tokenizer.json", "spiece.model")):
        require_file(folder, "tokenizer.json", "The T5 tokenizer files (tokenizer.json or spiece.model, "
                     "tokenizer_config.json) are saved beside the transformers MusicGen weights on the hub; "
                     "copy them from the t5-base folder if they are missing.")
    return load_tokenizer(folder)


def read_transformers_musicgen(folder: Path) -> MusicGenParts:
    from transformers import T5Config, T5EncoderModel

    from musicgen.checkpoints.lm_transformers import load_transformers_lm
    from musicgen.models.text_conditioners import T5Conditioner

    config = read_json(require_file(folder, "config.json"))
    if config.get("model_type") not in ("musicgen", "musicgen_melody"):
        raise ValueError(f"{folder / 'config.json'}: model_type {config.get('model_type')!r}; expected "
                         f"'musicgen' or 'musicgen_melody'")
    melody = config["model_type"] == "musicgen_melody"
    lm, extras = load_transformers_lm(folder)
    stereo = int(config["decoder"].get("audio_channels", 1)) == 2
    codec = CompressionModel.from_pretrained(folder, stereo=stereo)
    text_cfg = config["text_encoder"]
    if text_cfg.get("model_type", "t5") != "t5":
        raise NotImplementedError(f"{folder / 'config.json'}: text encoder {text_cfg.get('model_type')!r} "
                                  f"(only T5 is supported)")
    encoder = T5EncoderModel(T5Config.from_dict(text_cfg))
    _load_encoder(encoder, _read_prefixed(folder, "text_encoder."), folder)
    dim = lm.config.dim
    text_dim = encoder.config.d_model
    project = melody and text_dim != dim
    text = T5Conditioner(encoder, _tokenizer(folder), output_dim=dim if project else None,
                         project=project, name_or_path=str(folder))
    chroma = None
    if melody:
        if project:
            _load_linear(text.output_proj, extras, "enc_to_dec_proj.", folder)
        chroma = ChromaConditioner(dim, num_chroma=int(config.get("num_chroma", 12)),
                                   chroma_length=int(config.get("chroma_length", 235)))
        _load_linear(chroma.output_proj, extras, "audio_enc_to_dec_proj.", folder)
    positions = int(config["decoder"].get("max_position_embeddings", 2048))
    pattern = "stereo_delay" if stereo else "delay"
    limit_s = _duration_limit(lm, codec, pattern, min(positions, lm.config.max_positions), chroma)
    return MusicGenParts(lm, codec, text, pattern, chroma, min(RELEASED_MAX_DURATION_S, limit_s),
                         mask_cross_attention=True, name=folder.name)


def _duration_limit(lm: nn.Module, codec: nn.Module, pattern: str, positions: int,
                    chroma: ChromaConditioner | None) -> float:
    """Seconds of one window within ``positions``, less the melody prefix and the delay pattern's tail
    (its ``max_delay`` steps after the last frame); the released formats use delay patterns."""
    tail = get_pattern(pattern, num_codebooks=lm.config.num_codebooks).max_delay
    frames = positions - tail - (chroma.chroma_length if chroma is not None else 0)
    if frames <= 0:
        return 1.0 / codec.frame_rate
    return frames / codec.frame_rate


def _load_encoder(encoder: nn.Module, state: dict[str, torch.Tensor], folder: Path) -> None:
    own = encoder.state_dict()
    if not state:
        raise ValueError(f"{folder}: no 'text_encoder.*' weights in the checkpoint")
    missing = sorted(k for k in set(own) - set(state) if k != "encoder.embed_tokens.weight")
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(f"{folder}: text encoder weights do not match its config (missing {missing[:8]}, "
                         f"unexpected {unexpected[:8]})")
    encoder.load_state_dict(state, strict=False)
    encoder.eval()


def _load_linear(linear: nn.Linear, extras: dict[str, torch.Tensor], prefix: str, source: Path) -> None:
    state = {k[len(prefix):]: v for k, v in extras.items() if k.startswith(prefix)}
    if set(state) != {"weight", "bias"}:
        raise ValueError(f"{source}: missing {prefix}weight/bias in the checkpoint "
                         f"(found {sorted(extras)[:8]})")
    linear.load_state_dict(state)


# --- audiocraft ---------------------------------------------------------------------------------

SELF_WAV_PROJ = "condition_provider.conditioners.self_wav.output_proj."


def read_audiocraft_musicgen(folder: Path, text_encoder: str | Path | None = None,
                             chroma_length: int | None = None) -> MusicGenParts:
    """An audiocraft folder; melody checkpoints (``self_wav`` chroma conditioner) included.

    For melody models audiocraft prepends ``[chroma; text]`` (the text conditioner is tokenised
    first, then each prepended condition goes in front), like transformers' MusicGen-Melody; the null
    melody is the chroma of silence, whose argmax is bin 0. The fields of ``xp.cfg`` that change
    generation are honoured (``audiocraft_cfg``): the window is ``dataset.segment_duration`` and the
    chroma prefix has that many seconds' frames (30 s at 32 kHz, hop 4096: 235; ``chroma_length``
    overrides it), and ``two_step_cfg`` guides with ``classifier_free_guidance.inference_coef``.
    """
    from musicgen.checkpoints.audiocraft_cfg import audiocraft_settings
    from musicgen.checkpoints.lm_audiocraft import load_audiocraft_lm_with_cfg
    from musicgen.checkpoints.text_encoder import find_text_encoder, text_encoder_name
    from musicgen.models.text_conditioners import T5Conditioner

    lm, extras, cfg = load_audiocraft_lm_with_cfg(require_file(folder, "state_dict.bin"))
    melody = any(k.startswith(SELF_WAV_PROJ) for k in extras)
    settings = audiocraft_settings(cfg, lm.config.num_codebooks, melody, str(folder / "state_dict.bin"))
    codec_file = require_file(folder, "compression_state_dict.bin",
                              "It is the codec file of an audiocraft MusicGen checkpoint.")
    codec = CompressionModel.from_pretrained(codec_file)
    stereo = lm.config.num_codebooks == 2 * codec.num_codebooks
    if stereo:
        codec = CompressionModel.from_pretrained(codec_file, stereo=True)
    t5_folder = find_text_encoder(folder, text_encoder_name(cfg), text_encoder)
    text = T5Conditioner.from_pretrained(t5_folder, project=False)
    lm, proj = split_condition_projection(lm)
    width = int(text.encoder.config.d_model)
    if proj is not None and proj.in_features != width:
        raise ValueError(f"{folder}: the T5 encoder in {t5_folder} gives {width}-dim states but the "
                         f"checkpoint's text projection takes {proj.in_features} (xp.cfg names "
                         f"{text_encoder_name(cfg)!r}); pass text_encoder= the matching T5 folder")
    if proj is not None:  # audiocraft: output_proj inside the conditioner, then masked to zero
        text = T5Conditioner(text.encoder, text.tokenizer, proj.out_features, project=True,
                             name_or_path=text.name_or_path)
        text.output_proj.load_state_dict(proj.state_dict())
    chroma = None
    if melody:
        if lm.config.cross_attention:
            raise NotImplementedError(f"{folder}: a melody conditioner fused by cross-attention is not "
                                      f"supported (the released melody models prepend it)")
        n_fft = settings.chroma_n_fft
        chroma = ChromaConditioner(lm.config.dim, chroma_length=chroma_length or 1,
                                   sample_rate=settings.chroma_sample_rate, n_fft=n_fft,
                                   hop_length=n_fft // 4)
        if chroma_length is None:  # audiocraft: the chroma frames of segment_duration seconds
            chroma.chroma_length = chroma.extractor.num_frames(
                int(settings.chroma_sample_rate * settings.segment_duration_s))
        _load_linear(chroma.output_proj, extras, SELF_WAV_PROJ, folder / "state_dict.bin")
    pattern = "stereo_delay" if stereo else "delay"
    limit_s = _duration_limit(lm, codec, pattern, lm.config.max_positions, chroma)
    return MusicGenParts(lm, codec, text, pattern, chroma, min(settings.segment_duration_s, limit_s),
                         mask_cross_attention=False, name=folder.name, two_step_cfg_coef=settings.cfg_coef)


def split_condition_projection(lm: nn.Module) -> tuple[nn.Module, nn.Linear | None]:
    """``(lm without condition_proj, that Linear)``: the LM then takes already-projected conditions."""
    if lm.condition_proj is None:
        return lm, None
    from musicgen.models.lm import LMModel

    proj = lm.condition_proj
    bare = LMModel(dataclasses.replace(lm.config, cond_dim=None))
    state = {k: v for k, v in lm.state_dict().items() if not k.startswith("condition_proj.")}
    bare.load_state_dict(state)
    return bare.eval(), proj
