"""The benchmark's side of ``reference_runner.py``: one persistent runner process per reference.

``ReferenceProcess(python, backend, weights, threads)`` starts ``reference_runner.py`` with the
reference venv's interpreter, waits for its ``ready`` line (its start-up and model load are never
timed), then ``embed(clips)`` writes the float32 ``[N, T]`` clips to a ``.npy`` file, asks the
runner to embed them and returns ``(outputs [N, D], seconds)``, ``seconds`` being the runner's own
wall time of the reference call, its front end included and the file transfer excluded (our side is
timed around ``embed_batch``, front end included, with nothing to transfer). The process stays
alive between calls, so rounds can alternate with our in-process embedder; ``close()`` (or leaving
the ``with`` block) ends it.

The runner's stderr (whatever the reference prints, tracebacks) goes to ``runner-stderr.log`` in
the work folder; every error raised here (``ReferenceRunnerError``) carries its last lines.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from reference_envs import OFFLINE, RUNNER


class ReferenceRunnerError(RuntimeError):
    """The runner could not start, load its reference, or answer a request."""


class ReferenceProcess:
    def __init__(self, python: str | Path, backend: str, weights: str | Path | None = None,
                 threads: int = 1, workdir: str | Path | None = None, timeout_s: float = 900.0) -> None:
        python = Path(python)
        if not python.is_file():
            raise ReferenceRunnerError(f"{backend}: no Python interpreter at {python} (is the reference "
                                       "venv built? benchmarks/metrics.py --vs-reference builds it)")
        self.backend = backend
        self.timeout_s = timeout_s
        self._tmp = tempfile.TemporaryDirectory(prefix=f"ref-{backend}-") if workdir is None else None
        self.workdir = Path(workdir if workdir is not None else self._tmp.name)
        self.stderr_path = self.workdir / "runner-stderr.log"
        cmd = [str(python), str(RUNNER), "--backend", backend, "--threads", str(threads)]
        if weights is not None:
            cmd += ["--weights", str(weights)]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), **OFFLINE}
        env.pop("PYTHONPATH", None)  # the venv's own packages only, never this checkout's
        self._stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                     text=True, env=env, cwd=self.workdir)
        try:
            ready = self._reply("start-up")
        except ReferenceRunnerError:
            self.close()
            raise
        if not ready.get("ready"):
            message = f"{backend}: the runner failed to load: {ready.get('error')}{self._stderr_tail()}"
            self.close()
            raise ReferenceRunnerError(message)
        self.info = ready
        self._calls = 0

    def _stderr_tail(self, lines: int = 8) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return (" | runner stderr: " + " | ".join(text[-lines:])) if text else ""

    def _reply(self, what: str) -> dict:
        out = self.proc.stdout
        ready, _, _ = select.select([out], [], [], self.timeout_s)
        if not ready:
            self.proc.kill()
            raise ReferenceRunnerError(f"{self.backend}: no answer to {what} within {self.timeout_s:.0f} s"
                                       f"{self._stderr_tail()}")
        line = out.readline()
        if not line:
            code = self.proc.wait()
            raise ReferenceRunnerError(f"{self.backend}: the runner exited (code {code}) during {what}"
                                       f"{self._stderr_tail()}")
        try:
            return json.loads(line)
        except ValueError:
            raise ReferenceRunnerError(
                f"{self.backend}: unreadable answer to {what}: {line[:200]!r}") from None

    def _send(self, msg: dict, what: str) -> dict:
        if self.proc.poll() is not None:
            raise ReferenceRunnerError(f"{self.backend}: the runner is not running "
                                       f"(code {self.proc.returncode}){self._stderr_tail()}")
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        return self._reply(what)

    def embed(self, clips: np.ndarray) -> tuple[np.ndarray, float]:
        """float32 ``[N, T]`` clips -> (reference outputs ``[N, D]``, seconds of the reference call)."""
        clips = np.ascontiguousarray(clips, dtype=np.float32)
        if clips.ndim != 2:
            raise ValueError(f"{self.backend}: expected clips [N, T], got shape {list(clips.shape)}")
        self._calls += 1
        src, dst = self.workdir / f"in-{self._calls}.npy", self.workdir / f"out-{self._calls}.npy"
        np.save(src, clips)
        reply = self._send({"cmd": "embed", "input": str(src), "output": str(dst)}, "embed")
        src.unlink(missing_ok=True)
        if not reply.get("ok"):
            raise ReferenceRunnerError(f"{self.backend}: embed failed: {reply.get('error')}"
                                       f"{self._stderr_tail(4)}")
        out = np.load(dst)
        dst.unlink(missing_ok=True)
        return out, float(reply["seconds"])

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        self._stderr.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> ReferenceProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
