"""``bench score`` on bad input: one line naming the file, and nothing already computed lost."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.cli import main

RATE = 8000


def tones(folder: Path, n: int = 5) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(RATE) / RATE
    for i in range(n):
        sf.write(folder / f"t{i}.wav", (0.3 * np.sin(2 * np.pi * 300 * (i + 1) * t)).astype(np.float32), RATE,
                 subtype="FLOAT")
    return folder


def run(tmp: Path, gen: Path, capsys, *extra: str) -> tuple[int, str]:
    """Exit code and the error: the one line that says what is wrong (suite problems come under a
    'problem(s) in the suite' header line, one line each; the plan's size is printed before a run)."""
    capsys.readouterr()
    rc = main(["score", str(gen), "--reference", str(tmp / "ref"), "--embedder", "test-bands", "--metrics",
               "fad", "--out", str(tmp / "run"), "--no-progress", *extra])
    err = capsys.readouterr().err.strip()
    lines = [line for line in err.splitlines() if "problem(s) in the suite" not in line
             and not line.startswith("plan: ")]
    return rc, "\n".join(lines)


@pytest.fixture
def ref(tmp_path, plugins):
    tones(tmp_path / "ref")
    return tmp_path


def test_zero_byte_and_undecodable_files(ref, capsys):
    gen = tones(ref / "gen")
    (gen / "t1.wav").write_bytes(b"")
    (gen / "t2.wav").write_bytes(b"RIFF....garbage")
    rc, err = run(ref, gen, capsys)
    assert rc == 1 and len(err.splitlines()) == 1
    assert "t1.wav' is empty (0 bytes)" in err and "t2.wav' is not audio" in err


def test_nan_clip_fails_naming_it_and_keeps_what_was_read(ref, capsys):
    gen = tones(ref / "gen")
    sf.write(gen / "t2.wav", np.array([0.1, np.nan] * 100, np.float32), RATE, subtype="FLOAT")
    rc, err = run(ref, gen, capsys)
    assert rc == 1 and len(err.splitlines()) == 1 and "t2.wav' holds NaN" in err
    tones(ref / "gen")  # fixed
    assert run(ref, gen, capsys)[0] == 0
    cache = json.loads((ref / "run" / "results.json").read_text())["metadata"]["cache"]
    assert cache["clips"] == {"hits": 2, "generated": 3}  # t0 and t1 were read before t2 failed


def test_manifest_missing_file_unknown_id_and_duplicates(ref, capsys):
    gen = tones(ref / "gen")
    (gen / "manifest.csv").write_text("file,prompt_id\nt0.wav,t0\nt9.wav,t1\n")
    rc, err = run(ref, gen, capsys)
    assert rc == 1 and len(err.splitlines()) == 1
    assert "manifest.csv' line 3: file 't9.wav' does not exist" in err
    (gen / "manifest.csv").write_text("file,prompt_id\nt0.wav,t0\nt1.wav,nope\n")
    rc, err = run(ref, gen, capsys)
    assert rc == 1 and "name prompt ids the dataset does not have: nope" in err
    (gen / "manifest.csv").write_text("file,prompt_id\nt0.wav,t0\nt1.wav,t0\n")
    rc, err = run(ref, gen, capsys)
    assert rc == 1 and "line 3: prompt id 't0' seed 0 is listed twice" in err
    (gen / "manifest.csv").unlink()
    sf.write(gen / "t0.flac", np.zeros(RATE, np.float32), RATE)
    rc, err = run(ref, gen, capsys)
    assert rc == 1 and "more than one file: t0 (t0.flac and t0.wav)" in err


def test_missing_clips_fail_or_are_skipped_with_n(ref, capsys):
    gen = tones(ref / "gen")
    (gen / "t4.wav").unlink()
    rc, err = run(ref, gen, capsys)
    assert rc == 1 and "1 of 5 prompts have no clip" in err and ": t4 " in err
    rc, _ = run(ref, gen, capsys, "--allow-missing", "--out", str(ref / "run2"))
    assert rc == 0
    results = json.loads((ref / "run2" / "results.json").read_text())
    assert {r["n"] for r in results["records"]} == {4}
    proto = results["records"][0]["generator_info"]
    assert proto["n_missing"] == 1 and proto["missing"] == ["t4"]


def test_clap_without_captions_and_kl_with_stats_are_refused(ref, capsys):
    gen = tones(ref / "gen")
    capsys.readouterr()
    rc = main(["score", str(gen), "--reference", str(ref / "ref"), "--metrics", "clap_score",
               "--out", str(ref / "run")])
    assert rc == 1 and "clap_score: 5 of 5 prompts have no caption" in capsys.readouterr().err
    (ref / "caps.csv").write_text("prompt_id,caption\nt0,a\nzz,b\n")
    rc = main(["score", str(gen), "--reference", str(ref / "ref"), "--embedder", "test-bands", "--metrics",
               "fad", "--captions", str(ref / "caps.csv"), "--out", str(ref / "run")])
    assert rc == 1 and "names 1 prompt id(s) with no clip" in capsys.readouterr().err
