"""The synth evaluators: shipped weights load and match their cards, they generalise to fresh
synthcaps clips (a corpus of another seed, never seen in training), order the controls, and the
recipe retrains bit for bit."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.embedders import BUILTIN_EMBEDDERS
from bench.embedders.synth import (
    WEIGHTS_DIR,
    SynthClapEmbedder,
    SynthTaggerEmbedder,
    SynthTaggerLogitsEmbedder,
    read_weights,
)
from bench.embedders.synth_models import MIN_SAMPLES, build_vocab, encode_texts, tokenize, window_pool
from bench.embedders.synth_train import RECIPES_DIR, Recipe, load_corpus, save_weights, train
from bench.registry import EMBEDDERS
from benchmarks.synth_ordering import ordering_table, read_corpus
from musicgen.train.synthcaps import build_synthcaps

NAMES = ("synth-tagger", "synth-clap")


@pytest.fixture(scope="module")
def fresh_corpus(tmp_path_factory) -> Path:
    """32 clips of 6 s with seed 1: the same distribution as the training corpus, other clips."""
    return build_synthcaps(tmp_path_factory.mktemp("synthcaps") / "c", num_clips=32, seed=1, duration_s=6.0)


@pytest.fixture(scope="module")
def fresh_rows(fresh_corpus) -> list[dict]:
    return read_corpus(fresh_corpus)


@pytest.fixture(scope="module")
def fresh_mels(fresh_corpus):
    return load_corpus(fresh_corpus)


@pytest.fixture(scope="module")
def loaded() -> dict:
    out = {}
    for cls in (SynthTaggerEmbedder, SynthTaggerLogitsEmbedder, SynthClapEmbedder):
        e = cls()
        e.load()
        out[cls.name] = e
    return out


def _mono16k(row: dict) -> np.ndarray:
    from bench.audio import resample

    return resample(row["wav"], row["sr"], 16000)


@pytest.mark.parametrize("name", NAMES)
def test_shipped_weights_match_card_and_recipe(name):
    path = WEIGHTS_DIR / name / "model.safetensors"
    card = (WEIGHTS_DIR / name / "MODEL_CARD.md").read_text()
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert re.search(rf"sha256 `{sha}`", card), "MODEL_CARD.md names another sha256"
    _, config = read_weights(path)
    # the shipped weights were trained from the shipped recipe, on the default corpus
    assert config["recipe"] == Recipe.from_yaml(RECIPES_DIR / f"{name}.yaml").model_dump(mode="json")
    assert config["recipe"]["corpus"] == {"num_clips": 300, "seed": 0, "duration_s": 10.0,
                                          "sample_rate": 32000}
    assert config["corpus_digest"] in card
    assert path.stat().st_size < 1_000_000


def test_registered_and_protocol_names_say_synth(loaded):
    for name in ("synth-tagger", "synth-tagger-logits", "synth-clap"):
        assert EMBEDDERS.get(name) is type(loaded[name])
        assert name in BUILTIN_EMBEDDERS
        proto = loaded[name].protocol()
        assert "synth" in proto["backbone"]
        assert proto["checkpoint_digest"] == hashlib.sha256(
            (WEIGHTS_DIR / loaded[name].weights_name / "model.safetensors").read_bytes()).hexdigest()


def test_tagger_classifies_fresh_clips_above_chance(loaded, fresh_rows):
    tagger = loaded["synth-tagger-logits"]
    labels = tagger.labels()
    correct = 0
    for row in fresh_rows:
        logits = tagger.embed(_mono16k(row))  # [W, 10]
        assert logits.shape == (6, len(labels))
        pred = labels[int(torch.from_numpy(logits).softmax(-1).mean(0).argmax())]
        correct += pred == row["meta"]["genre"]
    accuracy = correct / len(fresh_rows)
    print(f"synth-tagger genre accuracy on 32 fresh clips: {accuracy:.3f} (chance {1 / len(labels):.3f})")
    assert accuracy >= 0.4


def test_clap_retrieves_fresh_clips_above_chance(loaded, fresh_rows):
    clap = loaded["synth-clap"]
    audio = np.concatenate([clap.embed(_mono16k(r)) for r in fresh_rows])  # [N, 64]
    text = clap.embed_text([r["text"] for r in fresh_rows])
    np.testing.assert_allclose(np.linalg.norm(audio, axis=-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(text, axis=-1), 1.0, rtol=1e-5)
    r1 = float(np.mean((audio @ text.T).argmax(0) == np.arange(len(fresh_rows))))
    print(f"synth-clap text->audio R@1 on 32 fresh clips: {r1:.3f} (chance {1 / len(fresh_rows):.3f})")
    assert r1 >= 0.15


def test_controls_are_ordered(fresh_rows):
    splits = ("train", "valid", "test")
    table = ordering_table(fresh_rows, prompt_splits=splits, pool_splits=splits)
    print(table)
    for metric in ("fad", "kl"):
        assert table["reference"][metric] < table["retrieval"][metric] < table["noise"][metric], metric
    assert table["reference"]["clap_score"] > table["shuffled"]["clap_score"]


def test_embed_shapes_and_bad_input(loaded):
    wav = np.random.default_rng(0).standard_normal(16000 * 2).astype(np.float32) * 0.1
    assert loaded["synth-tagger"].embed(wav).shape == (2, 64)
    assert loaded["synth-clap"].embed(wav).shape == (1, 64)
    # a clip shorter than one window is one window; shorter than half a window is an error
    assert loaded["synth-tagger"].embed(wav[:MIN_SAMPLES]).shape == (1, 64)
    with pytest.raises(ValueError, match="shorter than the backbone's window"):
        loaded["synth-tagger"].embed(wav[:MIN_SAMPLES - 400])
    bad = wav.copy()
    bad[5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        loaded["synth-clap"].embed(bad)
    with pytest.raises(TypeError, match="list of strings"):
        loaded["synth-clap"].embed_text("a single string")
    with pytest.raises(RuntimeError, match="load"):
        SynthClapEmbedder().embed(wav)


def test_logits_heads_and_missing_or_foreign_weights(tmp_path):
    mode = SynthTaggerLogitsEmbedder(SynthTaggerLogitsEmbedder.Params(head="mode"))
    mode.load()
    assert mode.labels() == ["major", "minor"]
    assert mode.embed(np.zeros(16000, np.float32) + 0.01).shape == (1, 2)
    missing = SynthTaggerEmbedder(SynthTaggerEmbedder.Params(weights=str(tmp_path / "nope.safetensors")))
    assert "nope.safetensors" in missing.check()[0]
    with pytest.raises(Exception, match="nope.safetensors"):
        missing.load()
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(ValueError, match="not a synth evaluator"):
        SynthClapEmbedder(SynthClapEmbedder.Params(weights=str(tmp_path / "foreign.safetensors"))).load()


def test_text_front_end():
    assert tokenize("An Upbeat, warm  house-groove.") == ["an", "upbeat", "warm", "house-groove"]
    vocab = build_vocab(["b a", "a c."])
    assert vocab == ["<pad>", "<unk>", "a", "b", "c"]
    ids = encode_texts(["a zebra", "c", ""], {w: i for i, w in enumerate(vocab)})
    assert ids.tolist() == [[2, 1], [4, 0], [1, 0]]


def test_window_pool_drops_short_tail_only():
    h = torch.arange(30, dtype=torch.float32).view(1, 1, 30)  # 2 full windows of 12 + 6 frames
    pooled = window_pool(h)
    assert pooled.shape == (1, 1, 3)
    assert pooled[0, 0].tolist() == [5.5, 17.5, 26.5]
    assert window_pool(h[..., :29]).shape == (1, 1, 2)  # 5 frames < half a window: dropped


@pytest.mark.parametrize("model", ["tagger", "clap"])
def test_two_step_retrain_is_bit_identical(model, fresh_mels, tmp_path):
    corpus = fresh_mels
    recipe_path = RECIPES_DIR / f"synth-{model}.yaml"
    base = Recipe.from_yaml(recipe_path).model_copy(update={"steps": 2, "batch_size": 8})
    digests = []
    for run, recipe in enumerate([base, base, base.model_copy(update={"seed": 1})]):
        m, config = train(recipe, corpus)
        path = save_weights(m, config, tmp_path / str(run))
        digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    assert digests[2] != digests[0]  # the seed matters: the comparison can fail


def test_recipe_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: tagger\nname: x\nsteps: 1\nlearning_rate: 1\n")
    with pytest.raises(ValueError, match="learning_rate"):
        Recipe.from_yaml(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ValueError, match="mapping"):
        Recipe.from_yaml(bad)
    with pytest.raises(FileNotFoundError, match="manifest.jsonl"):
        load_corpus(tmp_path)


RUNNER_SUITE = """
name: synth-runner
dataset:
  name: synthcaps
  params: {split: test, num_clips: 40, duration_s: 4.0, sample_rate: 32000}
generation: {duration_s: 4.0, seeds: [0], batch_size: 4}
generators:
  - {name: reference}
  - {name: noise}
metrics:
  - {name: fad, params: {embedder: synth-tagger, n_bootstrap: 5}}
  - {name: kl, params: {embedder: synth-tagger-logits, n_bootstrap: 5}}
  - {name: clap_score, params: {embedder: synth-clap, n_bootstrap: 5}}
"""


@pytest.mark.slow
def test_synth_evaluators_through_the_runner(write_suite, tmp_path):
    import json

    from bench.cli import main

    run = tmp_path / "run"
    assert main(["run", str(write_suite(RUNNER_SUITE)), "--out", str(run), "--no-progress"]) == 0
    results = json.loads((run / "results.json").read_text())
    records = {(r["generator"], r["metric"]): r for r in results["records"]}
    for metric in ("fad_synth-tagger", "kl"):
        assert records[("reference", metric)]["value"] < records[("noise", metric)]["value"]
    # own audio against itself (loudness-normalised by the runner, so not exactly 0)
    assert records[("reference", "kl")]["value"] < 0.01
    assert records[("reference", "clap_score")]["value"] > records[("noise", "clap_score")]["value"]
    proto = records[("reference", "clap_score")]["protocol"]["embedders"]["synth-clap"]
    assert proto["backbone"] == "synth-clap" and len(proto["checkpoint_digest"]) == 64
