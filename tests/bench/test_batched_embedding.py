"""``bench run`` embeds clips in batches: same numbers as one clip at a time, per-clip errors, cache
written batch by batch, and the speed lines of the run's summary."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import torch

from bench.cli import main
from bench.runner import RunError, Runner
from bench.suite import load_suite
from bench.testing import TONES_SUITE, BandEmbedder

ONE_GENERATOR = """
name: one
dataset: {name: audio-folder, params: {root: data, split: test}}
generation: {duration_s: 1.0, seeds: [0], batch_size: 5}
generators: [{name: slow-noise, params: {silent: [tone_2]}}]
metrics: [{name: test-distance}]
report: {html: null}
"""


class BatchBands(BandEmbedder):
    """``test-bands`` with ``embed_batch``: the frames of all clips through one FFT call. Records the
    size of each call; ``on_silence`` says what a silent clip gets ("raise", "nan" or "ok");
    ``interrupt_at`` raises KeyboardInterrupt on that call (1-based; a killed run)."""

    calls: ClassVar[list[int]] = []
    on_silence: ClassVar[str] = "ok"
    interrupt_at: ClassVar[int | None] = None

    def embed_batch(self, wavs):
        calls = type(self).calls
        calls.append(len(wavs))
        if len(calls) == self.interrupt_at:
            raise KeyboardInterrupt
        if self.on_silence == "raise" and any(not np.any(w) for w in wavs):
            raise ValueError("a silent clip")
        frames = [w[: len(w) // 512 * 512].reshape(-1, 512) for w in wavs]
        power = np.abs(np.fft.rfft(np.concatenate(frames), axis=1))[:, :256] ** 2
        feats = np.log10(power.reshape(-1, 8, 32).sum(axis=2) + 1e-8)
        out = np.split(feats, np.cumsum([len(f) for f in frames])[:-1])
        if self.on_silence == "nan":
            out = [np.full_like(o, np.nan) if not np.any(w) else o for o, w in zip(out, wavs)]
        return out


@pytest.fixture
def batched(plugins, monkeypatch):
    from bench.registry import EMBEDDERS

    monkeypatch.setattr(BatchBands, "calls", [])
    EMBEDDERS.register("test-bands", BatchBands, replace=True)  # the plugins fixture unregisters it
    return BatchBands


def _run(suite: Path, run: Path, batch: int) -> dict:
    return Runner(load_suite(suite, run_dir=run), progress=False, embed_batch_size=batch).run()


def _embeddings_on_disk(run: Path) -> int:
    return len(list((run / "cache" / "embeddings").glob("*/*.npz")))


def test_batch_size_changes_no_number(tones, write_suite, batched, tmp_path):
    """Batches of 4 clips give the values, per-sample rows and cache counts of one clip per call:
    the frames do not mix across clips, so equal to the last bit here. (A backbone whose batch shares
    matrix products across clips, VGGish's examples, differs from its one-clip ``embed`` within 1e-5
    per feature: tests/bench/embedders/test_embed_batch.py.)"""
    suite = write_suite(TONES_SUITE)
    one = _run(suite, tmp_path / "one", 1)
    assert set(batched.calls) == {1}
    batched.calls.clear()
    four = _run(suite, tmp_path / "four", 4)
    computed = four["metadata"]["cache"]["embeddings"]["computed"]
    assert max(batched.calls) == 4 and sum(batched.calls) == computed
    assert one["records"] == four["records"] and len(one["records"]) == 4
    assert one["metadata"]["cache"] == four["metadata"]["cache"]
    # 5 references and 5 clips of each generator, less audio seen before: silence's five equal clips
    # (one computed, four hits) and retrieval's, the train split's equal tones = the reference generator's
    assert four["metadata"]["cache"]["embeddings"] == {"computed": 16, "hits": 9}
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "one" / "samples.csv"),
                                  pd.read_csv(tmp_path / "four" / "samples.csv"))
    again = _run(suite, tmp_path / "four", 3)  # cached features, another chunking: the same numbers
    assert again["records"] == one["records"]
    assert again["metadata"]["cache"]["embeddings"] == {"computed": 0, "hits": 25}


@pytest.mark.parametrize("on_silence,error", [
    ("raise", "embedder 'test-bands' failed on clip 'tone_2' seed 0: ValueError: a silent clip"),
    ("nan", "embedder 'test-bands' returned shape (15, 8) (want [F, D]) or NaN/inf for clip 'tone_2' seed 0"),
])
def test_a_bad_clip_in_a_batch_is_named_and_the_others_kept(tones, write_suite, batched, tmp_path,
                                                          monkeypatch, on_silence, error):
    monkeypatch.setattr(BatchBands, "on_silence", on_silence)
    run = tmp_path / "run"
    with pytest.raises(RunError) as info:
        _run(write_suite(ONE_GENERATOR), run, 4)
    assert str(info.value) == error
    # tone_0..3 went in one batch; on the failed call each was embedded alone: 3 good ones cached
    assert batched.calls == ([4, 1, 1, 1, 1] if on_silence == "raise" else [4])
    assert _embeddings_on_disk(run) == 3


def test_a_killed_run_keeps_the_finished_batches(tones, write_suite, batched, tmp_path, monkeypatch):
    monkeypatch.setattr(BatchBands, "interrupt_at", 2)
    suite, run = write_suite(ONE_GENERATOR), tmp_path / "run"
    runner = Runner(load_suite(suite, run_dir=run), progress=False, embed_batch_size=2)
    with pytest.raises(KeyboardInterrupt):
        runner.run()
    runner.store.unlock()
    assert batched.calls == [2, 2] and _embeddings_on_disk(run) == 2  # the first batch is on disk
    monkeypatch.setattr(BatchBands, "interrupt_at", None)
    rerun = _run(suite, run, 2)
    assert rerun["metadata"]["cache"]["embeddings"] == {"hits": 2, "computed": 8}  # 5 clips + 5 references


def test_summary_prints_speed_with_clip_counts(tones, write_suite, batched, tmp_path, capsys):
    suite, run = write_suite(TONES_SUITE), tmp_path / "run"
    assert main(["run", str(suite), "--out", str(run), "--no-progress", "--embed-batch-size", "3"]) == 0
    out = capsys.readouterr().out
    threads, generators = torch.get_num_threads(), ("reference", "noise", "silence", "retrieval")
    for gen in generators:
        line = re.search(rf"^generation speed: {gen}: .*$", out, re.M)
        assert line, out
        assert re.fullmatch(rf"generation speed: {gen}: [0-9.e+]+ audio-s/s \(5 clip\(s\) generated, "
                            rf"5 audio-s in [0-9.e+-]+ s; threads {threads}, device cpu\)", line[0]), line[0]
    line = re.search(r"^embedding speed: test-bands: .*$", out, re.M)[0]
    assert "(16 clip(s) embedded, 16 audio-s in " in line
    assert f"9 more from the cache; threads {threads}, device cpu)" in line
    speed = json.loads((run / "results.json").read_text())["metadata"]["throughput"]
    assert speed["embedding"]["test-bands"]["clips"] == 16 and speed["generation"]["noise"]["audio_s"] == 5.0
    assert main(["run", str(suite), "--out", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    for gen in generators:
        assert f"generation speed: {gen}: cached (5 clip(s) from the cache)" in out
    assert "embedding speed: test-bands: all cached (25 clip(s) from the cache)" in out
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(suite), "--out", str(run), "--embed-batch-size", "0"])
    assert exit_info.value.code == 2
    assert "--embed-batch-size: expected a whole number of clips >= 1, got '0'" in capsys.readouterr().err


def test_generation_speed_reports_the_threads_generate_ran_with():
    """MusicGen.generate runs a small model on one thread and restores torch's count afterwards: the
    speed line must say 1, not the count torch shows once the call has returned."""
    from bench.throughput import Throughput
    from musicgen.threads import generation_threads

    speeds = Throughput("cpu")
    with speeds.timed("generation", "small-model") as speed:
        with generation_threads(num_params=1000, explicit=1):
            speed.clips, speed.audio_s = 1, 1.0
    with speeds.timed("embedding", "plain") as speed:
        speed.clips, speed.audio_s = 1, 1.0
    out = speeds.as_json()
    assert out["generation"]["small-model"]["threads"] == [1]
    assert out["embedding"]["plain"]["threads"] == [torch.get_num_threads()]
