"""Datasets: audio-folder sidecars, MusicCaps CSV with missing clips, synthcaps availability."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.api import Context
from bench.datasets.audio_folder import AudioFolder
from bench.datasets.musiccaps import COLUMNS, MusicCaps
from bench.datasets.synthcaps import SynthCaps


def test_audio_folder_reads_sidecars_and_melodies(tones):
    sf.write(tones / "test" / "tone_1.melody.wav", np.zeros(160, np.float32), 16000)
    ds = AudioFolder(AudioFolder.Params(root=tones, split="test"))
    prompts = ds.prompts()
    assert [p.id for p in prompts] == [f"tone_{i}" for i in range(5)]
    assert prompts[0].text.startswith("a pure sine tone at 220 hertz")
    assert prompts[0].metadata == {"genre": "test", "index": 0, "split": "test"}
    assert prompts[1].melody_path == tones / "test" / "tone_1.melody.wav" and prompts[0].melody_path is None
    assert prompts[2].reference_path == tones / "test" / "tone_2.wav"


def test_audio_folder_errors(tmp_path):
    assert "does not exist" in AudioFolder(AudioFolder.Params(root=tmp_path / "nope")).check()[0]
    (tmp_path / "a").mkdir()
    assert "holds no audio files" in AudioFolder(AudioFolder.Params(root=tmp_path / "a")).check()[0]
    sf.write(tmp_path / "a" / "x.wav", np.zeros(10, np.float32), 8000)
    assert "have no JSON sidecar: x.wav" in AudioFolder(AudioFolder.Params(root=tmp_path / "a")).check()[0]
    (tmp_path / "a" / "x.json").write_text(json.dumps({"genre": "rock"}))
    with pytest.raises(ValueError, match="no text field 'description'"):
        AudioFolder(AudioFolder.Params(root=tmp_path / "a")).prompts()


def _musiccaps(tmp_path: Path, present: list[str], rows: int = 5) -> tuple[Path, Path]:
    csv_path, audio = tmp_path / "musiccaps-public.csv", tmp_path / "clips"
    audio.mkdir()
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for i in range(rows):
            w.writerow([f"yt{i}", 30, 40, f"caption {i}, with a comma", "['rock', 'loud']",
                        "True" if i % 2 == 0 else "False", "False"])
    for ytid in present:
        sf.write(audio / f"{ytid}.wav", np.zeros(800, np.float32), 8000)
    return csv_path, audio


def test_musiccaps_missing_clips_listed_once_and_allowed_on_request(tmp_path):
    csv_path, audio = _musiccaps(tmp_path, ["yt0", "yt2", "yt3"])
    strict = MusicCaps(MusicCaps.Params(csv=csv_path, audio_dir=audio))
    [message] = strict.check()
    assert message.startswith("2 of 5 MusicCaps clips are missing") and "yt1, yt4" in message
    assert "allow_missing: true" in message
    with pytest.raises(FileNotFoundError, match="2 of 5"):
        strict.prompts()
    lenient = MusicCaps(MusicCaps.Params(csv=csv_path, audio_dir=audio, allow_missing=True))
    assert lenient.check() == []
    prompts = lenient.prompts()
    assert [p.id for p in prompts] == ["yt0", "yt2", "yt3"]
    assert prompts[0].text == "caption 0, with a comma" and prompts[0].metadata["is_genre_balanced"] is True
    assert lenient.protocol()["n_missing"] == 2
    balanced = MusicCaps(MusicCaps.Params(csv=csv_path, audio_dir=audio, subset="genre_balanced"))
    assert balanced.check()[0].startswith("1 of 3 MusicCaps clips are missing")  # yt0, yt2, yt4
    balanced = MusicCaps(MusicCaps.Params(csv=csv_path, audio_dir=audio, subset="genre_balanced",
                                          allow_missing=True))
    assert [p.id for p in balanced.prompts()] == ["yt0", "yt2"]


def test_musiccaps_bad_csv(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("ytid,caption\nx,y\n")
    (tmp_path / "clips").mkdir()
    [message] = MusicCaps(MusicCaps.Params(csv=bad, audio_dir=tmp_path / "clips")).check()
    assert "missing column(s) start_s, end_s" in message
    no_csv = MusicCaps(MusicCaps.Params(csv=tmp_path / "no.csv", audio_dir=tmp_path))
    assert "does not exist" in no_csv.check()[0]


def test_synthcaps_builds_in_the_cache_dir(tmp_path, monkeypatch):
    ds = SynthCaps(SynthCaps.Params(num_clips=6, duration_s=1.0, sample_rate=8000),
                   Context(cache_dir=tmp_path / "run" / "cache"))
    assert ds.root == tmp_path / "run" / "cache" / "datasets" / "synthcaps" / "n6-seed0-1s-8000hz"
    assert ds.check() == []
    prompts = ds.prompts()
    assert prompts and all(p.reference_path.is_relative_to(ds.root) for p in prompts)
    assert all(p.text for p in prompts)
