"""The project's own promises: the README's commands are the ones CI runs, and the packages import."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return [line.strip() for block in blocks[:2] for line in block.splitlines() if line.strip()]


def test_ci_runs_the_readme_install_and_test_commands():
    install, test = _readme_commands()[:2]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert install in ci, f"{install!r} is not a line of .ci/run"
    assert test in ci, f"{test!r} is not a line of .ci/run"
    assert "torch==2.13.0" in install.split("&&")[0], "torch must be installed first (CPU build)"


def test_packages_import_and_lazy_names_fail_clearly():
    import baselines  # noqa: F401
    import bench
    import musicgen

    assert musicgen.__version__ and bench.__version__
    try:
        musicgen.NoSuchThing  # noqa: B018
    except AttributeError as e:
        assert "NoSuchThing" in str(e)
    else:  # pragma: no cover
        raise AssertionError("unknown attribute did not raise")


def test_cli_entry_points_answer_version():
    for mod in ("musicgen", "bench"):
        out = subprocess.run([sys.executable, "-m", mod, "--version"], capture_output=True, text=True,
                             cwd=ROOT, check=True)
        assert out.stdout.startswith(mod)
