"""synthcaps: determinism, splits, reuse, captions against sidecars, chroma and tempo of the audio."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from musicgen.train.synthcaps import build_synthcaps, split_sizes
from musicgen.train.synthcaps_music import DRUM_PHRASES, PITCH_NAMES


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _sidecars(root: Path) -> list[dict]:
    rows = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]
    return [json.loads((root / row["path"]).with_suffix(".json").read_text()) for row in rows]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return build_synthcaps(tmp_path_factory.mktemp("sc") / "corpus", num_clips=20, seed=3,
                           duration_s=6.0, sample_rate=16000)


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = _files(build_synthcaps(tmp_path / "a", num_clips=3, seed=7, duration_s=2.0, sample_rate=16000))
    b = _files(build_synthcaps(tmp_path / "b", num_clips=3, seed=7, duration_s=2.0, sample_rate=16000))
    c = _files(build_synthcaps(tmp_path / "c", num_clips=3, seed=8, duration_s=2.0, sample_rate=16000))
    assert a == b
    wav_a = {Path(k).name: v for k, v in a.items() if k.endswith(".wav")}
    wav_c = {Path(k).name: v for k, v in c.items() if k.endswith(".wav")}
    assert all(wav_a[name] != wav_c[name] for name in wav_a)


def test_clip_does_not_depend_on_corpus_size(tmp_path):
    small = build_synthcaps(tmp_path / "s", num_clips=1, seed=5, duration_s=2.0, sample_rate=16000)
    large = build_synthcaps(tmp_path / "l", num_clips=4, seed=5, duration_s=2.0, sample_rate=16000)
    (a,) = small.rglob("sc00000.wav")
    (b,) = large.rglob("sc00000.wav")
    assert a.read_bytes() == b.read_bytes()


def test_layout_manifest_and_splits(corpus):
    rows = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 20
    counts = {s: sum(r["split"] == s for r in rows) for s in ("train", "valid", "test")}
    assert counts == split_sizes(20) == {"train": 16, "valid": 2, "test": 2}
    assert split_sizes(300) == {"train": 240, "valid": 30, "test": 30}
    for row in rows:
        wav = corpus / row["path"]
        assert wav.parent.name == row["split"]
        info = sf.info(wav)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "FLOAT")
        assert info.frames == row["duration_s"] * 16000 == 6.0 * 16000
        assert wav.with_name(f"{row['id']}.melody.wav").is_file()
    params = json.loads((corpus / "corpus.json").read_text())
    assert (params["num_clips"], params["seed"], params["sample_rate"]) == (20, 3, 16000)


def test_captions_mention_sidecar_attributes(corpus):
    sidecars = _sidecars(corpus)
    assert len({m["genre"] for m in sidecars}) >= 4
    assert len({m["description"] for m in sidecars}) == len(sidecars)
    for meta in sidecars:
        text = meta["description"]
        lower = text.lower()
        assert str(meta["bpm"]) in text, text
        assert f"{meta['key']} {meta['mode']}" in text, text
        assert meta["genre"] in lower, text
        for name in [*meta["instruments"], *meta["moods"]]:
            assert name in lower, (name, text)
        assert any(phrase in lower for phrase in DRUM_PHRASES[meta["drums"]]), text
        assert meta["instrument"] == meta["instruments"][0]
        assert meta["melody"] and all(n["pitch"] % 12 in
                                      {PITCH_NAMES.index(p) for p in meta["scale"]} for n in meta["melody"])


def test_melody_chroma_peaks_on_the_scale(corpus):
    librosa = pytest.importorskip("librosa")
    for meta in _sidecars(corpus):
        wav, sr = sf.read(corpus / meta["split"] / f"{meta['id']}.melody.wav")
        chroma = librosa.feature.chroma_stft(y=wav, sr=sr, n_fft=4096, hop_length=2048).sum(axis=1)
        scale = [PITCH_NAMES.index(p) for p in meta["scale"]]
        off = [pc for pc in range(12) if pc not in scale]
        assert int(np.argmax(chroma)) in scale, meta["id"]
        assert chroma[scale].mean() > 1.5 * chroma[off].mean(), (meta["id"], meta["instrument"])
        # the audio follows the sidecar's notes: chroma correlates with their duration histogram
        hist = np.zeros(12)
        for note in meta["melody"]:
            hist[note["pitch"] % 12] += note["duration_s"]
        assert np.corrcoef(hist, chroma)[0, 1] > 0.5, meta["id"]


def test_tempo_of_drum_clips_is_near_bpm(corpus):
    librosa = pytest.importorskip("librosa")
    drum_clips = [m for m in _sidecars(corpus) if m["drums"] in ("four_on_the_floor", "backbeat", "boom_bap")]
    assert len(drum_clips) >= 5
    errors = []
    for meta in drum_clips:
        wav, sr = sf.read(corpus / meta["split"] / f"{meta['id']}.wav")
        # librosa's global tempo estimate (what librosa.beat.tempo was): onset autocorrelation
        onsets = librosa.onset.onset_strength(y=wav, sr=sr)
        tempo = float(librosa.feature.tempo(onset_envelope=onsets, sr=sr)[0])
        errors.append(abs(tempo - meta["bpm"]) / meta["bpm"])
    assert np.mean(np.array(errors) < 0.05) >= 0.8, errors


def test_reuse_does_not_rebuild_and_new_params_do(tmp_path):
    root = build_synthcaps(tmp_path / "r", num_clips=2, seed=1, duration_s=1.0, sample_rate=16000)
    stamps = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    assert build_synthcaps(root, num_clips=2, seed=1, duration_s=1.0, sample_rate=16000) == root
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} == stamps
    build_synthcaps(root, num_clips=3, seed=1, duration_s=1.0, sample_rate=16000)
    assert json.loads((root / "corpus.json").read_text())["num_clips"] == 3
    assert len((root / "manifest.jsonl").read_text().splitlines()) == 3
    assert not list(tmp_path.glob(".r.*")), "temporary build directories are cleaned up"


def test_bad_input(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a synthcaps corpus|no corpus.json"):
        build_synthcaps(foreign, num_clips=1, duration_s=1.0)
    assert (foreign / "notes.txt").read_text() == "keep me"
    with pytest.raises(ValueError, match="num_clips"):
        build_synthcaps(tmp_path / "x", num_clips=0)
    with pytest.raises(ValueError, match="duration_s"):
        build_synthcaps(tmp_path / "x", duration_s=0.0)


def test_float_wav_writer_round_trips_through_soundfile(tmp_path):
    from musicgen.train.synthcaps import write_float_wav

    audio = np.random.default_rng(0).uniform(-1, 1, 1001).astype(np.float32)
    write_float_wav(tmp_path / "x.wav", audio, 22050)
    back, sr = sf.read(tmp_path / "x.wav", dtype="float32")
    info = sf.info(tmp_path / "x.wav")
    assert (sr, info.channels, info.subtype, info.frames) == (22050, 1, "FLOAT", 1001)
    np.testing.assert_array_equal(back, audio)
