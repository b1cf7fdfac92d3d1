"""``docs/EXTENDING.md`` runs: each example's code blocks are executed in a fresh interpreter, as the
guide says (a block for a file that exists runs inside that module, a new file becomes that module,
the test file's ``test_*`` functions are called with a temporary folder). Nothing is written into
the repository."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "EXTENDING.md"
FENCE = re.compile(r"^```python example=(\S+) file=(\S+)\n(.*?)^```$", re.S | re.M)

RUNNER = r"""
import importlib, json, pathlib, sys, tempfile, types

root, blocks = pathlib.Path(sys.argv[1]), json.loads(sys.argv[2])
for path, code in blocks:
    dotted = path[:-3].replace("/", ".").removesuffix(".__init__")
    if path.startswith("tests/"):
        namespace = {"__name__": dotted}
    elif (root / path).is_file():  # lines added to an existing module
        namespace = importlib.import_module(dotted).__dict__
    else:  # a new module of a package
        module = types.ModuleType(dotted)
        module.__file__ = str(root / path)
        sys.modules[dotted] = module
        parent, _, leaf = dotted.rpartition(".")
        setattr(importlib.import_module(parent), leaf, module)
        namespace = module.__dict__
    exec(compile(code, f"docs/EXTENDING.md ({path})", "exec"), namespace)
    for name, fn in list(namespace.items()):
        if path.startswith("tests/") and name.startswith("test_") and callable(fn):
            with tempfile.TemporaryDirectory() as tmp:
                fn(pathlib.Path(tmp))
            print("passed", name)
"""


def examples() -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for example, path, code in FENCE.findall(GUIDE.read_text(encoding="utf-8")):
        out.setdefault(example, []).append((path, code))
    return out


def test_the_guide_has_five_examples_each_with_at_most_two_source_files_and_a_test():
    found = examples()
    assert list(found) == ["metric", "generator", "pattern", "embedder", "section"]
    for example, blocks in found.items():
        sources = {p for p, _ in blocks if not p.startswith("tests/")}
        tests = [p for p, _ in blocks if p.startswith("tests/")]
        assert 1 <= len(sources) <= 2 and len(tests) == 1, (example, sources, tests)
        assert all((ROOT / p).parent.is_dir() for p, _ in blocks), example  # real places in the tree
        assert not (ROOT / tests[0]).exists(), f"{tests[0]} is in the repository: the guide would shadow it"


@pytest.mark.parametrize("example", ["metric", "generator", "pattern", "embedder", "section"])
def test_example_runs(example):
    blocks = examples()[example]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(ROOT), json.dumps(blocks)], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("passed test_") == 1, proc.stdout
