"""``bench run`` against a hostile run directory and an impatient user (issue 22): Ctrl-C, --out that
cannot be a run directory, a read-only run directory, the lock held until the report is written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.cli import main
from bench.store import RunStore
from bench.testing import TONES_SUITE

ROOT = Path(__file__).resolve().parents[2]
SLOW = TONES_SUITE.split("generators:")[0] + """generators:
  - {name: slow-noise, params: {delay_s: 0.3}}
metrics: [{name: test-distance}]
"""


def _run(suite: Path, out: Path, capsys, rc: int) -> str:
    assert main(["run", str(suite), "--out", str(out), "--no-progress"]) == rc
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_ctrl_c_says_what_is_kept_and_how_to_resume(tones, write_suite, tmp_path):
    suite = write_suite(SLOW)
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "bench.testing", "run", str(suite), "--out", str(run),
                             "--no-progress"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    store = RunStore(run)
    deadline = time.time() + 120
    while store.count_clips() < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    err = err.decode()
    assert proc.returncode == 130 and "Traceback" not in err, err
    kept = store.count_clips()
    assert (f"bench run: interrupted; kept {kept} generated clip(s) and the embeddings cached in "
            f"{run / 'cache'}; results.json, the samples table and the report were not written") in err
    assert "run the same command again to resume (only what is missing is redone)" in err
    assert not (run / "results.json").exists()


def test_out_that_is_a_file_is_one_line(tones, write_suite, capsys, plugins, tmp_path):
    blocker = tmp_path / "taken"
    blocker.write_text("not a folder")
    err = _run(write_suite(TONES_SUITE), blocker, capsys, 1)
    assert f"bench run: cannot use {blocker} as the run directory: {blocker}: File exists; choose another " \
           "--out" in err
    err = _run(write_suite(TONES_SUITE), blocker / "below", capsys, 1)
    assert f"bench run: cannot use {blocker / 'below'} as the run directory: {blocker / 'below'}: Not a " \
           "directory; choose another --out" in err
    assert blocker.read_text() == "not a folder"


def test_read_only_run_directory_is_one_line(tones, write_suite, capsys, plugins, tmp_path, monkeypatch):
    run = tmp_path / "run"
    run.mkdir()
    real_open = open

    def read_only(path, *a, **k):  # what a read-only folder does (tests may run as root)
        if str(path).startswith(str(run.resolve())) and (a[:1] or [k.get("mode", "r")])[0][0] in "aw":
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **k)
    monkeypatch.setattr("builtins.open", read_only)
    err = _run(write_suite(TONES_SUITE), run, capsys, 1)
    assert err == (f"bench run: cannot write into the run directory {run}: {run.resolve() / '.lock'}: "
                   "Permission denied; what was already cached is kept\n")


def test_lock_is_held_until_the_report_is_written(tones, write_suite, capsys, plugins, tmp_path,
                                                  monkeypatch):
    import fcntl

    import bench.report

    run = tmp_path / "run"
    seen = []
    real = bench.report.write_report

    def probe(*a, **k):
        with open(run / ".lock", "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                seen.append("free")
            except BlockingIOError:
                seen.append("held")
        return real(*a, **k)
    monkeypatch.setattr(bench.report, "write_report", probe)
    _run(write_suite(TONES_SUITE), run, capsys, 0)
    assert seen == ["held"]
    assert json.loads((run / "results.json").read_text())["records"]
    with open(run / ".lock", "a") as f:  # released at the end
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)


class _Evil:
    """A pickle that runs a command when loaded without ``weights_only``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_unsafe_checkpoint_during_run_is_refused_in_one_line(tones, write_suite, capsys, tmp_path):
    import torch

    ckpt = tmp_path / "ck"
    ckpt.mkdir()
    marker = tmp_path / "PWNED"
    for name in ("state_dict.bin", "compression_state_dict.bin"):  # an audiocraft-format folder
        torch.save({"best_state": _Evil(marker)}, ckpt / name)
    text = TONES_SUITE.split("generators:")[0] + """generators: [{name: musicgen, params: {checkpoint: ck}}]
metrics: []
report: {html: null}
"""
    err = _run(write_suite(text), tmp_path / "run", capsys, 1)
    # refused by validation, before any plan or load: the pickle's opcodes are read, never run
    assert err.startswith("bench run: 3 problem(s) in the suite:")
    for name in ("state_dict.bin", "compression_state_dict.bin"):
        assert (f"{ckpt / name}: refused: not a weights-only torch checkpoint (its pickle calls "
                "posix.system); only safetensors and weights-only torch files are read, never code") in err
    assert "plan:" not in err
    assert "weights_only=False" not in err and "weights_only` set to `False`" not in err
    assert not marker.exists()
