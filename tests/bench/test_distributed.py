"""``bench run`` under torchrun (2 gloo ranks on CPU) against one process: same records, N, samples
table and clips; a failed or killed rank fails the run, and the rerun resumes from the store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.distributed import World, init_world
from bench.runner import Runner
from bench.store import RunStore, audio_digest
from bench.suite import load_suite

ROOT = Path(__file__).resolve().parents[2]

DIST_SUITE = """
name: dist
dataset: {name: audio-folder, params: {root: data, split: test}}
generation: {duration_s: 1.0, seeds: [0, 1], batch_size: 2}
generators:
  - {name: reference}
  - {name: noise, params: {sample_rate: 16000}}
  - name: retrieval
    params: {train: {name: audio-folder, params: {root: data, split: train}}}
  - {name: slow-noise, params: {silent: [tone_1, tone_4]}}
metrics: [{name: test-distance}, {name: chroma_cosine}]
report: {html: null}
"""


def torchrun(args: list[str], nproc: int = 2, marker: str = "") -> subprocess.Popen:
    """``torchrun --standalone`` (a free rendezvous port) of ``bench`` with the test plug-ins."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "BENCH_TEST_MARKER": marker}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "bench.testing", "run", *args, "--no-progress"]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen, timeout_s: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout_s)
    return proc.returncode, out.decode(), err.decode()


def clip_digests(run: Path) -> dict[str, str]:
    store = RunStore(run)
    return {f.stem: audio_digest(store.load_clip(f.stem).wav, store.load_clip(f.stem).sample_rate)
            for f in (run / "cache" / "clips").glob("*/*.npz")}


def assert_same_results(a: dict, b: dict) -> None:
    assert len(a["records"]) == len(b["records"])
    for ra, rb in zip(a["records"], b["records"]):
        for k in ("value", "ci_low", "ci_high"):
            assert (ra[k] is None) == (rb[k] is None)
            if ra[k] is not None:
                assert ra[k] == pytest.approx(rb[k], rel=0, abs=1e-9), (ra["generator"], ra["metric"], k)
        rest = {k: v for k, v in ra.items() if k not in ("value", "ci_low", "ci_high")}
        assert rest == {k: v for k, v in rb.items() if k not in ("value", "ci_low", "ci_high")}


def test_world_deals_the_plan_round_robin():
    plan = list(range(11))
    shards = [World(rank=r, world_size=3).shard(plan) for r in range(3)]
    assert shards == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8]]
    assert World().shard(plan) == plan and World().gather("x") == ["x"]
    with pytest.raises(KeyError):
        World().check(KeyError("boom"), "plan")  # one process: the error itself


def test_init_world_reads_torchrun_environment(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    world = init_world("cuda")  # plain `bench run`: one rank, no process group, device as asked
    assert (world.rank, world.world_size, world.device, world.distributed) == (0, 1, "cuda", False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ValueError, match="RANK=2 and WORLD_SIZE=2"):
        init_world()
    monkeypatch.setenv("RANK", "one")
    with pytest.raises(ValueError, match="RANK='one' is not an integer"):
        init_world()


class PeerWorld(World):
    """Rank 0 of a world of two whose rank 1 holds ``peer`` (a metric fed other items): the
    collectives answer with the peer's data, as gloo would."""

    def __init__(self, peer) -> None:
        super().__init__(rank=0, world_size=2, backend="test")
        self.peer = peer

    def gather(self, obj):  # reduce_metric gathers the flagged ids
        return [obj, self.peer.flagged]

    def sum_arrays(self, arrays):
        keys = set(arrays) | set(self.peer.state)
        return {k: arrays.get(k, 0.0) + self.peer.state.get(k, 0.0) for k in sorted(keys)}


@pytest.mark.slow  # chroma's imports
def test_reduce_metric_adds_states_and_gathers_flagged_ids():
    from bench.api import AudioClip, MetricItem, Prompt
    from bench.metrics.chroma import ChromaCosineSimilarity

    rng = np.random.default_rng(0)

    def item(i: int) -> MetricItem:
        ref = rng.standard_normal((1, 8000)).astype(np.float32)
        gen = np.zeros_like(ref) if i in (1, 4) else rng.standard_normal((1, 8000)).astype(np.float32)
        return MetricItem(Prompt(f"p{i}", "x"), AudioClip(gen, 16000, f"p{i}", 0),
                          AudioClip(ref, 16000, f"p{i}", -1))

    items = [item(i) for i in range(6)]
    whole, mine, peer = ChromaCosineSimilarity(), ChromaCosineSimilarity(), ChromaCosineSimilarity()
    for i, it in enumerate(items):
        whole.update(it, {})
        (mine if i % 2 == 0 else peer).update(it, {})
    assert mine.flagged != whole.flagged
    PeerWorld(peer).reduce_metric(mine)
    assert mine.flagged == {k: sorted(v) for k, v in whole.flagged.items()}
    assert mine.flagged == {"generated silent": ["p1#0", "p4#0"]}
    a, b = mine.compute()["chroma_cosine"], whole.compute()["chroma_cosine"]
    assert (a.n, a.value, a.ci_low, a.ci_high) == pytest.approx((b.n, b.value, b.ci_low, b.ci_high),
                                                                abs=1e-12)


@pytest.mark.slow
def test_two_gloo_ranks_match_one_process(tones, write_suite, plugins, tmp_path):
    suite = write_suite(DIST_SUITE)
    one = Runner(load_suite(suite, run_dir=tmp_path / "one"), progress=False).run()
    code, out, err = finish(torchrun([str(suite), "--out", str(tmp_path / "two")]))
    assert code == 0, err[-3000:]
    two = json.loads((tmp_path / "two" / "results.json").read_text())

    assert_same_results(one, two)
    assert [r["n"] for r in two["records"]] == [r["n"] for r in one["records"]]
    chroma = {r["generator"]: r for r in two["records"] if r["metric"] == "chroma_cosine"}
    assert chroma["slow-noise"]["n"] == 6  # 10 items, 4 silent ones flagged on either rank
    assert one["metadata"]["world_size"] == 1 and two["metadata"]["world_size"] == 2
    assert two["metadata"]["distributed_backend"] == "gloo"
    assert two["metadata"]["cache"]["clips"] == {"hits": 0, "generated": 40}
    speeds = [{k: v["clips"] for k, v in r["metadata"]["throughput"]["generation"].items()}
              for r in (one, two)]
    assert speeds[0] == speeds[1] and sum(speeds[1].values()) == 40  # the ranks' speed figures summed
    assert two["metadata"]["prompt_ids"] == one["metadata"]["prompt_ids"]
    # the per-sample table is gathered in the one-process order, not recomputed
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "one" / "samples.csv"),
                                  pd.read_csv(tmp_path / "two" / "samples.csv"), rtol=0, atol=1e-9)
    digests = clip_digests(tmp_path / "two")
    assert len(digests) == 40 and digests == clip_digests(tmp_path / "one")
    assert "test_distance" in out  # rank 0 printed the records, once
    assert out.count("results:") == 1

    # a rerun at world size 1 reuses every clip the two ranks wrote
    again = Runner(load_suite(suite, run_dir=tmp_path / "two"), progress=False).run()
    assert again["metadata"]["cache"]["clips"] == {"hits": 40, "generated": 0}
    assert again["metadata"]["cache"]["embeddings"]["computed"] == 0  # embeddings too
    assert_same_results(one, again)


FAIL_SUITE = """
name: fail
dataset: {name: audio-folder, params: {root: data, split: test}}
generation: {duration_s: 1.0, seeds: [0], batch_size: 1}
generators:
  - {name: slow-noise, params: {fail_prompt: tone_3}}
  - {name: reference}
metrics: [{name: test-distance}]
report: {html: null}
"""


@pytest.mark.slow
def test_a_failing_rank_fails_the_run_by_name_and_a_second_run_is_refused(tones, write_suite, plugins,
                                                                          tmp_path):
    # plan items: slow-noise tone_0..tone_4 (0-4), reference tone_0..tone_4 (5-9); tone_3 -> rank 1
    suite = write_suite(FAIL_SUITE)
    run = tmp_path / "run"
    code, _, err = finish(torchrun([str(suite), "--out", str(run)]))
    assert code != 0
    assert ("rank 1 failed (generation): generator 'slow-noise' failed on prompts ['tone_3'] "
            "seed 0: RuntimeError: model exploded on tone_3") in err
    assert not (run / "results.json").exists()
    assert "rank 0 failed" not in err
    assert RunStore(run).count_clips() == 6  # rank 0's five and rank 1's tone_1, kept for the rerun

    holder = RunStore(run)
    holder.lock()  # another run holds the directory: every rank of this one stops
    code, _, err = finish(torchrun([str(suite), "--out", str(run)]))
    assert code != 0 and "rank 0 failed (lock): another bench run is using" in err


def rank_pid(marker: str, rank: int) -> int | None:
    """The pid of the ``bench`` worker of ``rank`` started by the torchrun with ``marker``."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            env = set((proc / "environ").read_bytes().split(b"\0"))
            cmd = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if (f"BENCH_TEST_MARKER={marker}".encode() in env and f"RANK={rank}".encode() in env
                and b"bench.testing" in cmd and b"torch.distributed.run" not in cmd):
            return int(proc.name)
    return None


RESUME_SUITE = """
name: resume
dataset: {name: audio-folder, params: {root: data, split: test}}
generation: {duration_s: 1.0, seeds: [0, 1], batch_size: 1}
generators:
  - {name: slow-noise, params: {delay_s: DELAY}}
  - {name: reference}
metrics: [{name: test-distance}]
report: {html: null}
"""


@pytest.mark.slow
def test_a_killed_rank_fails_the_run_and_one_process_resumes(tones, write_suite, plugins, tmp_path):
    slow = write_suite(RESUME_SUITE.replace("DELAY", "0.5"), "slow.yaml")
    fast = write_suite(RESUME_SUITE.replace("DELAY", "0"), "fast.yaml")  # same fingerprints, same keys
    run = tmp_path / "run"
    marker = str(tmp_path)
    proc = torchrun([str(slow), "--out", str(run)], marker=marker)
    store = RunStore(run)
    deadline = time.time() + 90
    while store.count_clips() < 3 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    victim = rank_pid(marker, 1)
    if proc.poll() is not None or victim is None:
        proc.kill()
        raise AssertionError(f"could not kill rank 1 mid-run: {finish(proc)[2][-2000:]}")
    os.kill(victim, signal.SIGKILL)
    code, _, err = finish(proc)
    assert code != 0 and "exitcode  : -9" in err  # torchrun names the killed rank and stops the rest
    finished = store.count_clips()
    assert 3 <= finished < 20 and not (run / "results.json").exists()

    rerun = Runner(load_suite(fast, run_dir=run), progress=False).run()
    assert rerun["metadata"]["cache"]["clips"] == {"hits": finished, "generated": 20 - finished}
    fresh = Runner(load_suite(fast, run_dir=tmp_path / "fresh"), progress=False).run()
    assert_same_results(fresh, rerun)
    assert clip_digests(run) == clip_digests(tmp_path / "fresh")


PER_SONG_SUITE = """
name: per-song
dataset: {name: audio-folder, params: {root: data, split: test}}
generation: {duration_s: 1.0, seeds: [0], batch_size: 2}
generators: [{name: noise, params: {sample_rate: 16000}}, {name: slow-noise}]
metrics: [{name: fad, params: {embedder: test-bands, n_bootstrap: 5}}]
report: {html: null}
"""


def test_per_song_fad_under_two_ranks_matches_one_process(tones, write_suite, plugins, tmp_path):
    """Each rank computes the per-song FAD of its own items against the merged reference fit
    (``Metric.late_values`` after the states are summed): the same column as one process, up to the
    round-off of summing frames in another order."""
    suite = write_suite(PER_SONG_SUITE)
    Runner(load_suite(suite, run_dir=tmp_path / "one"), progress=False).run()
    code, _, err = finish(torchrun([str(suite), "--out", str(tmp_path / "two")]))
    assert code == 0, err[-3000:]
    one, two = (pd.read_csv(tmp_path / d / "samples.csv") for d in ("one", "two"))
    column = "fad_per_song_test-bands"
    assert one[column].notna().all() and len(one) == 10
    np.testing.assert_allclose(two[column], one[column], rtol=1e-9)
    worst = json.loads((tmp_path / "two" / "results.json").read_text())["worst_clips"]
    assert set(worst) == {"noise", "slow-noise"} and len(worst["noise"][column]) == 5
