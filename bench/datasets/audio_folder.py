"""``audio-folder``: audio files with JSON sidecars, one prompt per audio file.

Layout (``split`` optional)::

    ROOT/[SPLIT/]ID.wav          the reference audio (any of .wav .flac .ogg .mp3)
    ROOT/[SPLIT/]ID.json         sidecar: {"description": "...", "genre": ..., ...}
    ROOT/[SPLIT/]ID.melody.wav   optional melody line (chroma conditioning and chroma metric)

The prompt text is the sidecar's ``text_key`` (default ``description``; ``caption`` and ``text`` are
accepted when that key is absent); every other sidecar field becomes prompt metadata. Items are
sorted by ID. A missing folder, an audio file without sidecar, a sidecar that is not a JSON object
with text, or an audio header that cannot be read (``bench.audio.audio_header``) is an error that
``check()`` (so ``bench validate``) reports, naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field

from bench.api import Dataset, Params, Prompt
from bench.audio import AUDIO_EXTENSIONS, audio_header

TEXT_FALLBACKS = ("description", "caption", "text")


class AudioFolder(Dataset):
    class Params(Params):
        root: Path
        split: str | None = None
        text_key: str = "description"
        extensions: tuple[str, ...] = Field(default=AUDIO_EXTENSIONS)

    @property
    def folder(self) -> Path:
        p = self.params
        return p.root / p.split if p.split else p.root

    def _audio_files(self) -> list[Path]:
        exts = {e.lower() for e in self.params.extensions}
        return sorted(f for f in self.folder.iterdir()
                      if f.suffix.lower() in exts and not f.stem.endswith(".melody"))

    def check(self) -> list[str]:
        problems = self._missing()
        if problems:
            return problems
        for f in self._audio_files():  # every sidecar parsed and every header read now, not mid-run
            try:
                self._sidecar(f)
                audio_header(f)
            except ValueError as e:
                problems.append(str(e))
        if len(problems) > 20:
            problems = problems[:20] + [f"... and {len(problems) - 20} more file(s) like these"]
        return problems

    def _missing(self) -> list[str]:
        if not self.folder.is_dir():
            return [f"data folder {str(self.folder)!r} does not exist"]
        files = self._audio_files()
        if not files:
            return [f"data folder {str(self.folder)!r} holds no audio files "
                    f"({', '.join(self.params.extensions)})"]
        no_sidecar = [f.name for f in files if not f.with_suffix(".json").is_file()]
        if no_sidecar:
            return [f"{len(no_sidecar)} audio file(s) in {str(self.folder)!r} have no JSON sidecar: "
                    f"{', '.join(no_sidecar[:20])}{' ...' if len(no_sidecar) > 20 else ''}"]
        return []

    def count(self) -> int | None:
        return None if self._missing() else len(self._audio_files())

    def _sidecar(self, audio: Path) -> tuple[str, dict[str, Any]]:
        """``(text, metadata)`` of ``audio``'s sidecar; ``ValueError`` naming the file otherwise."""
        sidecar = audio.with_suffix(".json")
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            raise ValueError(f"{sidecar}: not valid JSON ({type(e).__name__}: {e})") from None
        if not isinstance(meta, dict):
            raise ValueError(f"{sidecar}: expected a JSON object, got {type(meta).__name__}")
        for key in (self.params.text_key, *TEXT_FALLBACKS):
            if isinstance(meta.get(key), str):
                return meta.pop(key), meta
        raise ValueError(f"{sidecar}: no text field {self.params.text_key!r} (nor any of {TEXT_FALLBACKS})")

    def prompts(self) -> list[Prompt]:
        problems = self._missing()
        if problems:
            raise FileNotFoundError("; ".join(problems))
        out = []
        for audio in self._audio_files():
            text, meta = self._sidecar(audio)
            melody = next((m for m in (audio.with_name(f"{audio.stem}.melody{e}") for e in AUDIO_EXTENSIONS)
                           if m.is_file()), None)
            if self.params.split:
                meta.setdefault("split", self.params.split)
            out.append(Prompt(id=audio.stem, text=text, melody_path=melody, reference_path=audio,
                              metadata=meta))
        return out

    def protocol(self) -> dict[str, Any]:
        return {"dataset": "audio-folder", "root": str(self.params.root), "split": self.params.split}
