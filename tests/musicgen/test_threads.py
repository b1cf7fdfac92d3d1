"""The CPU thread policy of generation (musicgen.threads): which count runs, not how fast."""

from __future__ import annotations

import pytest
import torch

from musicgen import threads
from musicgen.testing import tiny_musicgen


@pytest.fixture
def default_two(monkeypatch):
    """torch's default here is 2 threads and nobody chose a count."""
    for var in threads.THREAD_ENV:
        monkeypatch.delenv(var, raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    monkeypatch.setattr(threads, "_THREADS_AT_IMPORT", 2)
    yield
    torch.set_num_threads(before)


def _threads_seen(model) -> list[int]:
    """Generate once, recording the thread count inside the LM and the codec."""
    seen = []
    lm_generate, decode = model.lm.generate, model.codec.decode
    model.lm.generate = lambda *a, **k: (seen.append(torch.get_num_threads()), lm_generate(*a, **k))[1]
    model.codec.decode = lambda *a, **k: (seen.append(torch.get_num_threads()), decode(*a, **k))[1]
    model.generate(["a"], seed=0)
    return seen


def test_tiny_model_generates_on_one_thread_and_restores(default_two):
    model = tiny_musicgen(seed=0)
    model.set_generation_params(duration_s=0.2)
    assert sum(p.numel() for p in model.parameters()) < threads.SMALL_MODEL_PARAMS
    assert _threads_seen(model) == [1, 1]
    assert torch.get_num_threads() == 2


def test_large_model_keeps_torch_threads(default_two):
    assert threads.pick_threads(threads.SMALL_MODEL_PARAMS) == 2
    assert threads.pick_threads(threads.SMALL_MODEL_PARAMS - 1) == 1


def test_explicit_option_wins(default_two):
    model = tiny_musicgen(seed=0)
    model.set_generation_params(duration_s=0.2, threads=2)
    assert _threads_seen(model) == [2, 2]


def test_environment_wins(default_two, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads.pick_threads(1000) == 2


def test_set_num_threads_after_import_wins(default_two):
    torch.set_num_threads(3)
    assert threads.user_set_threads()
    assert threads.pick_threads(1000) == 3


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_threads_option(bad):
    model = tiny_musicgen(seed=0)
    with pytest.raises(ValueError, match="threads must be a positive int"):
        model.set_generation_params(threads=bad)
