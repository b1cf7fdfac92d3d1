"""``musiccaps``: the public MusicCaps CSV plus a folder of locally obtained clips named by ytid.

CSV columns: ytid, start_s, end_s, caption, aspect_list, is_genre_balanced, is_audioset_eval. The
clips are expected already cut to [start_s, end_s] (10 s) as ``AUDIO_DIR/<ytid>.wav`` (or .flac,
.ogg, .mp3). Nothing is downloaded. Clips that are missing are listed in one message with their
count; the run proceeds without them only with ``allow_missing: true``, and the number evaluated and
the number missing are recorded in the protocol.

``subset``: ``all`` (5521 rows), ``genre_balanced`` or ``audioset_eval`` (rows whose flag is true).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Literal

from bench.api import Dataset, Params, Prompt
from bench.audio import AUDIO_EXTENSIONS

COLUMNS = ("ytid", "start_s", "end_s", "caption", "aspect_list", "is_genre_balanced", "is_audioset_eval")
SHOW_AT_MOST = 50


def _flag(value: str) -> bool:
    return value.strip().lower() in ("true", "1", "yes")


class MusicCaps(Dataset):
    class Params(Params):
        csv: Path
        audio_dir: Path
        subset: Literal["all", "genre_balanced", "audioset_eval"] = "all"
        allow_missing: bool = False

    def _rows(self) -> list[dict[str, str]]:
        with open(self.params.csv, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            absent = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if absent:
                raise ValueError(f"{self.params.csv}: missing column(s) {', '.join(absent)} "
                                 f"(expected the public MusicCaps CSV: {', '.join(COLUMNS)})")
            rows = list(reader)
        if self.params.subset == "genre_balanced":
            rows = [r for r in rows if _flag(r["is_genre_balanced"])]
        elif self.params.subset == "audioset_eval":
            rows = [r for r in rows if _flag(r["is_audioset_eval"])]
        return rows

    def _clip(self, ytid: str) -> Path | None:
        return next((p for p in (self.params.audio_dir / f"{ytid}{e}" for e in AUDIO_EXTENSIONS)
                     if p.is_file()), None)

    def _scan(self) -> tuple[list[tuple[dict[str, str], Path]], list[str]]:
        found, missing = [], []
        for row in self._rows():
            clip = self._clip(row["ytid"])
            if clip is None:
                missing.append(row["ytid"])
            else:
                found.append((row, clip))
        return found, missing

    def _missing_message(self, missing: list[str], total: int) -> str:
        shown = ", ".join(missing[:SHOW_AT_MOST])
        more = f" ... and {len(missing) - SHOW_AT_MOST} more" if len(missing) > SHOW_AT_MOST else ""
        return (f"{len(missing)} of {total} MusicCaps clips are missing from "
                f"{str(self.params.audio_dir)!r} (expected <ytid>.wav): {shown}{more}. Obtain them, "
                f"or set allow_missing: true to evaluate the {total - len(missing)} present")

    def check(self) -> list[str]:
        if not self.params.csv.is_file():
            return [f"MusicCaps CSV {str(self.params.csv)!r} does not exist (get musiccaps-public.csv "
                    f"from the MusicCaps dataset page on Kaggle / Hugging Face)"]
        if not self.params.audio_dir.is_dir():
            return [f"MusicCaps audio folder {str(self.params.audio_dir)!r} does not exist"]
        try:
            found, missing = self._scan()
        except ValueError as e:
            return [str(e)]
        if not found:
            return [f"no MusicCaps clip found in {str(self.params.audio_dir)!r}"]
        if missing and not self.params.allow_missing:
            return [self._missing_message(missing, len(found) + len(missing))]
        return []

    def prompts(self) -> list[Prompt]:
        problems = self.check()
        if problems:
            raise FileNotFoundError("; ".join(problems))
        found, missing = self._scan()
        self._n_missing = len(missing)
        return [Prompt(id=row["ytid"], text=row["caption"], reference_path=clip,
                       metadata={"aspect_list": row["aspect_list"], "start_s": float(row["start_s"]),
                                 "end_s": float(row["end_s"]),
                                 "is_genre_balanced": _flag(row["is_genre_balanced"]),
                                 "is_audioset_eval": _flag(row["is_audioset_eval"])})
                for row, clip in found]

    def protocol(self) -> dict[str, Any]:
        return {"dataset": "musiccaps", "subset": self.params.subset,
                "n_missing": getattr(self, "_n_missing", None), "allow_missing": self.params.allow_missing}
