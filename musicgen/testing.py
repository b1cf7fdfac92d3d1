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
        for layer in model.audio_encoder.quantizer.layers:  # initialised to zeros: audio would ignore codes
            layer.codebook.embed.normal_()
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


# --------------------------------------------------------------------------------------------------
# Text: a tiny word-level tokenizer and a tiny random T5 encoder, saved like transformers folders.

TINY_WORDS = ("happy rock song with electric guitar and drums calm piano melody sad violin jazz "
              "ambient pad techno beat bass fast slow loud quiet 90 120 bpm in a minor major key "
              "lofi hip hop orchestral epic choir synth retro").split()


def tiny_text_tokenizer(words: tuple[str, ...] | list[str] = TINY_WORDS):
    """A lower-casing word-level ``PreTrainedTokenizerFast`` with T5's special ids (pad 0, eos 1,
    unk 2) that appends ``</s>`` like T5; built offline in milliseconds."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for w in words:
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                       special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>",
                                   unk_token="<unk>", model_max_length=512)


def tiny_t5_config(vocab_size: int | None = None, d_model: int = 16):
    from transformers import T5Config

    return T5Config(vocab_size=vocab_size or (len(set(TINY_WORDS)) + 3), d_model=d_model, d_kv=4,
                    d_ff=32, num_layers=2, num_heads=4, relative_attention_num_buckets=8,
                    relative_attention_max_distance=16, dropout_rate=0.0)


def tiny_t5_folder(folder, seed: int = 0, d_model: int = 16):
    """Save a tiny random ``T5EncoderModel`` + ``tiny_text_tokenizer`` into ``folder``; returns it."""
    from pathlib import Path

    import torch
    from transformers import T5EncoderModel

    torch.manual_seed(seed)
    folder = Path(folder)
    T5EncoderModel(tiny_t5_config(d_model=d_model)).eval().save_pretrained(str(folder))
    tiny_text_tokenizer().save_pretrained(str(folder))
    return folder


# --------------------------------------------------------------------------------------------------
# Whole pipelines (musicgen.models.musicgen) in our native format.

def tiny_musicgen(seed: int = 0, stereo: bool = False, melody: bool = False, max_positions: int = 256):
    """A tiny random :class:`musicgen.models.musicgen.MusicGen` (our format's parts, in memory).

    Codec: ``tiny_codec`` with 16 codes (8 kHz, 250 Hz frames; stereo interleaves 2 x 4 codebooks).
    LM: ``tiny_lm`` (dim 32). Text: a lookup-table conditioner over ``TINY_WORDS`` projecting to 32.
    ``melody=True``: a prefix LM with a chroma conditioner (n_fft 2048, hop 512 at 8 kHz, 8 frames).
    """
    import torch

    from musicgen.models.conditioners import LUTConditioner, build_vocabulary
    from musicgen.models.melody import ChromaConditioner
    from musicgen.models.musicgen import MusicGen

    codec = tiny_codec(seed, stereo=stereo, codebook_size=16)
    extra = {"preset": "tiny_melody"} if melody else {"cond_dim": None}
    lm = tiny_lm(seed, num_codebooks=8 if stereo else 4, max_positions=max_positions, **extra)
    torch.manual_seed(seed + 1)
    text = LUTConditioner(build_vocabulary([" ".join(TINY_WORDS)]), dim=16, output_dim=lm.config.dim)
    with torch.no_grad():
        text.embed.weight.normal_(0.0, 1.0)
    chroma = None
    if melody:
        chroma = ChromaConditioner(lm.config.dim, chroma_length=8, sample_rate=8000, n_fft=2048,
                                   hop_length=512)
    return MusicGen(lm, codec, text, None, chroma, name="tiny").eval()


# transformers' EncodecConfig fields of facebook/encodec_32khz (its config.json on the hub), for parity
# tests and benchmarks that build the released codec's architecture with random weights.
ENCODEC_32KHZ = dict(
    audio_channels=1, sampling_rate=32000, num_filters=64, upsampling_ratios=[8, 5, 4, 4],
    codebook_size=2048, codebook_dim=128, hidden_size=128, num_lstm_layers=2, num_residual_layers=1,
    kernel_size=7, last_kernel_size=7, residual_kernel_size=3, dilation_growth_rate=2, compress=2,
    norm_type="weight_norm", pad_mode="reflect", use_causal_conv=False, use_conv_shortcut=False,
    normalize=False, target_bandwidths=[2.2], chunk_length_s=None,
)
