"""bench run end to end on tones: results schema, per-sample table, controls, resume after SIGKILL."""

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

from bench.audio import loudness_lufs, read_audio
from bench.cli import main
from bench.runner import RESULTS_SCHEMA, RunError, Runner
from bench.store import RunStore
from bench.suite import load_suite
from bench.testing import TONES_SUITE

ROOT = Path(__file__).resolve().parents[2]


def _records(run: Path) -> list[dict]:
    return json.loads((run / "results.json").read_text())["records"]


def test_run_writes_results_and_samples(tones, write_suite, plugins, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["run", str(write_suite(TONES_SUITE)), "--out", str(run), "--no-progress"]) == 0
    results = json.loads((run / "results.json").read_text())
    assert results["suite"] == "tones" and results["created"]
    df = pd.DataFrame(results["records"])
    assert list(df.columns) == list(RESULTS_SCHEMA)
    assert list(df.generator) == ["reference", "noise", "silence", "retrieval"]
    assert set(df.metric) == {"test_distance"} and (df.n == 5).all() and not df.higher_is_better.any()
    proto = df.protocol[0]
    assert proto["embedders"]["test-bands"]["sample_rate"] == 8000
    assert proto["bound"] == {"test-bands": proto["embedders"]["test-bands"]}  # bind_embedder hook
    assert proto["generation"]["loudness_lufs"] == -14.0 and proto["dataset"]["n_prompts"] == 5
    # the per-sample table holds the values the records average
    samples = pd.read_csv(run / "samples.csv")
    assert len(samples) == 20
    means = samples.groupby("generator", sort=False).test_distance.mean()
    np.testing.assert_allclose(means[df.generator].to_numpy(), df.value.to_numpy(), rtol=1e-12)
    # the controls are ordered: the dataset's own audio is nearest, silence farthest
    v = dict(zip(df.generator, df.value))
    assert v["reference"] < v["noise"] < v["silence"] and v["reference"] < v["retrieval"]
    # evaluated audio was normalised to -14 LUFS (silence left silent and flagged)
    wav, sr = read_audio(run / samples.audio[samples.generator == "noise"].iloc[0])
    assert abs(loudness_lufs(wav, sr) - (-14.0)) < 0.2
    assert samples.silent[samples.generator == "silence"].all()
    assert not samples.silent[samples.generator != "silence"].any()
    meta = results["metadata"]
    assert meta["cache"]["clips"] == {"hits": 0, "generated": 20}
    assert meta["generators"]["retrieval"]["name"] == "retrieval"
    assert "noise" in capsys.readouterr().out
    html = (run / "report.html").read_text()
    grid = (run / "report_files" / "grid.js").read_text()  # the listening grid's data, beside the page
    assert "retrieval" in html and "audio/noise/tone_0__s0.wav" in grid


def test_reference_control_scores_exactly_zero_without_normalisation(tones, write_suite, plugins, tmp_path):
    text = TONES_SUITE.replace("batch_size: 2", "batch_size: 2\n  loudness_lufs: null")
    planned = load_suite(write_suite(text), run_dir=tmp_path / "run")
    results = Runner(planned, only=["reference"], progress=False).run()
    [rec] = results["records"]
    assert rec["generator"] == "reference" and rec["value"] == 0.0 and rec["n"] == 5


def test_limit_only_and_unknown_only(tones, write_suite, plugins, tmp_path):
    planned = load_suite(write_suite(TONES_SUITE), run_dir=tmp_path / "run")
    results = Runner(planned, limit=2, only=["noise", "silence"], progress=False).run()
    assert [r["generator"] for r in results["records"]] == ["noise", "silence"]
    assert all(r["n"] == 2 for r in results["records"])
    with pytest.raises(RunError, match="did you mean 'noise'"):
        Runner(planned, only=["noize"], progress=False).run()


def test_a_failing_item_fails_the_run(tones, write_suite, plugins, tmp_path, capsys):
    from bench.api import Generator
    from bench.registry import GENERATORS

    class FailsOnThird(plugins.SlowNoise):
        def generate(self, prompts, seed, duration_s):
            if any(p.id == "tone_2" for p in prompts):
                raise RuntimeError("model exploded")
            return super().generate(prompts, seed, duration_s)

    assert issubclass(FailsOnThird, Generator)
    GENERATORS.register("fails", FailsOnThird)
    try:
        path = write_suite(TONES_SUITE.replace("{name: reference}", "{name: fails}"))
        run = tmp_path / "run"
        assert main(["run", str(path), "--out", str(run), "--no-progress"]) == 1
    finally:
        GENERATORS.unregister("fails")
    err = capsys.readouterr().err
    assert "generator 'fails' failed on prompts ['tone_2', 'tone_3'] seed 0" in err
    assert "model exploded" in err
    assert not (run / "results.json").exists()
    assert RunStore(run).count_clips() == 2  # the batch before the failure is kept for the rerun


RESUME_SUITE = """
name: resume
dataset: {name: audio-folder, params: {root: data, split: test}}
generation: {duration_s: 1.0, seeds: [0, 1], batch_size: 1}
generators:
  - {name: slow-noise, params: {delay_s: DELAY}}
  - {name: reference}
metrics: [{name: test-distance}]
"""


def _bench(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "bench.testing", *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_killed_run_resumes_with_cached_clips_and_same_results(tones, write_suite, plugins, tmp_path):
    suite = write_suite(RESUME_SUITE.replace("DELAY", "0.4"))
    run = tmp_path / "run"
    proc = _bench(["run", str(suite), "--out", str(run), "--no-progress"])
    store = RunStore(run)
    deadline = time.time() + 120
    while store.count_clips() < 3 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    if proc.poll() is not None:
        tail = proc.stderr.read().decode()[-2000:]
        raise AssertionError(f"the run ended before it could be killed: {tail}")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = store.count_clips()
    assert 3 <= finished < 20 and not (run / "results.json").exists()
    for f in (run / "cache" / "clips").glob("*/*.npz"):  # no half-written clip under a final name
        assert store.load_clip(f.stem) is not None

    planned = load_suite(suite, run_dir=run)
    rerun = Runner(planned, progress=False).run()
    assert rerun["metadata"]["cache"]["clips"] == {"hits": finished, "generated": 20 - finished}

    fresh = Runner(load_suite(suite, run_dir=tmp_path / "fresh"), progress=False).run()
    assert fresh["metadata"]["cache"]["clips"] == {"hits": 0, "generated": 20}
    assert rerun["records"] == fresh["records"]
    again = Runner(planned, progress=False).run()
    assert again["metadata"]["cache"]["clips"] == {"hits": 20, "generated": 0}
    assert again["records"] == fresh["records"]


MUSICCAPS_SUITE = """
name: mc
dataset:
  name: musiccaps
  params: {csv: mc.csv, audio_dir: clips, allow_missing: ALLOW}
generation: {duration_s: 0.5, seeds: [0]}
generators: [{name: reference}, {name: noise, params: {sample_rate: 16000}}]
metrics: [{name: test-distance}]
report: {html: null}
"""


def test_musiccaps_missing_clips_block_the_run_unless_allowed(write_suite, plugins, tmp_path, capsys):
    from bench.datasets.musiccaps import COLUMNS
    from bench.testing import write_tones

    write_tones(tmp_path / "clips", n=3, split=None)
    rows = [",".join(COLUMNS)] + [f"tone_{i},0,10,a tone number {i},[],True,False" for i in range(5)]
    (tmp_path / "mc.csv").write_text("\n".join(rows) + "\n")
    strict = write_suite(MUSICCAPS_SUITE.replace("ALLOW", "false"))
    assert main(["run", str(strict), "--out", str(tmp_path / "run1")]) == 1
    err = capsys.readouterr().err
    assert "2 of 5 MusicCaps clips are missing" in err and "tone_3, tone_4" in err
    assert not (tmp_path / "run1" / "cache" / "clips").exists()
    lenient = write_suite(MUSICCAPS_SUITE.replace("ALLOW", "true"))
    assert main(["run", str(lenient), "--out", str(tmp_path / "run2"), "--no-progress"]) == 0
    records = _records(tmp_path / "run2")
    assert [r["n"] for r in records] == [3, 3]
    assert records[0]["protocol"]["dataset"]["n_missing"] == 2
    assert records[0]["protocol"]["dataset"]["n_prompts"] == 3


SYNTHCAPS_SUITE = """
name: synthcaps-controls
dataset:
  name: synthcaps
  params: {split: test, num_clips: 40, duration_s: 1.5, sample_rate: 16000}
generation: {duration_s: 1.5, seeds: [0], batch_size: 4}
generators:
  - {name: reference}
  - {name: retrieval, params: {train: {name: synthcaps, params: {split: train, num_clips: 40, duration_s: 1.5,
                                                                 sample_rate: 16000}}}}
  - {name: noise, params: {sample_rate: 16000}}
  - {name: silence, params: {sample_rate: 16000}}
metrics: [{name: test-distance}]
"""


@pytest.mark.slow
def test_synthcaps_suite_with_the_controls(write_suite, plugins, tmp_path):
    run = tmp_path / "run"
    assert main(["run", str(write_suite(SYNTHCAPS_SUITE)), "--out", str(run), "--no-progress"]) == 0
    results = json.loads((run / "results.json").read_text())
    values = {r["generator"]: r["value"] for r in results["records"]}
    assert [r["n"] for r in results["records"]] == [4, 4, 4, 4]
    assert values["reference"] < min(values["retrieval"], values["noise"])
    assert values["silence"] == max(values.values())
    corpus = run / "cache" / "datasets" / "synthcaps"
    assert [p.name for p in corpus.iterdir()] == ["n40-seed0-1.5s-16000hz"]  # one corpus for both splits
    samples = pd.read_csv(run / "samples.csv")
    assert samples.text.str.len().min() > 20 and samples.reference_audio.notna().all()
