"""The reference-venv machinery of ``benchmarks/metrics.py --vs-reference``, without building a venv:
the runner's protocol (in-process and through a real subprocess with its numpy-only ``echo``
backend), the client's errors, the venv cache and pip failure messages (a fake interpreter stands in
for pip), and the weights files both sides read."""

from __future__ import annotations

import io
import json
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import reference_envs  # noqa: E402
from reference_client import ReferenceProcess, ReferenceRunnerError  # noqa: E402
from reference_runner import serve  # noqa: E402


def _stats(x: np.ndarray) -> np.ndarray:
    return np.stack([x.mean(1), x.std(1), x.min(1), x.max(1)], axis=1).astype(np.float32)


def _requests(*msgs: dict | str) -> io.StringIO:
    return io.StringIO("".join((m if isinstance(m, str) else json.dumps(m)) + "\n" for m in msgs))


def test_serve_embeds_files_and_reports_errors_without_stopping(tmp_path):
    x = np.random.default_rng(0).standard_normal((3, 100)).astype(np.float32)
    np.save(tmp_path / "in.npy", x)
    np.save(tmp_path / "f64.npy", x.astype(np.float64))
    calls = []

    def embed(clips):
        calls.append(clips.shape)
        return clips[:, :5] * 2.0

    out = io.StringIO()
    def ask(source: str, dest: str) -> dict:
        return {"cmd": "embed", "input": str(tmp_path / source), "output": str(tmp_path / dest)}

    serve(embed, _requests(ask("in.npy", "a.npy"), ask("f64.npy", "b.npy"), "not json", {"cmd": "fly"},
                           ask("none.npy", "c.npy"), {"cmd": "quit"}, ask("in.npy", "d.npy")), out)
    replies = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(replies) == 6 and calls == [(3, 100)]  # nothing is served after quit
    assert replies[0]["ok"] and replies[0]["shape"] == [3, 5] and replies[0]["seconds"] >= 0
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), x[:, :5] * 2.0)
    assert not replies[1]["ok"]
    assert "f64.npy: expected float32 [N, T] clips, got float64" in replies[1]["error"]
    assert not replies[2]["ok"] and "JSONDecodeError" in replies[2]["error"]
    assert not replies[3]["ok"] and "unknown command 'fly'" in replies[3]["error"]
    assert not replies[4]["ok"] and "none.npy" in replies[4]["error"]
    assert replies[5] == {"ok": True} and not (tmp_path / "d.npy").exists()


def test_runner_subprocess_round_trip_with_echo_backend():
    x = np.random.default_rng(1).uniform(-1, 1, (4, 800)).astype(np.float32)
    with ReferenceProcess(sys.executable, "echo", threads=1) as proc:
        assert proc.info["ready"] and "numpy" in proc.info["versions"]
        for clips in (x, x[:2] * 0.5):  # the process stays up between calls
            out, seconds = proc.embed(clips)
            np.testing.assert_allclose(out, _stats(clips), rtol=1e-6)
            assert 0 <= seconds < 5
        workdir = proc.workdir
    assert proc.proc.returncode == 0 and not workdir.exists()
    with pytest.raises(ValueError, match=r"expected clips \[N, T\]"):
        with ReferenceProcess(sys.executable, "echo") as proc:
            proc.embed(x[0])


def test_runner_that_cannot_load_its_reference_says_why():
    # this project's venv has no hear21passt (and, had it one, no unused.pt): the ready line says so
    with pytest.raises(ReferenceRunnerError, match="passt: the runner failed to load: (ModuleNotFoundError: "
                                                   "No module named 'hear21passt'|.*unused.pt)"):
        ReferenceProcess(sys.executable, "passt", weights="unused.pt")


def test_missing_venv_python_is_named(tmp_path):
    python = tmp_path / "hear21passt" / "bin" / "python"
    with pytest.raises(ReferenceRunnerError, match=f"no Python interpreter at {python}"):
        ReferenceProcess(python, "passt")
    with pytest.raises(reference_envs.ReferenceEnvError, match=f"hear21passt: no Python at {python}"):
        reference_envs.require_python(python.parents[1], "hear21passt")


def _fake_python(path: Path, pip_error: str) -> Path:
    """An interpreter stand-in: ``-m venv DIR`` makes DIR/bin/python, which fails every pip call."""
    path.write_text(f"""#!/bin/sh
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin"
  printf '#!/bin/sh\\necho "{pip_error}" >&2\\nexit 1\\n' > "$3/bin/python"
  chmod +x "$3/bin/python"
  exit 0
fi
exit 3
""")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_failed_install_names_the_package_and_nothing_counts_as_built(tmp_path):
    fake = _fake_python(tmp_path / "python3", "ERROR: No matching distribution found for torchaudio==2.9.1")
    logs: list[str] = []
    with pytest.raises(reference_envs.ReferenceEnvError,
                       match=r"hear21passt: pip could not install torchaudio==2\.9\.1 "
                             r"\(asked for torch==2\.9\.1 "):
        reference_envs.ensure_env("hear21passt", root=tmp_path / "envs", log=logs.append,
                                  base_python=str(fake))
    assert any("pip install" in line for line in logs)
    recipe = reference_envs.RECIPES["hear21passt"]
    assert not reference_envs.is_built(tmp_path / "envs" / "hear21passt", recipe)
    with pytest.raises(reference_envs.ReferenceEnvError, match="venv` failed"):
        reference_envs.ensure_env("laion_clap", root=tmp_path / "envs", log=logs.append,
                                  base_python=str(tmp_path / "no-such-python"))
    with pytest.raises(reference_envs.ReferenceEnvError, match="unknown reference venv 'fadtk'"):
        reference_envs.ensure_env("fadtk", root=tmp_path)


@pytest.mark.parametrize("output, expected", [
    ("ERROR: Could not find a version that satisfies the requirement laion_clap==9 (from versions: 1.1.7)\n"
     "ERROR: No matching distribution found for laion_clap==9", "laion_clap==9"),
    ("ERROR: Cannot install numpy==1.26.4 and pandas==3 because these package versions have conflicting "
     "dependencies.", "numpy==1.26.4 and pandas==3"),
    ("ERROR: something else entirely", "torch==2.9.1, timm"),
])
def test_failed_package_from_pip_output(output, expected):
    assert reference_envs.failed_package(output, ("torch==2.9.1", "timm")) == expected


def test_built_venv_is_reused_until_its_recipe_changes(tmp_path, monkeypatch):
    recipe = reference_envs.RECIPES["laion_clap"]
    env = tmp_path / "laion_clap"
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "python").write_text("")
    (env / reference_envs.MARKER).write_text(json.dumps(reference_envs._marker(recipe)))
    monkeypatch.setenv("MUSICGEN_BENCH_REFERENCE_ENVS", str(tmp_path))
    assert reference_envs.reference_envs_root() == tmp_path
    assert reference_envs.ensure_env("laion_clap", log=pytest.fail) == env / "bin" / "python"
    other = reference_envs.Recipe("laion_clap", (("laion_clap==1.1.6",),), "clap")
    monkeypatch.setitem(reference_envs.RECIPES, "laion_clap", other)
    with pytest.raises(reference_envs.ReferenceEnvError, match="venv` failed"):  # stale: rebuilt
        reference_envs.ensure_env("laion_clap", log=lambda _: None, base_python=str(tmp_path / "nope"))
    assert not env.exists()


def test_runner_check_imports_the_backend_and_exits():
    import subprocess

    done = subprocess.run([sys.executable, str(reference_envs.RUNNER), "--backend", "echo", "--check"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and json.loads(done.stdout) == {"ready": True, "checked": "echo"}
