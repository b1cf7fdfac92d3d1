"""``clip-folder``: prompts from a folder of clips (stem or manifest = prompt id), captions optional.

The dataset ``bench score`` builds: with a reference folder, each clip is its prompt's reference
audio (``reference: true``); scoring against a statistics file, the prompt ids come from the
generated folder itself (``reference: false``: the prompts carry no audio). Clips are found as the
``files`` generator finds them (``bench.clipfiles``: a ``manifest.csv/.jsonl`` or file stems).

Prompt text, first found: the ``captions`` manifest (CSV/JSONL with ``prompt_id`` and ``caption``;
a ``file`` column is not needed), the clip manifest's ``caption``, a JSON sidecar ``ID.json``
(``description``, ``caption`` or ``text``, as ``audio-folder``), else empty. ``protocol()`` says how
many prompts have a caption; the CLAP score needs every one (``bench score`` checks).
Caption ids that name no clip are an error (a typo would otherwise drop a caption silently).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.api import Dataset, Params, Prompt
from bench.clipfiles import ClipFilesError, listing, read_manifest, scan

TEXT_KEYS = ("description", "caption", "text")


class ClipFolder(Dataset):
    class Params(Params):
        root: Path
        manifest: Path | None = None
        captions: Path | None = None
        reference: bool = True

    def check(self) -> list[str]:
        try:
            self._build()
        except (ClipFilesError, ValueError) as e:
            return [str(e)]
        return []

    def _captions(self) -> dict[str, str]:
        if self.params.captions is None:
            return {}
        if not self.params.captions.is_file():
            raise ClipFilesError(f"captions manifest {str(self.params.captions)!r} does not exist")
        out = {}
        for e in read_manifest(self.params.captions, need_files=False):
            if e.caption is None:
                raise ClipFilesError(f"{e.where}: no 'caption' for prompt id {e.prompt_id!r}")
            out[e.prompt_id] = e.caption
        return out

    @staticmethod
    def _sidecar(audio: Path) -> str | None:
        sidecar = audio.with_suffix(".json")
        if not sidecar.is_file():
            return None
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ClipFilesError(f"sidecar {str(sidecar)!r}: not valid JSON ({e})") from None
        if isinstance(meta, dict):
            return next((meta[k] for k in TEXT_KEYS if isinstance(meta.get(k), str)), None)
        return None

    def _build(self) -> list[Prompt]:
        entries = scan(self.params.root, self.params.manifest)
        captions = self._captions()
        by_id: dict[str, Any] = {}
        for e in sorted(entries, key=lambda e: (e.prompt_id, e.seed)):
            by_id.setdefault(e.prompt_id, e)  # one prompt per id (several seeds share it)
        unknown = sorted(set(captions) - set(by_id))
        if unknown:
            raise ClipFilesError(f"captions manifest {str(self.params.captions)!r} names {len(unknown)} "
                                 f"prompt id(s) with no clip in {str(self.params.root)!r}: "
                                 f"{listing(unknown)}")
        if self.params.reference and len(by_id) != len(entries):
            raise ClipFilesError(f"reference folder {str(self.params.root)!r} has several clips (seeds) for "
                                 f"one prompt id; a reference needs exactly one per prompt")
        prompts = []
        for pid, e in by_id.items():
            text = captions.get(pid) or e.caption or self._sidecar(e.path) or ""
            prompts.append(Prompt(id=pid, text=text, reference_path=e.path if self.params.reference else None,
                                  metadata={"captioned": bool(text)}))
        return prompts

    def prompts(self) -> list[Prompt]:
        return self._build()

    def protocol(self) -> dict[str, Any]:
        prompts = self._build()
        return {"dataset": "clip-folder", "root": str(self.params.root),
                "captions": None if self.params.captions is None else str(self.params.captions),
                "reference_audio": self.params.reference,
                "n_captioned": sum(1 for p in prompts if p.text)}
