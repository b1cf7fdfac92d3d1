"""Virtual environments for the reference packages that cannot install beside this project.

hear21passt imports torchaudio (its front end uses ``torchaudio.compliance.kaldi``), and torchaudio's
releases stopped at 2.11 with a pinned torch, which does not load under our torch 2.13; laion_clap
1.1.7 pins ``numpy < 2`` and imports torchvision at import time. Each runs in its own venv, created
once by ``ensure_env`` under ``reference_envs_root()`` (``~/.cache/musicgen-bench/reference-envs/<name>``,
or ``$MUSICGEN_BENCH_REFERENCE_ENVS``), reused while its recipe is unchanged, redone with
``rebuild=True`` (``benchmarks/metrics.py --vs-reference --rebuild-envs``).

A venv counts as built only when its marker file holds the recipe it was built from; the marker is
written after the installs and an import check succeed, so a half-built venv is rebuilt. pip runs
with the machine's own configuration (its registries, find-links and constraint file): nothing else
is reached. A failed install raises ``ReferenceEnvError`` naming the recipe, the package pip could
not install and pip's last lines.

Recipes (Python 3.11, x86_64; PyPI's Linux x86_64 torch wheels are CUDA builds, so each venv carries
the CUDA libraries although only the CPU is used):
- ``hear21passt``: torch 2.9.1 + torchvision 0.24.1 (timm's) + torchaudio 2.9.1, timm 1.0.31,
  hear21passt 0.0.26;
- ``laion_clap``: torch 2.14.1 + torchvision 0.29.1, numpy 1.26.4, transformers 5.25.0, laion_clap
  1.1.7 (torchaudio is optional for it: imported inside ``try``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

MARKER = "musicgen-bench-recipe.json"
RUNNER = Path(__file__).resolve().parent / "reference_runner.py"
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONNOUSERSITE": "1"}


@dataclass(frozen=True)
class Recipe:
    """What one reference venv holds: pip requirement lines (installed in order, one pip call per
    group), and the ``reference_runner.py`` backend whose ``--check`` (the reference imported
    offline, as a run imports it) must pass afterwards."""

    name: str
    groups: tuple[tuple[str, ...], ...]
    backend: str

    def packages(self) -> list[str]:
        return [p for g in self.groups for p in g]


RECIPES: dict[str, Recipe] = {
    "hear21passt": Recipe(
        name="hear21passt",
        groups=(("torch==2.9.1", "torchvision==0.24.1", "torchaudio==2.9.1"),
                ("timm==1.0.31", "hear21passt==0.0.26")),
        backend="passt"),
    "laion_clap": Recipe(
        name="laion_clap",
        groups=(("torch==2.14.1", "torchvision==0.29.1", "numpy==1.26.4"),
                ("laion_clap==1.1.7", "transformers==5.25.0", "numpy==1.26.4")),
        backend="clap"),
}


class ReferenceEnvError(RuntimeError):
    """A reference venv could not be built or used; the message says which package and why."""


def reference_envs_root() -> Path:
    env = os.environ.get("MUSICGEN_BENCH_REFERENCE_ENVS")
    return Path(env) if env else Path.home() / ".cache" / "musicgen-bench" / "reference-envs"


def env_python(env_dir: Path) -> Path:
    return env_dir / "bin" / "python"


def require_python(env_dir: Path, name: str) -> Path:
    """The venv's interpreter, or a ``ReferenceEnvError`` that says how to build the venv."""
    python = env_python(env_dir)
    if not python.is_file():
        raise ReferenceEnvError(f"{name}: no Python at {python}: the reference venv is not built (run "
                                "benchmarks/metrics.py --vs-reference, or add --rebuild-envs)")
    return python


def _marker(recipe: Recipe) -> dict:
    """What the marker file holds, as read back from JSON (tuples become lists)."""
    return json.loads(json.dumps({"recipe": asdict(recipe), "python": sys.version.split()[0]}))


def is_built(env_dir: Path, recipe: Recipe) -> bool:
    try:
        return json.loads((env_dir / MARKER).read_text()) == _marker(recipe)
    except (OSError, ValueError):
        return False


_PIP_FAILED = (re.compile(r"No matching distribution found for (\S+)"),
               re.compile(r"Could not find a version that satisfies the requirement (\S+)"),
               re.compile(r"Cannot install (.+?) because"),
               re.compile(r"Failed to build (\S+)"),
               re.compile(r"ERROR: Could not install packages due to an? (\S+)"))


def failed_package(pip_output: str, requested: tuple[str, ...]) -> str:
    """The package pip names in its error, else the requested ones (joined)."""
    for pattern in _PIP_FAILED:
        m = pattern.search(pip_output)
        if m:
            return m.group(1).strip()
    return ", ".join(requested)


def _run(cmd: list[str], log: Callable[[str], None], timeout_s: float = 3600.0,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    log("  $ " + " ".join(cmd))
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                              env={**os.environ, "PIP_NO_INPUT": "1", **(env or {})})
    except OSError as e:  # the interpreter itself is missing or not executable
        return subprocess.CompletedProcess(cmd, 127, "", f"{type(e).__name__}: {e}")
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(cmd, 124, "", f"no result within {timeout_s:.0f} s: "
                                           f"{(e.stderr or b'')[-2000:]!r}")


def _size_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink()) / 2**20


def ensure_env(name: str, root: Path | None = None, rebuild: bool = False,
               log: Callable[[str], None] = print, base_python: str | None = None) -> Path:
    """The Python of the reference venv ``name``, built first when missing, stale or ``rebuild``.

    Prints what it installs and how long it took; raises ``ReferenceEnvError`` on any failure."""
    if name not in RECIPES:
        raise ReferenceEnvError(f"unknown reference venv {name!r}; known: {sorted(RECIPES)}")
    recipe = RECIPES[name]
    env_dir = (root or reference_envs_root()) / name
    if not rebuild and is_built(env_dir, recipe):
        return require_python(env_dir, name)
    if env_dir.exists():
        shutil.rmtree(env_dir)
    env_dir.parent.mkdir(parents=True, exist_ok=True)
    log(f"[reference venv {name}] building {env_dir}: {' '.join(recipe.packages())}")
    t0 = time.perf_counter()
    base = base_python or getattr(sys, "_base_executable", None) or sys.executable
    done = _run([base, "-m", "venv", str(env_dir)], log)
    if done.returncode != 0:
        raise ReferenceEnvError(f"{name}: `{base} -m venv` failed: {_tail(done.stderr or done.stdout)}")
    python = env_python(env_dir)
    for group in recipe.groups:
        t = time.perf_counter()
        done = _run([str(python), "-m", "pip", "install", "--quiet", *group], log)
        if done.returncode != 0:
            out = done.stderr + done.stdout
            raise ReferenceEnvError(f"{name}: pip could not install {failed_package(out, group)} "
                                    f"(asked for {' '.join(group)}): {_tail(out)}")
        log(f"  installed in {time.perf_counter() - t:.0f} s")
    check = [str(python), str(RUNNER), "--backend", recipe.backend, "--check"]
    done = _run(check, log, timeout_s=600.0, env=OFFLINE)
    if done.returncode != 0:
        raise ReferenceEnvError(f"{name}: installed, but importing it offline fails "
                                f"(`{' '.join(check[1:])}`): {_tail(done.stderr + done.stdout)}")
    freeze = _run([str(python), "-m", "pip", "freeze"], log).stdout
    (env_dir / "pip-freeze.txt").write_text(freeze)
    (env_dir / MARKER).write_text(json.dumps(_marker(recipe), indent=1))
    log(f"[reference venv {name}] built in {time.perf_counter() - t0:.0f} s, "
        f"{_size_mb(env_dir) / 1024:.1f} GiB, {len(freeze.splitlines())} packages "
        f"(list: {env_dir / 'pip-freeze.txt'})")
    return python


def _tail(text: str, lines: int = 6) -> str:
    kept = [ln for ln in text.strip().splitlines() if ln.strip() and "is ignored: it is neither" not in ln]
    return " | ".join(kept[-lines:]) or "(no output)"
