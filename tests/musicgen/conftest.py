"""Fixtures for the MusicGen tests: tiny transformers MusicGen / MusicGen-Melody folders, an empty
Hugging Face cache (``tests/musicgen/audiocraft_fixture.py``)."""

from tests.musicgen.audiocraft_fixture import hf_melody, hf_model, hub_cache  # noqa: F401 (fixtures)
