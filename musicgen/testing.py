"""Tiny randomly initialised models for tests: each builds in well under a second on CPU.

Every constructor takes a ``seed`` so that tests are deterministic.
"""

from __future__ import annotations

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
