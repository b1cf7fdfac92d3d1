"""Embedding backbones (VGGish, PaSST, CLAP, EnCodec, synth evaluators)."""
