"""The run store: paths stay inside the run directory, writes are atomic, keys change with content."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from bench.api import AudioClip, Prompt
from bench.store import PathEscapeError, RunStore, atomic_write_bytes, audio_digest, clip_key, embedding_key


def test_paths_cannot_escape(tmp_path):
    store = RunStore(tmp_path / "run")
    assert store.path("a/b.wav") == (tmp_path / "run" / "a" / "b.wav").resolve()
    for bad in ["../x", "a/../../x", "/etc/passwd", "~/x"]:
        with pytest.raises(PathEscapeError):
            store.path(bad)
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", tmp_path / "run" / "link")
    with pytest.raises(PathEscapeError, match="outside the run directory"):
        store.write_json("link/results.json", {})
    assert not (tmp_path / "outside" / "results.json").exists()


def test_atomic_write_leaves_no_temporary_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"old")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_clip_round_trip_and_keys(tmp_path):
    store = RunStore(tmp_path / "run")
    rng = np.random.default_rng(0)
    clip = AudioClip(rng.standard_normal((2, 100)).astype(np.float32), 8000, "p1", 3,
                     tokens=np.arange(8).reshape(2, 4), meta={"retrieved_id": "x"})
    prompt = Prompt("p1", "a calm piano")
    key = clip_key("fp", prompt, 3, 1.0)
    assert not store.has_clip(key)
    store.save_clip(key, clip)
    back = store.load_clip(key)
    np.testing.assert_array_equal(back.wav, clip.wav)
    np.testing.assert_array_equal(back.tokens, clip.tokens)
    assert (back.sample_rate, back.prompt_id, back.seed, back.meta) == (8000, "p1", 3, {"retrieved_id": "x"})
    others = {clip_key("fp2", prompt, 3, 1.0), clip_key("fp", prompt, 4, 1.0),
              clip_key("fp", prompt, 3, 2.0), clip_key("fp", Prompt("p1", "a calm piano!"), 3, 1.0)}
    assert key not in others and len(others) == 4
    assert clip_key("fp", Prompt("p1", "a calm piano"), 3, 1.0) == key


def test_reference_file_change_invalidates_the_key(tmp_path):
    f = tmp_path / "ref.wav"
    f.write_bytes(b"1")
    k1 = clip_key("fp", Prompt("p", "t", reference_path=f), 0, 1.0)
    f.write_bytes(b"22")
    assert clip_key("fp", Prompt("p", "t", reference_path=f), 0, 1.0) != k1


def test_embedding_key_depends_on_every_part():
    a = np.zeros(10, np.float32)
    d = audio_digest(a, 16000)
    assert d != audio_digest(a, 8000) and d != audio_digest(a + 1e-3, 16000)
    base = embedding_key("vggish", "1", 16000, "abc", {}, d)
    variants = [embedding_key("passt", "1", 16000, "abc", {}, d),
                embedding_key("vggish", "2", 16000, "abc", {}, d),
                embedding_key("vggish", "1", 32000, "abc", {}, d),
                embedding_key("vggish", "1", 16000, "abd", {}, d),
                embedding_key("vggish", "1", 16000, "abc", {"pca": True}, d)]
    assert base not in variants and len(set(variants)) == 5


def test_written_audio_is_readable(tmp_path):
    import soundfile as sf

    store = RunStore(tmp_path)
    wav = np.stack([np.linspace(-1, 1, 800), np.zeros(800)]).astype(np.float32)
    p = store.write_audio("audio/x.wav", wav, 8000)
    data, sr = sf.read(p, always_2d=True)
    assert sr == 8000 and data.shape == (800, 2)
    np.testing.assert_allclose(data.T, wav, atol=1 / 32767 + 1e-6)
    assert isinstance(p, Path)


def test_lock_refuses_a_second_run_and_clears_stale_temporaries(tmp_path):
    stale = tmp_path / "run" / "cache" / "clips" / "ab" / ".abc.npz.tmp-123-x1y2z3w4"  # an atomic write's
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half")
    first = RunStore(tmp_path / "run")
    first.lock()
    assert not stale.exists()
    with pytest.raises(RuntimeError, match="another bench run is using"):
        RunStore(tmp_path / "run").lock()
    first._lock_file.close()  # what process exit does
    RunStore(tmp_path / "run").lock()
