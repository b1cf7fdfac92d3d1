"""Tiny randomly initialised models for tests: each builds in well under a second on CPU.

Every constructor takes a ``seed`` so that tests are deterministic.
"""

from __future__ import annotations


def tiny_codec(seed: int = 0, stereo: bool = False, **overrides):
    """A random ``CompressionModel`` (8 kHz, hop 32, 4 codebooks of 64, dim 16; see ``tiny_config``).

    The codebooks are filled with random entries (marked initialised) so encode/decode work at once;
    ``stereo=True`` wraps it in ``StereoCompressionModel``. Returned in eval mode.
    """
    import torch

    from musicgen.models.codec import CompressionModel, StereoCompressionModel, tiny_config

    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CompressionModel(tiny_config(**overrides))
    with torch.no_grad():
        for layer in model.quantizer.layers:
            cb = layer.codebook
            cb.embed.copy_(torch.randn(cb.embed.shape, generator=gen))
            cb.embed_avg.copy_(cb.embed)
            cb.cluster_size.fill_(1.0)
            cb.inited.fill_(1.0)
    model.eval()
    return StereoCompressionModel(model) if stereo else model
