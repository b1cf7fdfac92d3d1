from __future__ import annotations

import random

import pytest

from musicgen.models.text_augment import TextAugmenter, dropout_conditions, format_value

META = {"key": "C major", "bpm": 120.0, "genre": "rock", "instrument": ["guitar", "drums"], "mood": "happy"}
DESC = "an upbeat song for a road trip"
N = 4000


def test_merge_and_description_dropout_rates():
    aug = TextAugmenter(word_dropout_p=0.0, cfg_dropout_p=0.0, seed=3)
    outs = [aug(DESC, META) for _ in range(N)]
    merged = [o for o in outs if "bpm: 120" in o]
    assert abs(len(merged) / N - 0.25) < 0.03
    # among merged texts, the description was dropped half of the time
    dropped = [o for o in merged if DESC not in o]
    assert abs(len(dropped) / len(merged) - 0.5) < 0.06
    assert all(o == DESC for o in outs if "bpm" not in o)
    kept = next(o for o in merged if DESC in o)
    assert kept.startswith(DESC + ". ")
    for part in ("key: C major", "genre: rock", "instrument: guitar, drums", "mood: happy"):
        assert part in kept


def test_word_dropout_rate_and_cfg_dropout_rate():
    words = " ".join(f"w{i}" for i in range(50))
    aug = TextAugmenter(merge_metadata_p=0.0, cfg_dropout_p=0.0, seed=1)
    kept = [len((aug(words) or "").split()) for _ in range(400)]
    assert abs(sum(kept) / (400 * 50) - 0.7) < 0.02
    out = aug(words)
    assert all(w in words.split() for w in out.split())  # order kept, no new words
    aug = TextAugmenter(merge_metadata_p=0.0, word_dropout_p=0.0, cfg_dropout_p=0.2, seed=2)
    nulls = sum(aug(DESC) is None for _ in range(N))
    assert abs(nulls / N - 0.2) < 0.02


def test_same_seed_same_texts_and_eval_mode_is_identity():
    a = TextAugmenter(seed=7).batch([DESC] * 50, [META] * 50)
    b = TextAugmenter(seed=7).batch([DESC] * 50, [META] * 50)
    c = TextAugmenter(seed=8).batch([DESC] * 50, [META] * 50)
    assert a == b and a != c
    assert TextAugmenter(seed=7).eval_mode().batch([DESC] * 5, [META] * 5) == [DESC] * 5


def test_empty_description_becomes_metadata_or_none():
    aug = TextAugmenter(merge_metadata_p=1.0, drop_description_p=0.0, word_dropout_p=0.0, cfg_dropout_p=0.0)
    assert aug(None, {"genre": "jazz"}) == "genre: jazz"
    assert aug("  ", None) is None
    assert format_value(120.0) == "120" and format_value([]) is None


def test_bad_probabilities_and_lengths():
    with pytest.raises(ValueError, match="word_dropout_p"):
        TextAugmenter(word_dropout_p=1.5)
    with pytest.raises(ValueError, match="2 descriptions but 1"):
        TextAugmenter().batch(["a", "b"], [META])
    with pytest.raises(ValueError, match="probability"):
        dropout_conditions(["a"], -0.1, random.Random(0))
    out = dropout_conditions(["a"] * 1000, 0.5, random.Random(0))
    assert 400 < sum(o is None for o in out) < 600
