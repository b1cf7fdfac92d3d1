"""EMA, the cosine schedule, checkpoints (atomic, exact round trips) and recipe validation."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from musicgen.train.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    load_optimizer_state,
    load_rng_state,
    optimizer_state,
    rng_state,
    save_checkpoint,
)
from musicgen.train.ema import EMA
from musicgen.train.recipes import LMRecipe, RecipeError, load_recipe, parse_recipe, recipe_path
from musicgen.train.schedules import CosineWarmup


def test_ema_matches_closed_form_and_swaps_back():
    model = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = EMA(model, decay=0.9)
    for v in (1.0, 2.0, 3.0):
        with torch.no_grad():
            model.weight.fill_(v)
        ema.update(model)
    want = ((0.0 * 0.9 + 0.1 * 1.0) * 0.9 + 0.1 * 2.0) * 0.9 + 0.1 * 3.0
    assert ema.shadow["weight"][0, 0].item() == pytest.approx(want)
    with ema.swapped(model):
        assert model.weight[0, 0].item() == pytest.approx(want)
    assert model.weight[0, 0].item() == 3.0
    with pytest.raises(ValueError, match="decay"):
        EMA(model, decay=1.0)


def test_cosine_warmup_shape():
    s = CosineWarmup(base_lr=1.0, warmup_steps=4, total_steps=14, min_lr_ratio=0.1)
    assert [s.lr_at(i) for i in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert s.lr_at(4) == pytest.approx(1.0)
    assert s.lr_at(9) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert s.lr_at(14) == pytest.approx(0.1) and s.lr_at(100) == pytest.approx(0.1)
    assert all(s.lr_at(i) >= s.lr_at(i + 1) for i in range(4, 20))


def test_checkpoint_round_trip_is_exact(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.95), weight_decay=0.1)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(5, 3)).pow(2).mean().backward()
        opt.step()
    gen = torch.Generator().manual_seed(5)
    torch.rand(3, generator=gen)
    random.random()
    np.random.rand()
    opt_t, opt_meta = optimizer_state(opt)
    rng_t, rng_meta = rng_state({"data": gen})
    save_checkpoint(tmp_path / "ck", 3, {"model": model.state_dict(), "optimizer": opt_t, "rng": rng_t},
                    {"optimizer": opt_meta, "rng": rng_meta, "note": "hi"})
    expected = (torch.rand(4), np.random.rand(), random.random(), torch.rand(2, generator=gen))
    want_step = [p.detach().clone() for p in model.parameters()]
    x = torch.randn(5, 3)

    def one_step(m, o):
        o.zero_grad()
        m(x).pow(2).mean().backward()
        o.step()
        return [p.detach().clone() for p in m.parameters()]

    want_after = one_step(model, opt)
    torch.manual_seed(99)
    fresh = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 1))
    fresh_opt = torch.optim.AdamW(fresh.parameters(), lr=5.0)
    ck = load_checkpoint(tmp_path / "ck")
    assert ck.step == 3 and ck.state["note"] == "hi" and ck.path == latest_checkpoint(tmp_path / "ck")
    fresh.load_state_dict(ck.tensors["model"])
    load_optimizer_state(fresh_opt, ck.tensors["optimizer"], ck.state["optimizer"])
    gen2 = torch.Generator()
    load_rng_state(ck.tensors["rng"], ck.state["rng"], {"data": gen2})
    got = (torch.rand(4), np.random.rand(), random.random(), torch.rand(2, generator=gen2))
    assert torch.equal(got[0], expected[0]) and got[1] == expected[1] and got[2] == expected[2]
    assert torch.equal(got[3], expected[3])
    assert all(torch.equal(a, b) for a, b in zip(fresh.parameters(), want_step))
    assert all(torch.equal(a, b) for a, b in zip(one_step(fresh, fresh_opt), want_after))


def test_checkpoints_keep_newest_and_ignore_partial_writes(tmp_path):
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, {"w": {"x": torch.full((2,), float(step))}}, {}, keep=2)
    assert sorted(p.name for p in tmp_path.glob("step_*")) == ["step_00000002", "step_00000003"]
    (tmp_path / ".step_00000004.tmp-1").mkdir()  # a write that was killed half way
    ck = load_checkpoint(tmp_path)
    assert ck.step == 3 and ck.tensors["w"]["x"].tolist() == [3.0, 3.0]
    with pytest.raises(FileNotFoundError, match="state.json"):
        load_checkpoint(tmp_path / "nothing")


def _lm_recipe(**extra):
    base = {"kind": "lm", "run_dir": "runs/x", "data": {"kind": "synthcaps", "root": "data/sc"},
            "codec": {"preset": "tiny"}}
    base.update(extra)
    return base


def test_recipe_unknown_key_names_the_key_and_file(tmp_path):
    import yaml

    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(_lm_recipe(train={"steps": 5, "lrr": 0.1})))
    with pytest.raises(RecipeError) as e:
        load_recipe(path)
    assert str(path) in str(e.value) and "unknown key 'train.lrr'" in str(e.value)
    path.write_text(yaml.safe_dump(_lm_recipe(colour="red")))
    with pytest.raises(RecipeError, match="unknown key 'colour'"):
        load_recipe(path)
    with pytest.raises(RecipeError, match="kind must be one of"):
        parse_recipe({"kind": "gan"})
    with pytest.raises(RecipeError, match=r"train\.steps"):
        parse_recipe(_lm_recipe(train={"steps": 0}))
    with pytest.raises(RecipeError, match="exactly one of codec.path"):
        parse_recipe(_lm_recipe(codec={}))
    with pytest.raises(RecipeError, match="does not exist"):
        load_recipe(tmp_path / "missing.yaml")
    recipe = parse_recipe(_lm_recipe(train={"steps": 5}))
    assert isinstance(recipe, LMRecipe) and recipe.train.steps == 5 and recipe.train.betas == (0.9, 0.95)


def test_shipped_recipes_validate():
    from pathlib import Path

    shipped = sorted(Path(__file__).resolve().parents[3].joinpath("musicgen", "recipes").glob("*.yaml"))
    for path in shipped:
        load_recipe(path)
    with pytest.raises(RecipeError, match="shipped recipes"):
        recipe_path("no-such-recipe")
