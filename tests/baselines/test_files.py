"""The ``files`` generator and the clip-folder readers: matching, formats, length policy, bad input."""

from __future__ import annotations

import json
import string
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from baselines.files import FilesGenerator
from bench.api import Context, Prompt
from bench.clipfiles import ClipFilesError, read_manifest, scan


def prompts(*ids: str) -> list[Prompt]:
    return [Prompt(id=i, text=f"caption {i}") for i in ids]


def write(path: Path, wav: np.ndarray, sr: int, **kw) -> Path:
    sf.write(path, wav.T if wav.ndim == 2 else wav, sr, **kw)
    return path


def gen(root: Path, **params) -> FilesGenerator:
    context = Context(cache_dir=root.parent / "cache")
    return FilesGenerator(FilesGenerator.Params(root=root, **params), context)


def test_stems_formats_rates_and_channels(tmp_path):
    root = tmp_path / "gen"
    root.mkdir()
    t = np.arange(16000) / 16000
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 660 * t)]).astype(np.float32)
    write(root / "a.wav", stereo, 16000, subtype="FLOAT")
    write(root / "b.flac", stereo[0] * 0.5, 8000)
    write(root / "c.ogg", stereo[1], 22050)
    g = gen(root, sample_rate=16000)
    assert g.check() == []
    kept = g.plan_prompts(prompts("a", "b", "c"), [0], ["a", "b", "c"])
    clips = g.generate(kept, 0, 1.0)
    assert [c.prompt_id for c in clips] == ["a", "b", "c"]
    assert clips[0].wav.shape == (2, 16000)  # channels kept; exact samples of a float WAV
    np.testing.assert_array_equal(clips[0].wav, stereo)
    assert all(c.sample_rate == 16000 for c in clips)
    assert clips[1].wav.shape == (1, 16000)  # 2 s at 8 kHz, resampled to 16 kHz and cut to 1 s
    assert "mean of the channels" in g.describe(1.0)["channels"]


def test_manifest_csv_and_jsonl_with_seeds(tmp_path):
    root = tmp_path / "gen"
    (root / "sub").mkdir(parents=True)
    for name in ("x.wav", "sub/y.wav", "z.wav"):
        write(root / name, np.full(800, 0.1, np.float32), 8000)
    (root / "manifest.csv").write_text("file,prompt_id,seed,caption\nx.wav,p1,0,hello\nsub/y.wav,p2,,\n"
                                       "z.wav,p1,1,again\n")
    entries = {(e.prompt_id, e.seed): e for e in scan(root)}
    assert set(entries) == {("p1", 0), ("p2", 0), ("p1", 1)}
    assert entries[("p1", 0)].caption == "hello" and entries[("p2", 0)].caption is None
    (root / "manifest.csv").unlink()
    lines = [{"file": "x.wav", "prompt_id": "p1"},
             {"file": str(root / "z.wav"), "prompt_id": "p2", "seed": 3}]
    (root / "manifest.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    entries = {(e.prompt_id, e.seed): e.path.name for e in scan(root)}
    assert entries == {("p1", 0): "x.wav", ("p2", 3): "z.wav"}


@pytest.mark.parametrize("policy,length,expect", [("crop", 1200, 1000), ("crop", 600, 600),
                                                   ("pad", 600, 1000), ("refuse", 1000, 1000)])
def test_length_policy(tmp_path, policy, length, expect):
    root = tmp_path / "gen"
    root.mkdir()
    write(root / "a.wav", np.full(length, 0.25, np.float32), 1000, subtype="FLOAT")
    clip = gen(root, length=policy).generate(prompts("a"), 0, 1.0)[0]
    assert clip.wav.shape == (1, expect)
    assert np.all(clip.wav[0, :min(length, expect)] == 0.25) and np.all(clip.wav[0, length:] == 0)


def test_refuse_names_the_file(tmp_path):
    root = tmp_path / "gen"
    root.mkdir()
    write(root / "a.wav", np.zeros(900, np.float32), 1000)
    with pytest.raises(ValueError, match=r"a\.wav.*0\.900 s.*1 s.*refuse"):
        gen(root, length="refuse").generate(prompts("a"), 0, 1.0)


def test_missing_unknown_and_allow_missing(tmp_path):
    root = tmp_path / "gen"
    root.mkdir()
    for i in ("a", "b"):
        write(root / f"{i}.wav", np.zeros(100, np.float32), 1000)
    with pytest.raises(ValueError, match=r"1 of 3 prompts have no clip.*: c \(set allow_missing"):
        gen(root).plan_prompts(prompts("a", "b", "c"), [0], ["a", "b", "c"])
    g = gen(root, allow_missing=True)
    assert [p.id for p in g.plan_prompts(prompts("a", "b", "c"), [0], ["a", "b", "c"])] == ["a", "b"]
    assert g.describe(1.0)["n_missing"] == 1 and g.describe(1.0)["missing"] == ["c"]
    with pytest.raises(ValueError, match=r"name prompt ids the dataset does not have: b \(set allow_unknown"):
        gen(root).plan_prompts(prompts("a"), [0], ["a", "c"])
    lenient = gen(root, allow_unknown=True)
    assert [p.id for p in lenient.plan_prompts(prompts("a"), [0], ["a", "c"])] == ["a"]
    assert lenient.describe(1.0)["n_unknown_ignored"] == 1


def test_bad_files_are_named_by_check(tmp_path):
    root = tmp_path / "gen"
    root.mkdir()
    write(root / "good.wav", np.zeros(100, np.float32), 1000)
    (root / "empty.wav").write_bytes(b"")
    (root / "junk.flac").write_bytes(b"not audio at all")
    [line] = gen(root).check()
    assert "2 undecodable" in line and "empty.wav' is empty (0 bytes)" in line and "junk.flac" in line
    assert "does not exist" in gen(tmp_path / "absent").check()[0]


def test_nan_clip_is_named(tmp_path):
    root = tmp_path / "gen"
    root.mkdir()
    write(root / "a.wav", np.array([0.0, np.nan, 0.1], np.float32), 1000, subtype="FLOAT")
    with pytest.raises(ValueError, match=r"a\.wav' holds NaN"):
        gen(root).generate(prompts("a"), 0, 1.0)


def test_duplicates_and_manifest_errors(tmp_path):
    root = tmp_path / "gen"
    root.mkdir()
    write(root / "a.wav", np.zeros(100, np.float32), 1000)
    write(root / "a.flac", np.zeros(100, np.float32), 1000)
    with pytest.raises(ClipFilesError, match=r"more than one file: a \(a\.flac and a\.wav\)"):
        scan(root)
    m = tmp_path / "m.csv"
    m.write_text("file,prompt_id\ngen/a.wav,p\ngen/a.flac,p\n")
    twice = r"m\.csv' line 3: prompt id 'p' seed 0 is listed twice \(also at line 2\)"
    with pytest.raises(ClipFilesError, match=twice):
        read_manifest(m)
    m.write_text("file,prompt_id\ngen/none.wav,p\n")
    with pytest.raises(ClipFilesError, match=r"line 2: file 'gen/none.wav' does not exist"):
        read_manifest(m)
    m.write_text("file,prompt_id,seed\ngen/a.wav,p,x\n")
    with pytest.raises(ClipFilesError, match=r"line 2: 'seed' must be an integer"):
        read_manifest(m)


def test_clip_identity_follows_file_content(tmp_path):
    root = tmp_path / "gen"
    root.mkdir()
    write(root / "a.wav", np.zeros(100, np.float32), 1000)
    write(root / "b.wav", np.zeros(100, np.float32), 1000)
    before = {i: gen(root).clip_identity(Prompt(i, ""), 0) for i in "ab"}
    write(root / "a.wav", np.full(100, 0.5, np.float32), 1000)
    after = {i: gen(root).clip_identity(Prompt(i, ""), 0) for i in "ab"}
    assert after["a"] != before["a"] and after["b"] == before["b"]


_cell = st.text(alphabet=string.printable, max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.fixed_dictionaries({}, optional={"file": _cell, "prompt_id": _cell, "seed": _cell,
                                                         "caption": _cell}), max_size=5),
       as_csv=st.booleans(), raw=st.binary(max_size=40))
def test_manifest_reader_never_crashes(tmp_path, rows, as_csv, raw):
    """Whatever a manifest holds, the reader returns entries or raises ClipFilesError (one line)."""
    write(tmp_path / "a.wav", np.zeros(10, np.float32), 1000)
    path = tmp_path / ("m.csv" if as_csv else "m.jsonl")
    if as_csv:
        import csv
        import io

        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=["file", "prompt_id", "seed", "caption"])
        w.writeheader()
        w.writerows(rows)
        path.write_bytes(buf.getvalue().encode() + raw)
    else:
        path.write_bytes(b"\n".join(json.dumps(r).encode() for r in rows) + raw)
    try:
        entries = read_manifest(path)
    except ClipFilesError as e:
        assert "\n" not in str(e).strip() or "line" in str(e)
        return
    assert len({(e.prompt_id, e.seed) for e in entries}) == len(entries)
    assert all(e.path.is_file() for e in entries)
