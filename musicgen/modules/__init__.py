"""Building blocks: convolutions, SEANet, residual vector quantization, transformer, patterns, chroma."""
