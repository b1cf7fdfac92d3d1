"""Fixtures for the harness tests: test plug-ins registered, a folder of tones, a suite writer."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bench import testing as bench_testkit


@pytest.fixture
def plugins():
    bench_testkit.register()
    yield bench_testkit
    bench_testkit.unregister()


@pytest.fixture
def tones(tmp_path: Path) -> Path:
    """``tmp/data/{test,train}`` with 5 and 6 tones of 1.5 s."""
    return bench_testkit.write_tone_dataset(tmp_path / "data")


@pytest.fixture
def write_suite(tmp_path: Path):
    def write(text: str, name: str = "suite.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip())
        return path
    return write
