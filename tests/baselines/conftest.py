"""Fixtures for the adapter tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.testing import write_tone_dataset
from tests.musicgen.audiocraft_fixture import hf_melody, hf_model, hub_cache  # noqa: F401 (fixtures)


@pytest.fixture
def tones(tmp_path: Path) -> Path:
    """``tmp/data/{test,train}`` with 5 and 6 tones of 1.5 s."""
    return write_tone_dataset(tmp_path / "data")
