"""LM solver: the loss falls on synthcaps tokens; a killed and resumed run matches an uninterrupted one."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from musicgen.modules.patterns import get_pattern
from musicgen.train.datasets import AudioDataset
from musicgen.train.lm_solver import LMSolver, LMTrainConfig, lm_cross_entropy
from musicgen.train.token_cache import TokenCache, build_token_cache

lm_module = pytest.importorskip("musicgen.models.lm")


@pytest.fixture(scope="module")
def token_caches(tiny_corpus, tiny_codec, tmp_path_factory):
    root = tmp_path_factory.mktemp("tokens")
    out = {}
    for split in ("train", "valid"):
        ds = AudioDataset(tiny_corpus, split, duration_s=None, sample_rate=8000)
        out[split] = TokenCache(build_token_cache(ds, tiny_codec, root))
    return out


def _tiny_lm(seed: int = 0):
    torch.manual_seed(seed)
    return lm_module.LMModel(lm_module.lm_config("tiny_melody", max_positions=128))


def _config(**kw) -> LMTrainConfig:
    base = dict(steps=40, batch_size=4, segment_frames=32, lr=3e-3, warmup_steps=5, log_every=5,
                valid_batches=2, seed=0)
    return LMTrainConfig(**{**base, **kw})


def test_cross_entropy_only_counts_valid_positions():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 5, 7)
    targets = torch.randint(0, 7, (2, 3, 5))
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[1, :2] = False
    loss, per_k = lm_cross_entropy(logits, targets, mask)
    garbage = logits.clone()
    garbage[:, 1, :2] = 1e4  # predictions at invalid positions must not matter
    assert torch.allclose(lm_cross_entropy(garbage, targets, mask)[0], loss)
    want_k1 = torch.nn.functional.cross_entropy(logits[:, 1, 2:].reshape(-1, 7),
                                                targets[:, 1, 2:].reshape(-1))
    assert torch.allclose(per_k[1], want_k1) and torch.allclose(loss, per_k.mean())


def test_loss_falls_on_synthcaps_tokens(token_caches, tmp_path):
    pattern = get_pattern("delay", num_codebooks=4)
    solver = LMSolver(_tiny_lm(), pattern, token_caches["train"], _config(steps=50, lr=1e-2, warmup_steps=5),
                      tmp_path / "run", valid=token_caches["valid"])
    before = solver.validate(token_caches["train"], use_ema=False)["loss"]
    ema_before = solver.validate(token_caches["train"])["loss"]
    solver.train(progress=False)
    after = solver.validate(token_caches["train"], use_ema=False)["loss"]
    assert after < before - 0.4, (before, after)
    # better than knowing only how often each code occurs: the LM uses the context
    unigram = []
    for k in range(4):
        counts = np.bincount(np.concatenate([token_caches["train"].codes(i)[k]
                                             for i in range(len(token_caches["train"]))]), minlength=16)
        p = counts[counts > 0] / counts.sum()
        unigram.append(float(-(p * np.log(p)).sum()))
    assert after < np.mean(unigram), (after, unigram)
    assert solver.validate(token_caches["train"])["loss"] < ema_before  # the EMA follows, more slowly
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["split"] == "train"]
    assert [r["step"] for r in train] == list(range(5, 51, 5))
    assert {"loss", "lr", "grad_norm", "tokens_per_s", "ce_k0", "ce_k3"} <= set(train[0])
    valid = [r for r in records if r["split"] == "valid"]
    assert valid and np.isclose(valid[-1]["perplexity"], np.exp(valid[-1]["loss"]))
    assert (tmp_path / "run" / "checkpoints" / "latest").is_file()


def _scramble_global_rngs() -> None:
    torch.manual_seed(987)
    np.random.seed(987)
    random.seed(987)


def _assert_same_state(a: LMSolver, b: LMSolver) -> None:
    want, got = a.model.state_dict(), b.model.state_dict()
    assert got.keys() == want.keys()
    for name in want:
        assert torch.equal(got[name], want[name]), name
    for name, value in a.ema.state_dict().items():
        assert torch.equal(b.ema.state_dict()[name], value), name
    assert a.optimizer.param_groups[0]["lr"] == b.optimizer.param_groups[0]["lr"]


def test_interrupted_and_resumed_run_matches_uninterrupted(token_caches, tmp_path):
    """A run stopped at step 11 (last checkpoint: step 8) is resumed by fresh objects with other
    initial weights and scrambled global RNGs; at step 24 weights and EMA are bit-identical."""
    pattern = get_pattern("delay", num_codebooks=4)
    cfg = _config(steps=24, checkpoint_every=8)
    straight = LMSolver(_tiny_lm(), pattern, token_caches["train"], cfg, tmp_path / "straight")
    straight.train(progress=False)
    first = LMSolver(_tiny_lm(), pattern, token_caches["train"], cfg, tmp_path / "resumed")
    first.train(until_step=11, progress=False)  # then "killed": steps 9..11 are lost
    del first
    _scramble_global_rngs()
    second = LMSolver(_tiny_lm(seed=123), pattern, token_caches["train"], cfg, tmp_path / "resumed")
    assert second.resume() and second.step == 8
    second.train(progress=False)
    assert second.step == 24
    _assert_same_state(straight, second)


_RESUME_SCRIPT = textwrap.dedent("""
    import os, sys, torch
    sys.path.insert(0, {root!r})
    from tests.musicgen.train.test_lm_solver import _tiny_lm, _config
    from musicgen.modules.patterns import get_pattern
    from musicgen.train.lm_solver import LMSolver
    from musicgen.train.token_cache import TokenCache
    until = int(sys.argv[1])
    solver = LMSolver(_tiny_lm(seed=int(sys.argv[2])), get_pattern("delay", num_codebooks=4),
                      TokenCache({cache!r}), _config(steps=24, checkpoint_every=8), {run!r})
    solver.resume()
    solver.train(until_step=until, progress=False)
    os._exit(0)  # no clean shutdown: as if the process were killed here
""")


@pytest.mark.slow
def test_killed_process_resumed_by_a_new_process(token_caches, tmp_path):
    pattern = get_pattern("delay", num_codebooks=4)
    straight = LMSolver(_tiny_lm(), pattern, token_caches["train"], _config(steps=24, checkpoint_every=8),
                        tmp_path / "straight")
    straight.train(progress=False)
    script = _RESUME_SCRIPT.format(root=str(Path.cwd()), cache=str(token_caches["train"].folder),
                                   run=str(tmp_path / "resumed"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-c", script, "11", "0"], check=True, env=env)
    # the new process starts from other random weights: everything must come from the checkpoint
    subprocess.run([sys.executable, "-c", script, "24", "123"], check=True, env=env)
    final = tmp_path / "resumed" / "checkpoints" / "step_00000024"
    got = load_file(str(final / "model.safetensors"))
    got_ema = load_file(str(final / "ema.safetensors"))
    want = straight.model.state_dict()
    assert got.keys() == want.keys()
    for name, value in want.items():
        assert torch.equal(got[name], value), name
    for name, value in straight.ema.state_dict().items():
        assert torch.equal(got_ema[name], value), name


def test_precision_and_optimizer_errors(token_caches, tmp_path):
    pattern = get_pattern("delay", num_codebooks=4)
    with pytest.raises(ValueError, match="CUDA only"):
        LMSolver(_tiny_lm(), pattern, token_caches["train"], _config(precision="fp16"), tmp_path)
    try:
        import dadaptation  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install dadaptation"):
            LMSolver(_tiny_lm(), pattern, token_caches["train"], _config(optimizer="dadam"), tmp_path)
    with pytest.raises(ValueError, match="K=4, card=16 but the LM has K=4, card=32"):
        LMSolver(lm_module.LMModel(lm_module.lm_config("tiny_melody", card=32)), pattern,
                 token_caches["train"], _config(), tmp_path)


def _write_cache(folder: Path, codes: list[np.ndarray], texts: list[str], card: int) -> TokenCache:
    """A token cache written directly: one shard, items in order."""
    folder.mkdir(parents=True)
    items, start = [], 0
    for c, t in zip(codes, texts):
        items.append({"id": f"x{len(items)}", "shard": 0, "start": start, "frames": int(c.shape[-1]),
                      "description": t, "metadata": {}, "path": ""})
        start += c.shape[-1]
    np.save(folder / "shard_00000.npy", np.concatenate(codes, axis=1).astype(np.int16))
    index = {"version": 1, "codec_digest": "test", "num_codebooks": codes[0].shape[0], "card": card,
             "frame_rate": 50.0, "sample_rate": 8000, "split": "train", "num_items": len(items),
             "items": items}
    (folder / "index.json").write_text(json.dumps(index))
    return TokenCache(folder)


def test_text_condition_is_learned_and_dropout_keeps_the_null_condition_usable(tmp_path):
    """Captions decide the code range ('low': 0..7, 'high': 8..15). At the first step of a crop (no
    token context) the caption lowers the loss towards ln 8; the CFG null condition cannot."""
    conditioners = pytest.importorskip("musicgen.models.conditioners")
    rng = np.random.default_rng(0)
    codes, texts = [], []
    for i in range(16):
        high = i % 2 == 1
        codes.append(rng.integers(8 if high else 0, 16 if high else 8, size=(4, 64)))
        texts.append("high notes" if high else "low notes")
    cache = _write_cache(tmp_path / "tok", codes, texts, card=16)
    torch.manual_seed(0)
    cond = conditioners.LUTConditioner.from_corpus(texts, dim=16, output_dim=24)
    lm = lm_module.LMModel(lm_module.lm_config("tiny", max_positions=128))
    solver = LMSolver(lm, get_pattern("delay", num_codebooks=4), cache,
                      _config(steps=80, lr=1e-2, cfg_dropout=0.3, segment_frames=32), tmp_path / "run",
                      conditioner=cond)
    solver.train(progress=False)
    batch, captions, _ = cache.sample_batch(64, 32, np.random.default_rng(1))
    seq, _ = solver.pattern.build(batch, 16)
    inp = torch.cat([torch.full_like(seq[..., :1], 16), seq[..., :-1]], dim=-1)

    def first_step_ce(texts):
        with torch.no_grad():
            logits = solver.model(inp, texts)[:, 0, 0]  # codebook 0 at step 0: no token context
        return torch.nn.functional.cross_entropy(logits, seq[:, 0, 0]).item()

    conditional, null = first_step_ce(captions), first_step_ce([None] * len(captions))
    assert conditional < np.log(16) - 0.3, conditional  # the caption carries the range
    assert null > conditional + 0.4, (null, conditional)


_DDP_SCRIPT = textwrap.dedent("""
    import os, sys, torch
    sys.path.insert(0, {root!r})
    from tests.musicgen.train.test_lm_solver import _tiny_lm, _config
    from musicgen.modules.patterns import get_pattern
    from musicgen.train.lm_solver import LMSolver
    from musicgen.train.token_cache import TokenCache
    solver = LMSolver(_tiny_lm(), get_pattern("delay", num_codebooks=4), TokenCache({cache!r}),
                      _config(steps=4, checkpoint_every=4, valid_every=0), {run!r})
    assert solver.world_size == 2, solver.world_size
    solver.train(progress=False)
    torch.save(solver.model.state_dict(), os.path.join({run!r}, f"rank{{solver.rank}}.pt"))
""")


def _two_rank_reference(train: TokenCache, run: Path, ranks: tuple[int, ...] = (0, 1)) -> LMSolver:
    """One process doing what two DDP ranks do: each step, the mean of both ranks' losses (each on its
    own half-batch, drawn with its rank) -> one backward, clip, AdamW step and EMA update.
    ``ranks=(0,)``: rank 0's half-batch only (what a rank that never synchronised would train)."""
    solver = LMSolver(_tiny_lm(), get_pattern("delay", num_codebooks=4), train,
                      _config(steps=4, checkpoint_every=0, valid_every=0), run)
    for _ in range(4):
        solver.model.train()
        solver.optimizer.zero_grad(set_to_none=True)
        for group in solver.optimizer.param_groups:
            group["lr"] = solver.schedule.lr_at(solver.step)
        losses = []
        for rank in ranks:
            codes, texts, metas, rng = solver._batch(solver.step, rank, train, 2)
            losses.append(solver.loss(codes, solver._texts(texts, metas, rng))[0])
        (sum(losses) / len(losses)).backward()
        torch.nn.utils.clip_grad_norm_(solver.model.parameters(), solver.cfg.grad_clip)
        solver.optimizer.step()
        solver.ema.update(solver.model)
        solver.step += 1
    return solver


@pytest.mark.slow
def test_torchrun_two_ranks_train_the_same_weights_as_the_averaged_gradient(token_caches, tmp_path):
    """torchrun with 2 gloo ranks on CPU: both ranks end with identical weights, rank 0 alone writes
    the checkpoint, and the weights equal one process stepping on the mean of the two ranks' losses."""
    run = tmp_path / "ddp"
    run.mkdir()
    script = tmp_path / "ddp_train.py"
    script.write_text(_DDP_SCRIPT.format(root=str(Path.cwd()), cache=str(token_caches["train"].folder),
                                         run=str(run)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node=2", str(script)], env=env, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rank0, rank1 = (torch.load(run / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for name, value in rank0.items():
        assert torch.equal(rank1[name], value), name
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["latest", "step_00000004"]
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged if r["split"] == "train"] == [4]  # rank 1 wrote no line
    want = _two_rank_reference(token_caches["train"], tmp_path / "reference").model.state_dict()
    assert want.keys() == rank0.keys()
    for name, value in want.items():
        torch.testing.assert_close(rank0[name], value, rtol=1e-4, atol=1e-5, msg=name)
    # the tolerance above is far tighter than what rank 1's data changes: without it, no match
    alone = _two_rank_reference(token_caches["train"], tmp_path / "alone", ranks=(0,)).model.state_dict()
    assert max((alone[k] - rank0[k]).abs().max().item() for k in alone) > 1e-3
