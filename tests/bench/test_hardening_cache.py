"""A cache that cannot lie (issue 22): damaged, truncated, empty or misplaced cache entries are
recomputed and counted, never used, and the scores equal a fresh run's."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from bench.api import AudioClip
from bench.cache_entry import DamagedEntry, pack_clip, unpack_clip
from bench.cli import main
from bench.store import RunStore
from bench.testing import TONES_SUITE


def _run(suite: Path, run: Path, capsys) -> dict:
    assert main(["run", str(suite), "--out", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    return json.loads((run / "results.json").read_text())


def _values(results: dict) -> list[tuple[str, str, float, int]]:
    return [(r["generator"], r["metric"], r["value"], r["n"]) for r in results["records"]]


@pytest.fixture
def first(tones, write_suite, plugins, tmp_path, capsys):
    suite = write_suite(TONES_SUITE)
    run = tmp_path / "run"
    return suite, run, _run(suite, run, capsys)


def _files(run: Path, kind: str) -> list[Path]:
    return sorted((run / "cache" / kind).glob("*/*.npz"))


def _rewrite(path: Path, change) -> None:
    """Rewrite an entry's members (``change`` edits the dict) keeping its stored key and digest."""
    with np.load(path) as z:
        members = {k: z[k] for k in z.files}
    change(members)
    buf = io.BytesIO()
    np.savez(buf, **members)
    path.write_bytes(buf.getvalue())


def test_changed_embedding_is_recomputed_not_used(first, capsys):
    suite, run, fresh = first
    emb = _files(run, "embeddings")
    _rewrite(emb[0], lambda m: m.update(array=m["array"] + 1.0))  # consistent zip, content changed
    data = bytearray(emb[1].read_bytes())
    data[len(data) // 2] ^= 0xFF  # a flipped byte: the zip's CRC fails
    emb[1].write_bytes(bytes(data))
    again = _run(suite, run, capsys)
    assert _values(again) == _values(fresh)
    assert again["metadata"]["cache"]["embeddings"]["damaged"] == 2
    lines = again["metadata"]["damaged_cache_entries"]["embeddings"]
    assert f"cache file {emb[0].resolve()}: its content does not match its digest" in lines
    assert any(line.startswith(f"cache file {emb[1].resolve()} cannot be read (") for line in lines)


def test_clip_copied_under_another_key_is_regenerated(first, capsys):
    suite, run, fresh = first
    clips = _files(run, "clips")
    shutil.copyfile(clips[0], clips[1])  # a valid clip file under another key
    again = _run(suite, run, capsys)
    assert _values(again) == _values(fresh)
    assert again["metadata"]["cache"]["clips"] == {"hits": 19, "generated": 1, "damaged": 1}
    [line] = again["metadata"]["damaged_cache_entries"]["clips"]
    assert line.startswith(f"cache file {clips[1].resolve()} was written under another key (")


@pytest.mark.parametrize("damage", ["truncated", "empty", "crc", "not a zip"])
def test_truncated_empty_or_crc_damaged_clip_is_recomputed(first, capsys, damage):
    suite, run, fresh = first
    clip = _files(run, "clips")[3]
    data = clip.read_bytes()
    if damage == "truncated":
        clip.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        clip.write_bytes(b"")
    elif damage == "crc":
        with zipfile.ZipFile(clip) as z:
            offset = z.getinfo("wav.npy").header_offset + 200
        clip.write_bytes(data[:offset] + bytes([data[offset] ^ 1]) + data[offset + 1:])
    else:
        clip.write_bytes(b"\x93NUMPY" + data[6:60])
    assert main(["run", str(suite), "--out", str(run), "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    assert "damaged cache entries recomputed (not used): 1 clips" in out
    again = json.loads((run / "results.json").read_text())
    assert _values(again) == _values(fresh)
    assert again["metadata"]["cache"]["clips"] == {"hits": 19, "generated": 1, "damaged": 1}


def test_entry_promising_another_prompt_or_seed_is_refused(tmp_path):
    store = RunStore(tmp_path / "run")
    clip = AudioClip(np.zeros((1, 100), np.float32), 8000, "p1", 3)
    store.save_clip("ab" * 32, clip)
    assert store.load_clip("ab" * 32, "p1", 3) is not None
    assert store.load_clip("ab" * 32, "p2", 3) is None  # removed and counted
    assert store.damaged == {"clips": [f"cache file {store.root}/cache/clips/ab/{'ab' * 32}.npz holds prompt "
                                       "'p1' seed 3, not prompt 'p2' seed 3"]}
    assert not store.has_clip("ab" * 32)
    path = tmp_path / "x.npz"
    path.write_bytes(pack_clip("k", clip))
    with pytest.raises(DamagedEntry, match="holds prompt 'p1' seed 3, not prompt 'p1' seed 4"):
        unpack_clip(path, "k", "p1", 4)
    assert unpack_clip(path, "k", "p1", 3).wav.shape == (1, 100)


def test_damaged_reference_tokens_are_recomputed(tmp_path):
    store = RunStore(tmp_path / "run")
    store.save_array("tokens", "cd" * 32, np.arange(6).reshape(2, 3))
    f = store.root / "cache" / "tokens" / "cd" / f"{'cd' * 32}.npz"
    np.testing.assert_array_equal(store.load_array("tokens", "cd" * 32), np.arange(6).reshape(2, 3))
    f.write_bytes(f.read_bytes()[:40])
    assert store.load_array("tokens", "cd" * 32) is None and not f.exists()
    assert len(store.damaged["tokens"]) == 1
