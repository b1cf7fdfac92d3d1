"""Audio-folder dataset, manifest reuse, bad audio, and the token cache."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import soundfile as sf
import torch

from musicgen.train.datasets import AudioDataset, load_manifest
from musicgen.train.token_cache import TokenCache, build_token_cache, codec_digest


def _write_folder(root, sr=16000, stereo=False):
    t = np.arange(int(1.5 * sr)) / sr
    (root / "train").mkdir(parents=True)
    (root / "valid").mkdir()
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    data = np.stack([tone, -tone * 0.5], axis=1) if stereo else tone
    sf.write(root / "train" / "a.wav", data, sr)
    (root / "train" / "a.json").write_text(json.dumps({"description": "a tone", "bpm": 120}))
    sf.write(root / "train" / "b.flac", tone[: sr // 2], sr)
    sf.write(root / "valid" / "c.wav", tone, sr)
    sf.write(root / "valid" / "c.melody.wav", tone, sr)  # a melody stem, not an item
    return root


def test_scan_builds_manifest_once_and_reuses_it(tmp_path):
    root = _write_folder(tmp_path / "d")
    found = load_manifest(root)
    assert sorted((it.split, it.path.name) for it in found.items) == [
        ("train", "a.wav"), ("train", "b.flac"), ("valid", "c.wav")]
    assert {it.path.name: it.duration_s for it in found.items}["b.flac"] == pytest.approx(0.5)
    manifest = root / "manifest.jsonl"
    stamp = manifest.stat().st_mtime_ns
    sf.write(root / "train" / "new.wav", np.zeros(100), 16000)  # not seen: the manifest is reused
    assert len(load_manifest(root).items) == 3 and manifest.stat().st_mtime_ns == stamp


def test_crops_are_resampled_downmixed_and_padded(tmp_path):
    root = _write_folder(tmp_path / "d", stereo=True)
    ds = AudioDataset(root, "train", duration_s=1.0, sample_rate=8000, seed=1)
    assert len(ds) == 2
    by_name = {ds[i]["path"].rsplit("/", 1)[-1]: ds[i] for i in range(2)}
    a, b = by_name["a.wav"], by_name["b.flac"]
    assert a["wav"].shape == b["wav"].shape == (1, 8000)
    assert a["description"] == "a tone" and a["metadata"]["bpm"] == 120
    assert 0.0 <= a["offset_s"] <= 0.5
    # stereo [x, -x/2] downmixes to x/4: a 440 Hz tone of amplitude 0.125 (resampled to 8 kHz)
    spectrum = np.abs(np.fft.rfft(a["wav"][0].numpy()))
    assert np.argmax(spectrum) == 440 and a["wav"].abs().max() == pytest.approx(0.125, abs=0.01)
    assert b["wav"][0, 4100:].abs().max() == 0  # 0.5 s file zero-padded to 1 s
    again = AudioDataset(root, "train", duration_s=1.0, sample_rate=8000, seed=1)
    assert torch.equal(again[0]["wav"], ds[0]["wav"])
    ds.set_epoch(1)
    assert ds[0]["offset_s"] != again[0]["offset_s"]


def test_undecodable_audio_is_skipped_and_reported(tmp_path, caplog):
    root = _write_folder(tmp_path / "d")
    bad = root / "train" / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    with caplog.at_level(logging.WARNING):
        ds = AudioDataset(root, "train", duration_s=0.5, sample_rate=16000)
    assert len(ds) == 2
    assert [path for path, _ in ds.skipped] == [str(bad)]
    assert str(bad) in caplog.text
    # a file that breaks after the manifest was written is reported when read, and another is used
    (root / "train" / "a.wav").write_bytes(b"garbage")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        items = [ds[i] for i in range(len(ds))]
    assert all(it["path"].endswith("b.flac") for it in items)
    assert str(root / "train" / "a.wav") in caplog.text
    assert str(root / "train" / "a.wav") in [p for p, _ in ds.skipped]


def test_dataset_with_no_usable_files(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no usable audio in .*empty"):
        AudioDataset(empty)
    broken = tmp_path / "broken"
    (broken / "train").mkdir(parents=True)
    (broken / "train" / "x.wav").write_bytes(b"not audio")
    with pytest.raises(ValueError, match=r"skipped 1 .*x\.wav"):
        AudioDataset(broken)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        AudioDataset(tmp_path / "missing")


def test_bad_manifest_line_names_file_and_line(tmp_path):
    root = _write_folder(tmp_path / "d")
    (root / "manifest.jsonl").write_text('{"id": "a", "split": "train", "path": "train/a.wav"}\n')
    with pytest.raises(ValueError, match=r"manifest.jsonl:1: missing field\(s\) \['duration_s'"):
        AudioDataset(root)


def test_token_cache_round_trip_reuse_and_codec_key(tiny_corpus, tiny_codec, tmp_path):
    FrameQuantizer = type(tiny_codec)
    ds = AudioDataset(tiny_corpus, "train", duration_s=None, sample_rate=8000)
    folder = build_token_cache(ds, tiny_codec, tmp_path / "tok", shard_frames=300)
    cache = TokenCache(folder)
    assert len(cache) == len(ds) == 10
    assert len(cache.shards) > 1 and isinstance(cache.shards[0], np.memmap)
    for i in (0, 7):
        want = tiny_codec.encode(ds[i]["wav"][None])[0].numpy()
        np.testing.assert_array_equal(cache.codes(i), want)
        assert cache.items[i]["description"] == ds[i]["description"]
        assert "melody" not in cache.items[i]["metadata"] and "bpm" in cache.items[i]["metadata"]
    stamp = (folder / "index.json").stat().st_mtime_ns
    assert build_token_cache(ds, tiny_codec, tmp_path / "tok", shard_frames=300) == folder
    assert (folder / "index.json").stat().st_mtime_ns == stamp
    other = FrameQuantizer(seed=1)
    assert codec_digest(other) != codec_digest(tiny_codec)
    assert build_token_cache(ds, other, tmp_path / "tok") != folder
    codes, texts, metas = cache.sample_batch(3, 20, np.random.default_rng(0))
    assert codes.shape == (3, 4, 20) and codes.dtype == torch.long and len(texts) == 3
    with pytest.raises(ValueError, match="do not fit"):
        cache.sample_batch(1, 10_000, np.random.default_rng(0))
    with pytest.raises(ValueError, match="whole files"):
        build_token_cache(AudioDataset(tiny_corpus, "train", duration_s=1.0, sample_rate=8000), tiny_codec,
                          tmp_path / "tok")
