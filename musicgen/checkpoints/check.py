"""Check a MusicGen checkpoint folder before loading it (``bench validate``): every file it needs is
here, not empty, opens as what its name says and holds the expected names (``peek``: safetensors
headers and pickle opcodes only, nothing loaded), and the pieces it refers to elsewhere (an
audiocraft folder's T5 encoder and ``pretrained`` codec) are found locally. One line per problem,
each with the one instruction that fixes it.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from musicgen.checkpoints.files import MissingCheckpointFile, resolve_local
from musicgen.checkpoints.peek import UnreadableWeights, check_weight_file, peek_names, peek_pickled_string

AUDIOCRAFT_LM = (r"^best_state$", r"(^|\.)emb\.0\.weight$", r"(^|\.)linears\.0\.weight$",
                 r"transformer\.layers\.0\.linear1\.weight$")
TRANSFORMERS_MUSICGEN = (r"^decoder\.model\.decoder\.embed_tokens\.0\.weight$", r"^text_encoder\.",
                         r"^audio_encoder\.")
TRANSFORMERS_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
TOKENIZER_FILES = ("tokenizer.json", "spiece.model")
HOW_AUDIOCRAFT = ("Copy the audiocraft checkpoint folder (e.g. facebook/musicgen-small's state_dict.bin "
                  "and compression_state_dict.bin) here from a machine that has it.")
HOW_TRANSFORMERS = "Copy the model's save_pretrained folder here from a machine that has it."
HOW_NATIVE = "Write the folder again with MusicGen.save_pretrained."


def check_musicgen_folder(folder: str | Path, text_encoder: str | Path | None = None) -> list[str]:
    """Problems with the MusicGen checkpoint in ``folder`` (any of the three formats)."""
    folder = Path(folder)
    if folder.is_file():
        folder = folder.parent
    if (folder / "musicgen.json").is_file():
        return [line for f in sorted(folder.rglob("*.safetensors"))
                for line in check_weight_file(f, "MusicGen weights", (), HOW_NATIVE)]
    if (folder / "config.json").is_file():
        return _check_transformers(folder)
    if (folder / "state_dict.bin").exists():
        return _check_audiocraft(folder, text_encoder)
    present = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    return [f"{folder}: not a MusicGen checkpoint (expected musicgen.json, config.json + "
            f"model.safetensors, or state_dict.bin + compression_state_dict.bin; it holds "
            f"{present or 'nothing'})"]


def _check_transformers(folder: Path) -> list[str]:
    weights = [folder / n for n in TRANSFORMERS_WEIGHTS if (folder / n).is_file()]
    if not weights:
        return [f"{folder}: no weights ({' or '.join(TRANSFORMERS_WEIGHTS)}). {HOW_TRANSFORMERS}"]
    problems = check_weight_file(weights[0], "MusicGen weights", TRANSFORMERS_MUSICGEN, HOW_TRANSFORMERS)
    if weights[0].name.endswith(".index.json") and not problems:
        import json

        shards = sorted(set(json.loads(weights[0].read_text())["weight_map"].values()))
        problems += [line for s in shards for line in check_weight_file(folder / s, "MusicGen weight shard",
                                                                         (), HOW_TRANSFORMERS)]
    if not any((folder / n).is_file() for n in TOKENIZER_FILES):
        problems.append(f"{folder}: no T5 tokenizer ({' or '.join(TOKENIZER_FILES)}); copy it from the "
                        f"model's hub folder or the t5-base folder")
    return problems


def audiocraft_text_encoder(folder: str | Path, text_encoder: str | Path | None = None) -> Path | None:
    """The T5 folder an audiocraft checkpoint in ``folder`` will load (``None`` for the other formats,
    which carry their encoder); raises ``MissingCheckpointFile`` naming every place looked at."""
    from musicgen.checkpoints.text_encoder import find_text_encoder, text_encoder_name

    folder = Path(folder)
    if folder.is_file():
        folder = folder.parent
    if any((folder / n).is_file() for n in ("musicgen.json", "config.json")):
        return None
    raw = peek_pickled_string(folder / "state_dict.bin", "xp.cfg")
    try:
        name = text_encoder_name(yaml.safe_load(raw) if raw else None)
    except yaml.YAMLError as e:
        raise ValueError(f"{folder / 'state_dict.bin'}: xp.cfg is not valid YAML ({e})") from None
    return find_text_encoder(folder, name, text_encoder)


def _check_audiocraft(folder: Path, text_encoder: str | Path | None) -> list[str]:
    lm_file, codec_file = folder / "state_dict.bin", folder / "compression_state_dict.bin"
    problems = check_weight_file(lm_file, "audiocraft LM", AUDIOCRAFT_LM, HOW_AUDIOCRAFT)
    problems += _check_audiocraft_codec(codec_file)
    try:
        audiocraft_text_encoder(folder, text_encoder)
    except (MissingCheckpointFile, ValueError) as e:
        problems.append(str(e))
    return problems


def _check_audiocraft_codec(path: Path) -> list[str]:
    how = ("It is the codec file of an audiocraft MusicGen checkpoint (exported weights, or a "
           "{'pretrained': 'facebook/encodec_32khz'} reference as in the released folders).")
    problems = check_weight_file(path, "audiocraft codec", (), how)
    if problems:
        return problems
    try:
        names = peek_names(path)
    except UnreadableWeights as e:
        return [f"audiocraft codec: {e}. {how}"]
    if "best_state" in names:
        return []
    reference = peek_pickled_string(path, "pretrained")
    if reference is None:
        return [f"audiocraft codec: {path} holds neither 'best_state' nor 'pretrained'. {how}"]
    try:
        resolve_local(reference.removeprefix("//pretrained/"))
    except MissingCheckpointFile as e:
        return [f"audiocraft codec: {path} refers to {reference!r}: {e}"]
    return []
