"""Checkpoint formats (native, audiocraft, transformers) read into the parts of one in-memory model.

Readers return parts and the model classes assemble them, so nothing here imports a facade:
``codec_formats.read_codec`` -> ``CodecParts`` (config + weights) for ``CompressionModel.from_pretrained``;
``musicgen_formats.read_musicgen`` -> ``MusicGenParts`` (LM, codec, conditioners, settings) for
``MusicGen.from_pretrained`` / ``MusicGen.from_parts``. LMs (``lm_native``, ``lm_transformers``,
``lm_audiocraft``) and text conditioners (``text_native``) load as modules of ``musicgen.models``.

``files`` holds what every reader and writer shares: locating local files with clear errors, reading
state dicts safely, strict loading, digests and atomic writes.
"""
