"""Find the T5 text encoder of an audiocraft MusicGen checkpoint where users keep it; never download.

audiocraft's ``xp.cfg`` names the encoder in ``conditioners.description.t5.name`` (``t5-base`` for
every released MusicGen; ``t5-small`` ... ``t5-11b`` and ``google/flan-t5-*`` are accepted by its
``T5Conditioner``), and audiocraft loads it with ``from_pretrained(name)``, so a user's Hugging Face
cache holds ``models--t5-base``, or ``models--google-t5--t5-base`` when fetched under the hub's newer
spelling. Places, in order:

1. ``text_encoder=PATH`` when given (a folder or a hub id in the local cache): that one only.
2. Inside the checkpoint folder: ``t5/``, ``text_encoder/``, ``<name>/`` (e.g. ``t5-base/``).
3. The local Hugging Face cache, under each spelling of the name (``files.hub_spellings``).

A place counts when it holds a transformers config, weights and a tokenizer. When none does, the
error lists every place looked at and why each did not count.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from musicgen.checkpoints.files import (
    MissingCheckpointFile,
    cached_snapshot,
    download_hint,
    hub_cache_folder,
    hub_spellings,
    resolve_local,
)

DEFAULT_T5 = "t5-base"
LOCAL_SUBFOLDERS = ("t5", "text_encoder")


def text_encoder_name(cfg: dict[str, Any] | None) -> str:
    """The T5 name an audiocraft ``xp.cfg`` dict gives (``conditioners.description.t5.name``), else
    ``t5-base`` (the released models' encoder)."""
    description = ((cfg or {}).get("conditioners") or {}).get("description") or {}
    model = description.get("model", "t5")
    if model != "t5":
        raise ValueError(f"xp.cfg conditioners.description.model is {model!r}; only 't5' text "
                         f"conditioners are supported for audiocraft checkpoints")
    name = (description.get("t5") or {}).get("name", DEFAULT_T5)
    if not isinstance(name, str) or not name:
        raise ValueError(f"xp.cfg conditioners.description.t5.name is {name!r}; expected a T5 name "
                         f"such as 't5-base'")
    return name


def text_encoder_places(folder: Path | None, name: str = DEFAULT_T5) -> list[tuple[str, Path]]:
    """``(what, path)`` for every place searched, in order (see the module docstring)."""
    places: list[tuple[str, Path]] = []
    if folder is not None:
        subs = list(LOCAL_SUBFOLDERS) + [name.split("/")[-1]]
        places += [("checkpoint folder", Path(folder) / sub) for sub in dict.fromkeys(subs)]
    for spelling in hub_spellings(name):
        snapshot = cached_snapshot(spelling)
        places.append((f"Hugging Face cache ({spelling})", snapshot or hub_cache_folder(spelling)))
    return places


def _why_not(path: Path) -> str | None:
    """``None`` when ``path`` is a usable encoder folder, else the reason it is not."""
    from musicgen.models.text_conditioners import check_encoder_folder

    if not path.exists():
        return "absent"
    try:
        check_encoder_folder(path, "T5 text encoder")
    except MissingCheckpointFile as e:
        return str(e).split(". Save the")[0]
    return None


def find_text_encoder(folder: Path | None, name: str = DEFAULT_T5,
                      explicit: str | Path | None = None) -> Path:
    """The local folder of T5 encoder ``name`` for a checkpoint in ``folder`` (or ``explicit``)."""
    if explicit is not None:
        try:
            path = resolve_local(explicit)
        except MissingCheckpointFile as e:
            raise MissingCheckpointFile(f"text_encoder={str(explicit)!r}: {e}") from None
        reason = _why_not(path)
        if reason is not None:
            raise MissingCheckpointFile(f"text_encoder={str(explicit)!r}: {reason}. Pass a folder "
                                        f"holding the T5 encoder's config.json, weights and tokenizer.")
        return path
    looked = []
    for what, path in text_encoder_places(folder, name):
        reason = _why_not(path)
        if reason is None:
            return path
        looked.append(f"{what} {path}: {reason}")
    where = f"{folder}: " if folder is not None else ""
    raise MissingCheckpointFile(
        f"{where}the T5 text encoder {name!r} was not found; looked at: " + "; ".join(looked)
        + f". Pass text_encoder=PATH (a folder with config.json, weights and tokenizer), put that folder "
          f"in the checkpoint folder as t5/, or: {download_hint(name)}.")
