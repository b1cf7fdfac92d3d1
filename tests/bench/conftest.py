"""Fixtures for the harness tests: test plug-ins registered, a folder of tones, a suite writer."""

from __future__ import annotations

import textwrap
from pathlib import Path

import bench_testkit
import pytest


@pytest.fixture
def plugins():
    bench_testkit.register()
    yield bench_testkit
    bench_testkit.unregister()


@pytest.fixture
def tones(tmp_path: Path) -> Path:
    """``tmp/data/{test,train}`` with 5 and 6 tones of 1.5 s."""
    root = tmp_path / "data"
    bench_testkit.write_tones(root, n=5, split="test")
    bench_testkit.write_tones(root, n=6, split="train")
    return root


@pytest.fixture
def write_suite(tmp_path: Path):
    def write(text: str, name: str = "suite.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip())
        return path
    return write


BASIC_SUITE = """
name: tones
dataset:
  name: audio-folder
  params: {root: data, split: test}
generation:
  duration_s: 1.0
  seeds: [0]
  batch_size: 2
generators:
  - {name: reference}
  - {name: noise, params: {sample_rate: 16000}}
  - {name: silence, params: {sample_rate: 16000}}
  - name: retrieval
    params:
      train: {name: audio-folder, params: {root: data, split: train}}
metrics:
  - name: test-distance
"""
