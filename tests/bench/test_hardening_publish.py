"""Writes that stay inside the run (issue 22): outputs published as one unit, exclusive temporaries
and only ours cleaned, no write through a link, readable files, a run directory that can move."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from bench.cli import main
from bench.testing import TONES_SUITE

SYNTH = """
name: synth
dataset: {name: synthcaps, params: {split: test, num_clips: 12, seed: 0, duration_s: 1.0, sample_rate: 16000}}
generation: {duration_s: 1.0, seeds: [0]}
generators: [{name: noise, params: {sample_rate: 16000}}, {name: reference}]
metrics: [{name: test-distance}]
"""


def _run(suite: Path, run: Path, capsys, rc: int = 0) -> tuple[str, str]:
    assert main(["run", str(suite), "--out", str(run), "--no-progress"]) == rc
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return out, err


def _cache(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())["metadata"]["cache"]


def test_only_our_temporaries_are_cleaned(tones, write_suite, plugins, tmp_path, capsys):
    run = tmp_path / "run"
    theirs = [run / ".notes.tmp", run / "mine" / ".draft.txt.tmp", run / "mine" / ".x.tmp-12-abcdefgh"]
    ours = run / "cache" / "clips" / "ab" / ".abc.npz.tmp-4242-k3j9x0qa"
    for f in [*theirs, ours]:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("x")
    _run(write_suite(TONES_SUITE), run, capsys)
    assert all(f.read_text() == "x" for f in theirs) and not ours.exists()


def test_no_write_through_planted_links(tones, write_suite, plugins, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("precious")
    pid = os.getpid()  # the old temporaries were .NAME.tmp-PID: guessable
    for name in ("results.json", "samples.csv", "report.html", f".results.json.tmp-{pid}",
                 f".samples.csv.tmp-{pid}", f".report.html.tmp-{pid}"):
        (run / name).symlink_to(victim)
    _run(write_suite(TONES_SUITE), run, capsys)
    assert victim.read_text() == "precious"
    for name in ("results.json", "samples.csv", "report.html"):
        assert not (run / name).is_symlink() and (run / name).stat().st_size > 100


def test_outputs_are_readable_not_0600(tones, write_suite, plugins, tmp_path, capsys):
    old = os.umask(0o022)
    try:
        run = tmp_path / "run"
        _run(write_suite(TONES_SUITE), run, capsys)
    finally:
        os.umask(old)
    files = [run / "results.json", run / "samples.csv", run / "report.html",
             next((run / "audio").rglob("*.wav")), next((run / "cache" / "clips").rglob("*.npz"))]
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) & 0o044 == 0o044, f


def test_link_to_a_folder_outside_the_run_is_refused(tones, write_suite, plugins, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (run / "audio").symlink_to(outside)
    _, err = _run(write_suite(TONES_SUITE), run, capsys, rc=1)
    assert err == (f"bench run: error: the run directory {run.resolve()} holds a link to a folder outside "
                   f"it ({run.resolve() / 'audio'} -> {outside.resolve()}); remove the link or use another "
                   "--out\n")
    assert not any(outside.iterdir()) and not (run / "cache").exists()


def test_samples_table_of_another_run_is_refused_by_report(tones, write_suite, plugins, tmp_path, capsys):
    suite = write_suite(TONES_SUITE)
    run, other = tmp_path / "run", tmp_path / "other"
    _run(suite, run, capsys)
    _run(write_suite(TONES_SUITE.replace("duration_s: 1.0", "duration_s: 0.5"), "other.yaml"), other, capsys)
    shutil.copyfile(other / "samples.csv", run / "samples.csv")  # what a kill between the two writes leaves
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert err == (f"bench report: {run / 'samples.csv'} does not belong to the results.json beside it "
                   "(sha256 differs from metadata.samples_sha256): a run stopped between writing its "
                   "outputs; run the suite again to publish both\n")
    (run / "samples.csv").unlink()
    assert main(["report", str(run)]) == 2
    assert "samples.csv: missing, but results.json was published with it" in capsys.readouterr().err


def test_no_stale_report_beside_new_results(tones, write_suite, plugins, tmp_path, capsys, monkeypatch):
    import bench.report

    suite = write_suite(TONES_SUITE)
    run = tmp_path / "run"
    _run(suite, run, capsys)
    old_results = (run / "results.json").read_text()

    def killed(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(bench.report, "write_report", killed)
    _run(suite, run, capsys, rc=130)
    assert (run / "results.json").read_text() != old_results and not (run / "report.html").exists()


@pytest.mark.parametrize("how", ["move", "copy"])
def test_run_directory_moved_or_copied_keeps_its_cache(write_suite, plugins, tmp_path, capsys, how):
    suite = write_suite(SYNTH)
    run = tmp_path / "run"
    _run(suite, run, capsys)
    first = _cache(run)
    assert first["clips"]["hits"] == 0 and first["clips"]["generated"] > 0
    moved = tmp_path / "elsewhere" / "run2"
    moved.parent.mkdir()
    if how == "move":
        shutil.move(run, moved)
    else:
        shutil.copytree(run, moved, symlinks=True, copy_function=shutil.copy)  # new mtimes too
    _run(suite, moved, capsys)
    again = _cache(moved)
    assert again["clips"] == {"hits": first["clips"]["generated"], "generated": 0}
    assert again["embeddings"]["computed"] == 0


def test_lock_file_planted_as_a_link_is_not_followed(tones, write_suite, plugins, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    victim = tmp_path / "victim"
    (run / ".lock").symlink_to(victim)  # the target does not exist: following the link would create it
    _, err = _run(write_suite(TONES_SUITE), run, capsys, rc=1)
    assert err == (f"bench run: cannot write into the run directory {run}: {run.resolve() / '.lock'}: "
                   "Too many levels of symbolic links; what was already cached is kept\n")
    assert not victim.exists()
