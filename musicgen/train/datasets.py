"""Audio-folder datasets with JSON sidecars (as audiocraft's music datasets) and a reusable manifest.

A dataset folder holds audio files (``.wav .flac .ogg .mp3``), each with an optional sidecar
``{stem}.json`` (description, genre, bpm, key, instrument, moods, ...); ``{stem}.melody.wav`` files
(melody stems, the harness's audio-folder convention) are not training items. The manifest
(``manifest.jsonl``, one JSON object per line: ``id``, ``split``, ``path`` relative to the folder,
``duration_s``, ``sample_rate``) is read when present (synthcaps writes one) and otherwise built once by
scanning the folder and written next to the audio, so later runs do not probe every file again. When
scanning, the split is the first folder under the root if it is ``train``/``valid``/``test``, else
``train``.

Undecodable audio is never dropped silently: when the manifest is built each file's header is read
with soundfile, and a file that fails is skipped with a warning that names its path and the error; a
file that fails later, when a crop is read, is reported the same way and another item is used. Both
land in ``dataset.skipped`` as ``(path, reason)``. A dataset with no usable files raises a
``ValueError`` naming the folder and split.

``AudioDataset[i]`` returns a dict: ``wav [C, T]`` float32 at ``sample_rate`` (downmixed to mono when
``channels == 1``, resampled with julius), ``description``, ``metadata`` (the sidecar), ``path``,
``offset_s``. With ``duration_s`` set, the crop is random (seeded by ``seed``, the epoch and the index)
and zero-padded when the file is shorter; with ``duration_s=None`` the whole file is returned.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

from musicgen.checkpoints.files import atomic_write_text
from musicgen.modules.audio import resample, to_mono

logger = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
SPLITS = ("train", "valid", "test")
MANIFEST = "manifest.jsonl"
_MANIFEST_FIELDS = ("id", "split", "path", "duration_s", "sample_rate")


@dataclass
class AudioItem:
    id: str
    split: str
    path: Path
    duration_s: float
    sample_rate: int

    def sidecar(self) -> dict[str, Any]:
        """The JSON sidecar next to the audio file, or ``{}`` when there is none."""
        path = self.path.with_suffix(".json")
        if not path.is_file():
            return {}
        try:
            return json.loads(path.read_text())
        except ValueError as e:
            raise ValueError(f"sidecar {path} is not valid JSON: {e}") from e


@dataclass
class Manifest:
    items: list[AudioItem]
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _report(skipped: list[tuple[str, str]], path: Path | str, reason: str) -> None:
    logger.warning("skipping audio file %s: %s", path, reason)
    skipped.append((str(path), reason))


def _scan(root: Path) -> Manifest:
    rows: list[AudioItem] = []
    skipped: list[tuple[str, str]] = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()
                       and not p.stem.endswith(".melody")):
        rel = path.relative_to(root)
        split = rel.parts[0] if len(rel.parts) > 1 and rel.parts[0] in SPLITS else "train"
        try:
            info = sf.info(str(path))
        except Exception as e:  # soundfile raises several types for unreadable files
            _report(skipped, path, f"cannot decode ({type(e).__name__}: {e})")
            continue
        if info.frames <= 0:
            _report(skipped, path, "no audio frames")
            continue
        rows.append(AudioItem(str(rel.with_suffix("")).replace("/", "__"), split, path,
                              info.frames / info.samplerate, int(info.samplerate)))
    return Manifest(rows, skipped)


def _read_manifest(root: Path, manifest: Path) -> list[AudioItem]:
    items = []
    for lineno, line in enumerate(manifest.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            raise ValueError(f"{manifest}:{lineno}: not valid JSON: {e}") from e
        missing = [k for k in _MANIFEST_FIELDS if k not in row]
        if missing:
            raise ValueError(f"{manifest}:{lineno}: missing field(s) {missing}; each line needs "
                             f"{list(_MANIFEST_FIELDS)}")
        path = Path(row["path"])
        items.append(AudioItem(str(row["id"]), str(row["split"]), path if path.is_absolute() else root / path,
                               float(row["duration_s"]), int(row["sample_rate"])))
    return items


def load_manifest(root: str | Path, manifest: str | Path | None = None) -> Manifest:
    """Read ``root/manifest.jsonl`` (or ``manifest``), building and writing it by a scan if absent."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} does not exist")
    path = Path(manifest) if manifest is not None else root / MANIFEST
    if path.is_file():
        return Manifest(_read_manifest(root, path))
    found = _scan(root)
    rows = [{"id": item.id, "split": item.split, "path": str(item.path.relative_to(root)),
             "duration_s": item.duration_s, "sample_rate": item.sample_rate} for item in found.items]
    atomic_write_text(path, "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))
    return found


def read_audio(path: Path, offset_s: float, duration_s: float | None, sample_rate: int,
               channels: int) -> torch.Tensor:
    """Read ``[channels, T]`` float32 from ``path`` at ``sample_rate`` starting at ``offset_s``.

    Mono targets average the file's channels; a stereo target duplicates a mono file. With
    ``duration_s`` the result has exactly ``round(duration_s * sample_rate)`` samples (zero-padded).
    """
    with sf.SoundFile(str(path)) as f:
        src_sr = f.samplerate
        start = int(round(offset_s * src_sr))
        f.seek(min(start, f.frames))
        frames = -1 if duration_s is None else int(np.ceil(duration_s * src_sr)) + 1
        data = f.read(frames, dtype="float32", always_2d=True)
    wav = torch.from_numpy(data.T.copy())  # [C_src, T]
    if channels == 1:
        wav = to_mono(wav)
    elif wav.shape[0] == 1:
        wav = wav.expand(channels, -1).clone()
    elif wav.shape[0] != channels:
        raise ValueError(f"{path} has {wav.shape[0]} channels; cannot make {channels} from them")
    wav = resample(wav, src_sr, sample_rate)
    if duration_s is not None:
        target = int(round(duration_s * sample_rate))
        wav = wav[:, :target]
        if wav.shape[-1] < target:
            wav = torch.nn.functional.pad(wav, (0, target - wav.shape[-1]))
    return wav


class AudioDataset(torch.utils.data.Dataset):
    """Random crops (or whole files) of one split of an audio folder; see the module docstring."""

    def __init__(self, root: str | Path, split: str | None = "train", *, duration_s: float | None = None,
                 sample_rate: int = 32000, channels: int = 1, seed: int = 0,
                 manifest: str | Path | None = None, max_retries: int = 10) -> None:
        if split is not None and split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
        if duration_s is not None and duration_s <= 0:
            raise ValueError(f"duration_s must be > 0 or None, got {duration_s}")
        self.root = Path(root)
        found = load_manifest(self.root, manifest)
        self.skipped = list(found.skipped)
        self.items = [it for it in found.items if split is None or it.split == split]
        if not self.items:
            raise ValueError(
                f"no usable audio in {self.root} (split={split!r}): found {len(found.items)} file(s) in "
                f"the manifest for any split, skipped {len(self.skipped)} that failed to decode"
                + (f" (first: {self.skipped[0][0]}: {self.skipped[0][1]})" if self.skipped else "")
                + f"; expected audio files with extensions {AUDIO_EXTENSIONS}")
        self.split = split
        self.duration_s = duration_s
        self.sample_rate = sample_rate
        self.channels = channels
        self.seed = seed
        self.epoch = 0
        self.max_retries = max_retries

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        """Change the crops drawn for every index (deterministically)."""
        self.epoch = int(epoch)

    def _offset_s(self, index: int, item: AudioItem) -> float:
        if self.duration_s is None or item.duration_s <= self.duration_s:
            return 0.0
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return float(rng.uniform(0.0, item.duration_s - self.duration_s))

    def __getitem__(self, index: int) -> dict[str, Any]:
        for attempt in range(self.max_retries):
            i = (index + attempt) % len(self.items)
            item = self.items[i]
            offset_s = self._offset_s(i, item)
            try:
                wav = read_audio(item.path, offset_s, self.duration_s, self.sample_rate, self.channels)
            except Exception as e:  # decoding errors come from libsndfile in several types
                _report(self.skipped, item.path, f"cannot decode ({type(e).__name__}: {e})")
                continue
            meta = item.sidecar()
            return {"wav": wav, "description": meta.get("description", ""), "metadata": meta,
                    "path": str(item.path), "offset_s": offset_s, "id": item.id}
        raise RuntimeError(f"{self.max_retries} audio files in a row failed to decode in {self.root}; "
                           f"last: {self.skipped[-1][0]} ({self.skipped[-1][1]})")
