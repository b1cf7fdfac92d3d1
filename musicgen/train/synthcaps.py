"""``synthcaps``: a synthetic captioned music corpus, procedural and deterministic by seed.

``build_synthcaps(root)`` writes an audio-folder corpus::

    root/corpus.json                 parameters and version (reuse key)
    root/manifest.jsonl              one line per clip: id, split, path (relative to root), duration_s,
                                     sample_rate
    root/{train,valid,test}/{id}.wav          the mix, mono float32 PCM
    root/{train,valid,test}/{id}.melody.wav   the melody line alone (for chroma tests)
    root/{train,valid,test}/{id}.json         sidecar: description, genre, bpm, key, mode, instrument
                                              (lead), instruments, drums, moods, keywords, chords,
                                              melody (MIDI notes with onsets), duration_s, sample_rate

Each clip ``i`` is drawn from its own generator seeded by ``(seed, i)``, so a clip does not depend on
how many clips are built, and the same parameters give the same bytes. Splits are 80/10/10 by a
seeded permutation. Clips are in ``synthcaps_music`` (composition, captions) and
``synthcaps_audio`` (timbres, drums). An existing corpus with the same parameters and version is
reused; otherwise the corpus is built in a sibling temporary directory and swapped in by rename.
A directory that exists and is not a synthcaps corpus is never overwritten.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from musicgen.checkpoints.files import atomic_folder
from musicgen.train.synthcaps_audio import Mixer, Voices
from musicgen.train.synthcaps_music import PITCH_NAMES, SCALES, Clip, caption, compose

SYNTHCAPS_VERSION = 1
SPLITS = ("train", "valid", "test")
_GAINS = {"melody": 0.5, "harmony": 0.22, "bass": 0.45, "drums": 0.6}
_PEAK = 0.89


def split_sizes(num_clips: int) -> dict[str, int]:
    """80/10/10; valid and test get at least one clip each once there are 3 clips or more."""
    held_out = max(1, round(0.1 * num_clips)) if num_clips >= 3 else 0
    return {"train": num_clips - 2 * held_out, "valid": held_out, "test": held_out}


def assign_splits(num_clips: int, seed: int) -> list[str]:
    """The split of each clip index, from a permutation seeded by ``seed``."""
    sizes = split_sizes(num_clips)
    order = np.random.default_rng([seed, 0x5EED]).permutation(num_clips)
    splits = [""] * num_clips
    cursor = 0
    for name in SPLITS:
        for i in order[cursor:cursor + sizes[name]]:
            splits[int(i)] = name
        cursor += sizes[name]
    return splits


def render_clip(clip: Clip, duration_s: float, sample_rate: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Render ``(mix [N], melody [N])`` float32 with N = duration_s * sample_rate, peak-normalised."""
    num_samples = int(round(duration_s * sample_rate))
    voices = Voices(sample_rate, rng)
    parts = {role: Mixer(num_samples, sample_rate) for role in _GAINS}
    for note in clip.notes:
        parts[note.role].add(voices.note(note.instrument, note.pitch, note.duration_s, note.velocity),
                             note.onset_s)
    if clip.hits:
        kit = voices.drum_kit()
        for drum, onset_s, velocity in clip.hits:
            parts["drums"].add(kit[drum], onset_s, velocity)
    mix = sum(_GAINS[role] * part.buffer for role, part in parts.items())
    melody = parts["melody"].buffer
    return _normalise(mix), _normalise(melody)


def write_float_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write mono float32 WAV (IEEE float, fmt + fact + data chunks) byte-for-byte reproducibly.

    soundfile/libsndfile adds a PEAK chunk with a wall-clock timestamp to float files, so the same
    audio would give different bytes from run to run; this writer has no timestamp.
    """
    data = np.ascontiguousarray(audio, dtype="<f4").tobytes()
    frames = audio.shape[0]
    fmt = struct.pack("<HHIIHHH", 3, 1, sample_rate, sample_rate * 4, 4, 32, 0)
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
            + b"fact" + struct.pack("<II", 4, frames) + b"data" + struct.pack("<I", len(data)) + data)
    Path(path).write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def _normalise(x: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(x)))
    return (x * (_PEAK / peak) if peak > 0 else x).astype(np.float32)


def clip_metadata(clip: Clip, clip_id: str, split: str, description: str, duration_s: float,
                  sample_rate: int) -> dict:
    """The JSON sidecar of one clip (values rounded so the file is stable and readable)."""
    root_pc = PITCH_NAMES.index(clip.key)
    return {
        "id": clip_id,
        "split": split,
        "description": description,
        "genre": clip.genre,
        "bpm": clip.bpm,
        "key": clip.key,
        "mode": clip.mode,
        "scale": [PITCH_NAMES[(root_pc + s) % 12] for s in SCALES[clip.mode]],
        "instrument": clip.lead,
        "instruments": clip.instruments,
        "drums": clip.drums,
        "moods": clip.moods,
        "keywords": [clip.genre, *clip.moods, *clip.instruments],
        "chords": clip.chords,
        "melody": [{"pitch": n.pitch, "onset_s": round(n.onset_s, 4), "duration_s": round(n.duration_s, 4),
                    "velocity": round(n.velocity, 3)} for n in clip.melody],
        "duration_s": duration_s,
        "sample_rate": sample_rate,
    }


def _build_one(directory: Path, index: int, split: str, seed: int, duration_s: float,
               sample_rate: int) -> dict:
    clip_id = f"sc{index:05d}"
    rng = np.random.default_rng([seed, index])
    clip = compose(rng, duration_s)
    description = caption(clip, rng)
    mix, melody = render_clip(clip, duration_s, sample_rate, np.random.default_rng([seed, index, 1]))
    out = directory / split
    write_float_wav(out / f"{clip_id}.wav", mix, sample_rate)
    write_float_wav(out / f"{clip_id}.melody.wav", melody, sample_rate)
    meta = clip_metadata(clip, clip_id, split, description, duration_s, sample_rate)
    (out / f"{clip_id}.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return {"id": clip_id, "split": split, "path": f"{split}/{clip_id}.wav",
            "duration_s": mix.shape[0] / sample_rate, "sample_rate": sample_rate}


def _params(num_clips: int, seed: int, duration_s: float, sample_rate: int) -> dict:
    return {"name": "synthcaps", "version": SYNTHCAPS_VERSION, "num_clips": num_clips, "seed": seed,
            "duration_s": float(duration_s), "sample_rate": sample_rate}


def _is_current(root: Path, params: dict) -> bool:
    try:
        found = json.loads((root / "corpus.json").read_text())
    except (OSError, ValueError):
        return False
    if {k: found.get(k) for k in params} != params:
        return False
    manifest = root / "manifest.jsonl"
    return manifest.is_file() and sum(1 for _ in manifest.open()) == params["num_clips"]


def build_synthcaps(root: Path, *, num_clips: int = 300, seed: int = 0, duration_s: float = 10.0,
                    sample_rate: int = 32000) -> Path:
    """Build (or reuse) the synthcaps corpus at ``root`` and return ``root``.

    Raises ``ValueError`` for non-positive ``num_clips``/``duration_s``/``sample_rate`` and
    ``FileExistsError`` when ``root`` is a non-empty directory that is not a synthcaps corpus.
    """
    root = Path(root)
    if num_clips < 1:
        raise ValueError(f"synthcaps: num_clips must be >= 1, got {num_clips}")
    if not duration_s > 0:
        raise ValueError(f"synthcaps: duration_s must be > 0, got {duration_s}")
    if sample_rate < 8000:
        raise ValueError(f"synthcaps: sample_rate must be >= 8000 Hz, got {sample_rate}")
    params = _params(num_clips, seed, duration_s, sample_rate)
    if _is_current(root, params):
        return root
    if root.exists() and any(root.iterdir()) and not (root / "corpus.json").exists():
        raise FileExistsError(f"synthcaps: {root} exists, is not empty and has no corpus.json; "
                              "refusing to overwrite it (choose another directory)")
    splits = assign_splits(num_clips, seed)
    with atomic_folder(root) as tmp:
        for split in SPLITS:
            (tmp / split).mkdir(parents=True)
        rows = [_build_one(tmp, i, splits[i], seed, duration_s, sample_rate) for i in range(num_clips)]
        (tmp / "manifest.jsonl").write_text("".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))
        corpus = dict(params, splits=split_sizes(num_clips))
        (tmp / "corpus.json").write_text(json.dumps(corpus, indent=1, sort_keys=True) + "\n")
    return root
