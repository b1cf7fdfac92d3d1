from __future__ import annotations

import pytest
import torch

from musicgen.models.clap_conditioner import CLAPConditioner, TransformersClapEmbedder
from musicgen.testing import tiny_text_tokenizer


@pytest.fixture(scope="module")
def clap_dir(tmp_path_factory):
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel

    torch.manual_seed(0)
    text = dict(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                intermediate_size=32, max_position_embeddings=40, pad_token_id=0, bos_token_id=0,
                eos_token_id=1)
    audio = dict(depths=[1, 1], num_attention_heads=[1, 2], patch_embeds_hidden_size=8, hidden_size=16,
                 window_size=8, num_mel_bins=64, spec_size=256, projection_hidden_size=16)
    folder = tmp_path_factory.mktemp("clap")
    model = ClapModel(ClapConfig(text_config=text, audio_config=audio, projection_dim=12))
    model.save_pretrained(str(folder))
    tiny_text_tokenizer().save_pretrained(str(folder))
    fe = ClapFeatureExtractor(frequency_min=50, truncation="rand_trunc", padding="repeatpad")
    fe.save_pretrained(str(folder))
    return folder


def test_text_embedding_is_the_clap_text_feature_and_null_rows_are_masked(clap_dir):
    from transformers import AutoTokenizer, ClapModel

    emb = TransformersClapEmbedder.from_pretrained(clap_dir)
    texts = ["happy rock song", "calm piano"]
    ref_model = ClapModel.from_pretrained(str(clap_dir)).eval()
    tok = AutoTokenizer.from_pretrained(str(clap_dir))(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        ref = ref_model.get_text_features(**tok).pooler_output
    torch.testing.assert_close(emb.text_embedding(texts), ref)
    torch.manual_seed(0)
    cond = CLAPConditioner(emb, output_dim=20, num_codebooks=3, codebook_size=8).eval()
    out = cond(texts + [None])
    assert out.embeds.shape == (3, 1, 20) and out.mask.tolist() == [[1], [1], [0]]
    assert out.embeds[2].abs().max() == 0
    # the condition is the projection of the RVQ reconstruction of the embedding
    q = cond.quantizer.decode(cond.quantizer.encode(ref[..., None]))[..., 0]
    torch.testing.assert_close(out.embeds[:2, 0], cond.output_proj(q))


def test_audio_embedding_trains_the_quantizer(clap_dir):
    emb = TransformersClapEmbedder.from_pretrained(clap_dir)
    cond = CLAPConditioner(emb, output_dim=20, num_codebooks=2, codebook_size=4).train()
    wav = torch.randn(2, 1, 8000) * 0.1
    out = cond(wavs=wav, sample_rate=16000)
    assert out.embeds.shape == (2, 1, 20) and out.mask.tolist() == [[1], [1]]
    assert torch.isfinite(cond.last_commitment_loss)
    with pytest.raises(ValueError, match="sample_rate"):
        cond(wavs=wav)
    with pytest.raises(ValueError, match=r"\[B, C, T\]"):
        cond(wavs=wav[0], sample_rate=16000)


def test_missing_clap_folder_is_named(tmp_path):
    from musicgen.checkpoints.files import MissingCheckpointFile

    with pytest.raises(MissingCheckpointFile, match="CLAP model folder"):
        TransformersClapEmbedder.from_pretrained(tmp_path / "clap")
