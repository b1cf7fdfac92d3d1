"""Models: codec, LM, conditioners, sampling and the MusicGen facade."""
