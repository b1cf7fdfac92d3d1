"""Tiny randomly initialised models for tests: each builds in well under a second on CPU.

Every constructor takes a ``seed`` so that tests are deterministic.
"""

from __future__ import annotations


# --- language model (musicgen.models.lm) -------------------------------------------------------------
def tiny_lm(seed: int = 0, **overrides):
    """A tiny random :class:`musicgen.models.lm.LMModel` (preset ``tiny``: dim 32, 2 layers, card 16).

    Weights are drawn with a larger spread than PyTorch's defaults so that greedy decoding is not
    dominated by ties and logits vary across steps.
    """
    import torch

    from musicgen.models.lm import LMModel, lm_config

    preset = overrides.pop("preset", "tiny")
    torch.manual_seed(seed)
    model = LMModel(lm_config(preset, **overrides)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" not in name:
                p.normal_(0.0, 0.3 if p.dim() == 2 and "emb" not in name else 1.0)
    return model


def _tiny_transformers_sub_configs(num_codebooks: int, text_dim: int, card: int):
    """Tiny T5 encoder and EnCodec configs (as dicts) shared by the transformers MusicGen builders."""
    from transformers import EncodecConfig, T5Config

    text = T5Config(vocab_size=64, d_model=text_dim, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
                    relative_attention_num_buckets=8, relative_attention_max_distance=16,
                    decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    audio = EncodecConfig(audio_channels=1, sampling_rate=8000, num_filters=4, upsampling_ratios=[4, 2],
                          codebook_size=card, codebook_dim=8, hidden_size=8, num_lstm_layers=1,
                          num_residual_layers=1, kernel_size=3, last_kernel_size=3, residual_kernel_size=3,
                          target_bandwidths=[float(num_codebooks * (card - 1).bit_length())],  # kbps at 1 kHz
                          normalize=False, use_causal_conv=False, chunk_length_s=None)
    decoder = dict(vocab_size=card, max_position_embeddings=128, num_hidden_layers=2, ffn_dim=64,
                   num_attention_heads=4, num_codebooks=num_codebooks, pad_token_id=card, bos_token_id=card,
                   dropout=0.0)
    return text.to_dict(), audio.to_dict(), decoder


def _finish_tiny_transformers(model, folder, card: int):
    import torch

    model.eval()
    with torch.no_grad():  # spread the decoder weights so that greedy decoding is not a string of ties
        for name, p in model.decoder.named_parameters():
            if "layer_norm" not in name:
                p.normal_(0.0, 0.3 if "embed" not in name else 1.0)
    model.generation_config.pad_token_id = card
    model.generation_config.decoder_start_token_id = card
    model.save_pretrained(str(folder))
    return model


def tiny_transformers_musicgen(folder, seed: int = 0, num_codebooks: int = 4, decoder_dim: int = 32,
                               text_dim: int = 24, card: int = 16, activation: str = "gelu",
                               audio_channels: int = 1):
    """Save a tiny random transformers ``MusicgenForConditionalGeneration`` into ``folder``.

    Tiny T5 encoder (``text_dim``), tiny mono EnCodec with ``num_codebooks / audio_channels`` quantizers
    of ``card`` codes, decoder with ``decoder_dim`` (different from ``text_dim`` so that
    ``enc_to_dec_proj`` exists). ``audio_channels=2``: a stereo decoder (codebooks interleaved L/R).
    Returns the model (eval mode). About 200 KB on disk; builds in about a second.
    """
    import torch
    from transformers import MusicgenConfig, MusicgenForConditionalGeneration

    torch.manual_seed(seed)
    text, audio, decoder = _tiny_transformers_sub_configs(num_codebooks // audio_channels, text_dim, card)
    decoder.update(hidden_size=decoder_dim, activation_function=activation, num_codebooks=num_codebooks,
                   audio_channels=audio_channels)
    config = MusicgenConfig(text_encoder=text, audio_encoder=audio, decoder=decoder)
    return _finish_tiny_transformers(MusicgenForConditionalGeneration(config), folder, card)


def tiny_transformers_musicgen_melody(folder, seed: int = 0, num_codebooks: int = 4, decoder_dim: int = 32,
                                      text_dim: int = 24, card: int = 16, chroma_length: int = 6):
    """Save a tiny random transformers ``MusicgenMelodyForConditionalGeneration`` into ``folder``
    (12 chroma bins, ``chroma_length`` chroma frames in the prefix). Returns the model (eval mode)."""
    import torch
    from transformers import MusicgenMelodyConfig, MusicgenMelodyForConditionalGeneration

    torch.manual_seed(seed)
    text, audio, decoder = _tiny_transformers_sub_configs(num_codebooks, text_dim, card)
    decoder.update(hidden_size=decoder_dim)
    config = MusicgenMelodyConfig(text_encoder=text, audio_encoder=audio, decoder=decoder, num_chroma=12,
                                  chroma_length=chroma_length)
    return _finish_tiny_transformers(MusicgenMelodyForConditionalGeneration(config), folder, card)


# --- codec (musicgen.models.codec) -----------------------------------------------------------------------
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
