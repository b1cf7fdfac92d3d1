"""Folders of audio clips named by prompt: manifests, folder scans and file content digests.

Used by the ``files`` generator (``baselines.files``), the ``clip-folder`` dataset and ``bench stats``.

A folder maps each (prompt id, seed) to one file, either by **manifest** or by **file stem**:

- manifest (``.csv`` with a header row, or ``.jsonl`` with one JSON object per line): columns/keys
  ``file`` (relative to the manifest's folder, or absolute), ``prompt_id``, and optionally ``caption``
  and ``seed`` (an integer; 0 when absent or empty). Unknown columns are ignored.
- without a manifest: every audio file (``AUDIO_EXTENSIONS``) directly in the folder, ``stem`` = prompt
  id, seed 0. Files whose stem ends in ``.melody`` and hidden files are skipped.

Every problem is one line naming the file (and line) and what was expected: an empty or unparsable
manifest, a row without ``file``/``prompt_id``, a bad seed, a named file that does not exist, two rows
or files for the same (prompt id, seed).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from bench.audio import AUDIO_EXTENSIONS

MANIFEST_NAMES = ("manifest.csv", "manifest.jsonl")
SHOW_AT_MOST = 20


class ClipFilesError(ValueError):
    """A folder or manifest that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class ClipEntry:
    """One clip file for one (prompt id, seed); ``caption`` is the manifest's, if any."""

    path: Path
    prompt_id: str
    seed: int = 0
    caption: str | None = None
    where: str = ""  # "manifest.csv line 3" or the file name, for messages


def listing(names: list[str]) -> str:
    """``a, b, c`` with at most ``SHOW_AT_MOST`` names and ``... and N more``."""
    shown = ", ".join(names[:SHOW_AT_MOST])
    return shown + (f" ... and {len(names) - SHOW_AT_MOST} more" if len(names) > SHOW_AT_MOST else "")


def _rows(path: Path) -> list[tuple[int, dict[str, object]]]:
    """``[(line number, row mapping)]`` of a CSV or JSONL manifest."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ClipFilesError(f"manifest {str(path)!r} cannot be read: {e}") from None
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        out = []
        for i, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ClipFilesError(f"manifest {str(path)!r} line {i}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise ClipFilesError(f"manifest {str(path)!r} line {i}: expected a JSON object, got "
                                     f"{type(row).__name__}")
            out.append((i, row))
        return out
    if suffix == ".csv":
        try:
            reader = csv.DictReader(io.StringIO(text, newline=""))
            fields = reader.fieldnames or []
            rows = [(reader.line_num, dict(r)) for r in reader]
        except csv.Error as e:
            raise ClipFilesError(f"manifest {str(path)!r}: not valid CSV ({e})") from None
        if "prompt_id" not in fields:
            raise ClipFilesError(f"manifest {str(path)!r}: the header has no 'prompt_id' column "
                                 f"(got {fields[:10]}; expected file, prompt_id[, caption, seed])")
        return rows
    raise ClipFilesError(f"manifest {str(path)!r}: expected a .csv or .jsonl file")


def _text(value: object, where: str, key: str, required: bool) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ClipFilesError(f"{where}: no {key!r} value")
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ClipFilesError(f"{where}: {key!r} must be a string, got {type(value).__name__}")
    return str(value).strip()


def _seed(value: object, where: str) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        return 0
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ClipFilesError(f"{where}: 'seed' must be an integer, got {value!r}")
    try:
        return int(str(value).strip())
    except ValueError:
        raise ClipFilesError(f"{where}: 'seed' must be an integer, got {value!r}") from None


def read_manifest(path: str | Path, *, need_files: bool = True) -> list[ClipEntry]:
    """Entries of a manifest, in file order. ``need_files=False`` reads a captions-only manifest
    (``prompt_id`` and ``caption``; ``file`` optional). Raises ``ClipFilesError`` on any problem."""
    path = Path(path)
    base = path.parent
    out: list[ClipEntry] = []
    seen: dict[tuple[str, int], int] = {}  # (prompt id, seed) -> line
    for line, row in _rows(path):
        where = f"manifest {str(path)!r} line {line}"
        pid = _text(row.get("prompt_id"), where, "prompt_id", True)
        file = _text(row.get("file"), where, "file", need_files)
        caption = _text(row.get("caption"), where, "caption", False)
        seed = _seed(row.get("seed"), where)
        assert pid is not None
        key = (pid, seed)
        if key in seen:
            raise ClipFilesError(f"{where}: prompt id {pid!r} seed {seed} is listed twice (also at line "
                                 f"{seen[key]})")
        seen[key] = line
        clip = Path(file) if file is not None else Path()
        if file is not None and not clip.is_absolute():
            clip = base / clip
        if file is not None and not clip.is_file():
            raise ClipFilesError(f"{where}: file {file!r} does not exist (looked for {str(clip)!r})")
        out.append(ClipEntry(clip, pid, seed, caption, where))
    if not out:
        raise ClipFilesError(f"manifest {str(path)!r} lists no clips")
    return out


def default_manifest(folder: Path) -> Path | None:
    """``folder/manifest.csv`` or ``folder/manifest.jsonl`` when exactly one of them exists."""
    found = [folder / n for n in MANIFEST_NAMES if (folder / n).is_file()]
    if len(found) > 1:
        raise ClipFilesError(f"folder {str(folder)!r} holds both {MANIFEST_NAMES[0]} and "
                             f"{MANIFEST_NAMES[1]}; keep one")
    return found[0] if found else None


def audio_files(folder: Path, extensions: tuple[str, ...] = AUDIO_EXTENSIONS) -> list[Path]:
    """Audio files directly in ``folder`` (sorted; hidden files and ``*.melody.*`` skipped)."""
    exts = {e.lower() for e in extensions}
    return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in exts
                  and not f.name.startswith(".") and not f.stem.endswith(".melody"))


def scan(folder: str | Path, manifest: str | Path | None = None,
         extensions: tuple[str, ...] = AUDIO_EXTENSIONS) -> list[ClipEntry]:
    """The clips of ``folder``: by ``manifest`` (or the folder's own ``manifest.csv/.jsonl``), else
    by file stem. Raises ``ClipFilesError`` for a missing folder, no clips, or duplicate ids."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ClipFilesError(f"clip folder {str(folder)!r} does not exist")
    manifest = Path(manifest) if manifest is not None else default_manifest(folder)
    if manifest is not None:
        if not manifest.is_file():
            raise ClipFilesError(f"manifest {str(manifest)!r} does not exist")
        return read_manifest(manifest)
    files = audio_files(folder, extensions)
    if not files:
        raise ClipFilesError(f"clip folder {str(folder)!r} holds no audio files ({', '.join(extensions)}) "
                             f"and no {' or '.join(MANIFEST_NAMES)}")
    by_stem: dict[str, list[str]] = {}
    for f in files:
        by_stem.setdefault(f.stem, []).append(f.name)
    dup = [f"{stem} ({' and '.join(names)})" for stem, names in by_stem.items() if len(names) > 1]
    if dup:
        raise ClipFilesError(f"clip folder {str(folder)!r}: {len(dup)} prompt id(s) have more than one "
                             f"file: {listing(dup)}")
    return [ClipEntry(f, f.stem, 0, None, f.name) for f in files]


class FileDigests:
    """sha256 of files' bytes, memoised in ``memo_file`` (JSON) by (path, size, mtime): a replaced
    or edited file is hashed again, an unchanged one is not. ``memo_file=None``: no memo on disk."""

    def __init__(self, memo_file: Path | None = None) -> None:
        self.memo_file = memo_file
        self.memo: dict[str, str] = {}
        if memo_file is not None and memo_file.is_file():
            try:
                loaded = json.loads(memo_file.read_text())
                self.memo = {k: v for k, v in loaded.items() if isinstance(v, str)} if isinstance(
                    loaded, dict) else {}
            except (json.JSONDecodeError, OSError, UnicodeDecodeError):
                self.memo = {}
        self.dirty = False

    def __call__(self, path: Path) -> str:
        from bench.files import file_digest

        st = path.stat()
        stamp = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        if stamp not in self.memo:
            self.memo[stamp] = file_digest(path)
            self.dirty = True
        return self.memo[stamp]

    def save(self) -> None:
        if self.memo_file is None or not self.dirty:
            return
        from bench.files import atomic_write_json

        atomic_write_json(self.memo_file, self.memo, indent=None)
        self.dirty = False
