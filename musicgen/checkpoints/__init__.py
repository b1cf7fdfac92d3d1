"""Checkpoint formats (native, audiocraft, transformers) loaded into one in-memory model.

``files`` holds what every loader shares: locating local files with clear errors and reading state
dicts safely. Format-specific loaders live beside it (``lm_*.py``, ``codec_*.py``, ...).
"""
