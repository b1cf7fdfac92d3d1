"""``bench score`` and ``bench stats``: folders of clips through the suite path, statistics files."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from baselines.controls import NoiseGenerator
from bench.cli import main
from bench.commands import run_command

DURATION_S = 3.0
SUITE = f"""
name: synth-controls
dataset:
  name: synthcaps
  params: {{split: test, num_clips: 60, seed: 0, duration_s: {DURATION_S}, sample_rate: 16000}}
generation: {{duration_s: {DURATION_S}, seeds: [0], batch_size: 16, loudness_lufs: -14.0}}
generators:
  - {{name: reference}}
  - {{name: noise, params: {{sample_rate: 16000}}}}
metrics:
  - {{name: fad, params: {{embedder: synth-tagger}}}}
  - {{name: kl, params: {{embedder: synth-tagger-logits}}}}
  - {{name: clap_score, params: {{embedder: synth-clap}}}}
"""
NUMBERS = ("metric", "value", "ci_low", "ci_high", "n", "higher_is_better")


def numbers(results: dict, generator: str) -> dict[str, tuple]:
    return {r["metric"]: tuple(r[k] for k in NUMBERS) for r in results["records"]
            if r["generator"] == generator}


def results_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """The suite run (reference and noise controls on synthcaps test clips), and the same clips
    written to two folders: ``ref`` (the synthcaps test clips, with captions.csv) and ``noise``."""
    tmp = tmp_path_factory.mktemp("score")
    suite = tmp / "suite.yaml"
    suite.write_text(SUITE)
    assert run_command([str(suite), "--out", str(tmp / "suite-run"), "--no-progress"]) == 0
    corpus = next((tmp / "suite-run" / "cache" / "datasets" / "synthcaps").iterdir()) / "test"
    ref, noise = tmp / "ref", tmp / "noise"
    ref.mkdir()
    noise.mkdir()
    rows = ["prompt_id,caption"]
    from bench.api import Prompt

    for wav in sorted(corpus.glob("*.wav")):
        if wav.stem.endswith(".melody"):
            continue
        shutil.copy(wav, ref / wav.name)
        text = json.loads(wav.with_suffix(".json").read_text())["description"]
        rows.append(f'{wav.stem},"{text}"')
        [clip] = NoiseGenerator(NoiseGenerator.Params(sample_rate=16000)).generate(
            [Prompt(wav.stem, text)], 0, DURATION_S)
        sf.write(noise / f"{wav.stem}.wav", clip.wav.T, clip.sample_rate, subtype="FLOAT")
    (tmp / "captions.csv").write_text("\n".join(rows) + "\n")
    return tmp


def score(tmp: Path, gen: str, out: str, *extra: str) -> int:
    return main(["score", str(tmp / gen), "--reference", str(tmp / "ref"), "--embedders", "offline",
                 "--captions", str(tmp / "captions.csv"), "--out", str(tmp / out), "--label", gen,
                 "--no-progress", *extra])


def test_score_equals_suite_path_and_reference_beats_noise(folders, capsys):
    suite = results_of(folders / "suite-run")
    assert score(folders, "ref", "score-ref") == 0
    capsys.readouterr()
    assert score(folders, "noise", "score-noise", "--embed-batch-size", "3") == 0  # the numbers do not change
    out = capsys.readouterr().out
    assert "synth-tagger" in out and "length policy crop" in out and "clap_score" in out
    n = suite["metadata"]["dataset"]["n_prompts"]  # the speed lines: n noise clips and n references
    read = rf"\({n} clip\(s\) read, {n * DURATION_S:g} audio-s in "
    assert re.search(rf"^generation speed: noise: .* {read}", out, re.M)
    for emb in ("synth-tagger", "synth-tagger-logits", "synth-clap"):
        assert re.search(rf"^embedding speed: {emb}: .* \({2 * n} clip\(s\) embedded, .* device cpu\)$", out,
                         re.M)
    mine = {"reference": numbers(results_of(folders / "score-ref"), "ref"),
            "noise": numbers(results_of(folders / "score-noise"), "noise")}
    for gen in ("reference", "noise"):
        theirs = numbers(suite, gen)
        assert set(mine[gen]) == set(theirs) and len(theirs) == 6
        for metric, row in theirs.items():
            np.testing.assert_allclose([x for x in mine[gen][metric][1:5] if x is not None],
                                       [x for x in row[1:5] if x is not None], rtol=1e-12, err_msg=metric)
    for metric, (_, ref_value, *_, higher) in mine["reference"].items():
        noise_value = mine["noise"][metric][1]
        assert (ref_value > noise_value) if higher else (ref_value < noise_value), metric
    # the written suite reproduces the run
    assert run_command([str(folders / "score-noise" / "suite.yaml"), "--out", str(folders / "rerun"),
                        "--no-progress"]) == 0
    assert numbers(results_of(folders / "rerun"), "noise") == mine["noise"]
    # per-clip values and the worst clips of the system
    samples = (folders / "score-noise" / "samples.csv").read_text().splitlines()[0].split(",")
    assert {"kl", "clap_score", "fad_per_song_synth-tagger"} <= set(samples)
    worst = results_of(folders / "score-noise")["worst_clips"]["noise"]
    assert len(worst["kl"]) == min(5, suite["metadata"]["dataset"]["n_prompts"])


def test_stats_file_equals_folder_and_other_embedder_is_refused(folders, capsys, tmp_path):
    stats = tmp_path / "ref.npz"
    assert main(["stats", str(folders / "ref"), "--embedder", "synth-tagger", "--embedder",
                 "synth-tagger-logits", "--embeddings", "--duration-s", str(DURATION_S), "-o", str(stats),
                 "--no-progress"]) == 0
    assert score(folders, "noise", "score-folder-fad", "--metrics", "fad,kl") == 0
    assert main(["score", str(folders / "noise"), "--reference", str(stats), "--embedders", "offline",
                 "--metrics", "fad,kl", "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    folder = {r["metric"]: r for r in results_of(folders / "score-folder-fad")["records"]}
    from_stats = {r["metric"]: r for r in results_of(tmp_path / "run")["records"]}
    assert set(folder) == set(from_stats) and {"fad_synth-tagger", "kl"} <= set(folder)
    for metric in folder:
        assert from_stats[metric]["value"] == pytest.approx(folder[metric]["value"], rel=1e-9), metric
        if metric.startswith("kl"):  # paired by prompt id: the same items, the same bootstrap
            assert from_stats[metric]["ci_low"] == pytest.approx(folder[metric]["ci_low"], rel=1e-9)
    n_ref = from_stats["fad_synth-tagger"]["protocol"]["reference"]["n_clips"]
    assert n_ref == folder["fad_synth-tagger"]["n"]
    # a file made with another embedder: absent backbone, and the same name with other weights
    capsys.readouterr()
    assert main(["score", str(folders / "noise"), "--reference", str(stats), "--embedders", "offline",
                 "--embedder", "synth-clap", "--metrics", "fad", "--out", str(tmp_path / "r2")]) == 1
    assert "has no statistics for embedder 'synth-clap'" in capsys.readouterr().err
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from bench.embedders.synth import shipped_weights

    with safe_open(shipped_weights("synth-tagger"), framework="pt") as f:
        meta = f.metadata()
    other = tmp_path / "other.safetensors"
    save_file(load_file(shipped_weights("synth-tagger")), str(other), metadata={**meta, "note": "retrained"})
    other_stats = tmp_path / "other.npz"
    assert main(["stats", str(folders / "ref"), "--embedder", "synth-tagger", "--embedder-param",
                 f"synth-tagger.weights={other}", "-o", str(other_stats), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["score", str(folders / "noise"), "--reference", str(other_stats), "--embedders", "offline",
                 "--metrics", "fad", "--out", str(tmp_path / "r3"), "--no-progress"]) == 1
    err = "\n".join(line for line in capsys.readouterr().err.strip().splitlines()
                    if not line.startswith("plan: "))  # the plan's size is printed before the error
    assert len(err.splitlines()) == 1
    assert "another 'synth-tagger' protocol (checkpoint_digest: file" in err
    assert "File protocol:" in err and "in use:" in err


def test_replacing_one_file_reembeds_one_clip(folders, tmp_path):
    gen = tmp_path / "gen"
    shutil.copytree(folders / "noise", gen)
    args = ["score", str(gen), "--reference", str(folders / "ref"), "--embedders", "offline", "--captions",
            str(folders / "captions.csv"), "--out", str(tmp_path / "run"), "--no-progress"]
    assert main(args) == 0
    n = len(list(gen.glob("*.wav")))
    assert main(args) == 0
    cache = results_of(tmp_path / "run")["metadata"]["cache"]
    assert cache == {"clips": {"hits": n, "generated": 0}, "embeddings": {"hits": 6 * n, "computed": 0}}
    victim = sorted(gen.glob("*.wav"))[1]
    wav, sr = sf.read(victim, dtype="float32")
    # other audio (a gain alone would be normalised away)
    sf.write(victim, np.roll(wav, 1000), sr, subtype="FLOAT")
    assert main(args) == 0
    cache = results_of(tmp_path / "run")["metadata"]["cache"]
    assert cache["clips"] == {"hits": n - 1, "generated": 1}
    assert cache["embeddings"] == {"hits": 6 * n - 3, "computed": 3}  # one clip, three embedders
    suite = yaml.safe_load((tmp_path / "run" / "suite.yaml").read_text())
    assert suite["generators"][0]["name"] == "files"
