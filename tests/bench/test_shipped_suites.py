"""Every suite under suites/ validates (``bench validate``), except those that need downloaded weights or
data, whose errors must list every missing file. Download suites are validated from a copy in an
empty folder with an empty Hugging Face cache, so files present on a developer's machine do not count.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench.suite import load_suite
from bench.yamlsource import SuiteError

SUITES = Path(__file__).resolve().parents[2] / "suites"

#: suites that need downloads -> what their error must name (files, hub ids, folders)
NEEDS_DOWNLOADS: dict[str, list[str]] = {
    "musiccaps": [
        "musiccaps-public.csv",
        "facebook/musicgen-small", "facebook/musicgen-medium", "facebook/musicgen-large",
        "facebook/musicgen-melody",
        "vggish-10086976.pth", "passt-s-f128-20sec-p16-s10-ap.474-swa.pt",
        "music_audioset_epoch_15_esc_90.14.pt",
        "samples/riffusion", "samples/mousai", "samples/musiclm", "samples/noise2music",
    ],
    "melody": ["facebook/musicgen-melody"],
}


def _suite_names() -> list[str]:
    return sorted(p.stem for p in SUITES.glob("*.yaml"))


def test_the_issue_suites_are_all_there():
    assert {"ci", "demo", "musiccaps", "melody", "memorization", "ablation_patterns",
            "ablation_sizes", "controls"} <= set(_suite_names())
    assert set(NEEDS_DOWNLOADS) <= set(_suite_names())


@pytest.mark.parametrize("name", [n for n in _suite_names() if n not in NEEDS_DOWNLOADS])
def test_offline_suite_validates(name, tmp_path):
    planned = load_suite(SUITES / f"{name}.yaml", run_dir=tmp_path / name)
    assert planned.generators and planned.suite.name == name


@pytest.mark.parametrize("name", sorted(NEEDS_DOWNLOADS))
def test_download_suite_lists_every_missing_file(name, tmp_path, monkeypatch):
    (tmp_path / "suites").mkdir()
    shutil.copy(SUITES / f"{name}.yaml", tmp_path / "suites" / f"{name}.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    with pytest.raises(SuiteError) as err:
        load_suite(tmp_path / "suites" / f"{name}.yaml", run_dir=tmp_path / "run")
    text = str(err.value)
    absent = [thing for thing in NEEDS_DOWNLOADS[name] if thing not in text]
    assert not absent, f"bench validate {name}.yaml does not name {absent}:\n{text}"
    # one problem per line, each pointing at the suite file and a line number
    for line in text.splitlines()[1:]:
        assert f"{name}.yaml:" in line


# Table 4 of the paper: autoregressive steps for 30 s (T = 1500 frames, K = 4 codebooks)
TABLE4_STEPS = {"delay": 1500, "partial_delay": 1500, "parallel": 1500, "partial_flattening": 3000,
                "coarse_first": 3000, "flattening": 6000}


def test_pattern_ablation_covers_every_pattern_with_table4_step_ratios():
    from baselines.trained_models import resolve_recipe
    from musicgen.modules.patterns import pattern_names
    from tests.bench.report_fixture import pattern_info

    planned = load_suite(SUITES / "ablation_patterns.yaml", check=False)
    trained = [g for g in planned.generators if g.name == "musicgen"]
    patterns = [g.params.pattern for g in trained]
    assert sorted(patterns) == sorted(pattern_names())  # Table 4's six and the two stereo forms
    assert set(TABLE4_STEPS) < set(patterns)
    duration = planned.suite.generation.duration_s
    info = {p: pattern_info(p, duration) for p in patterns}  # as the adapter's describe() reports it
    steps = {p: i["steps"] - i["delay_tail"] for p, i in info.items()}
    assert {p: steps[p] / steps["delay"] for p in TABLE4_STEPS} == \
        {p: s / TABLE4_STEPS["delay"] for p, s in TABLE4_STEPS.items()}
    recipes = []
    for g in trained:  # one recipe, one training budget; the LM can hold the longest sequence
        recipe = resolve_recipe(g.params.recipe, planned.path.parent, g.params.overrides,
                                pattern=g.params.pattern)
        assert recipe["pattern"] == {"name": g.params.pattern}
        need = info[g.params.pattern]["steps"]
        assert recipe["model"]["overrides"]["max_positions"] >= need
        # stereo patterns need stereo tokens; nothing else may differ between the models
        assert bool(recipe["codec"].get("stereo")) == g.params.pattern.startswith("stereo_")
        recipes.append({k: v for k, v in recipe.items() if k != "pattern"}
                       | {"codec": {k: v for k, v in recipe["codec"].items() if k != "stereo"}})
    assert len({json.dumps(r, sort_keys=True) for r in recipes}) == 1
    # the held-out prompts come from the very corpus the models train on (same clips, same splits)
    data = recipes[0]["data"]
    dataset = planned.suite.dataset.params
    assert dataset["split"] == "test"
    assert {k: dataset[k] for k in ("num_clips", "seed", "duration_s")} == \
        {k: data[k] for k in ("num_clips", "seed", "duration_s")}
    # generated clips are as long as the training crops: no pattern generates past what it saw
    assert round(duration * 50) == recipes[0]["train"]["segment_frames"]


def test_size_ablation_grows_the_model_with_one_training_budget():
    from baselines.trained_models import SIZES, resolve_recipe

    planned = load_suite(SUITES / "ablation_sizes.yaml", check=False)
    trained = [g for g in planned.generators if g.name == "musicgen"]
    assert [g.params.size for g in trained] == list(SIZES)
    models = [resolve_recipe(g.params.recipe, planned.path.parent, g.params.overrides, size=g.params.size)
              for g in trained]
    widths = [(m["model"]["overrides"]["dim"], m["model"]["overrides"]["num_layers"]) for m in models]
    assert widths == sorted(widths) and len(set(widths)) == len(widths)
    assert len({json.dumps(m["train"], sort_keys=True) for m in models}) == 1
    # the medium model is the pattern ablation's delay model: one digest, so its cache can be reused
    from baselines.trained_models import recipe_digest

    patterns = load_suite(SUITES / "ablation_patterns.yaml", check=False)
    delay = next(g for g in patterns.generators if g.name == "musicgen" and g.params.pattern == "delay")
    delay_recipe = resolve_recipe(delay.params.recipe, patterns.path.parent, delay.params.overrides,
                                  pattern="delay")
    assert recipe_digest(models[list(SIZES).index("medium")]) == recipe_digest(delay_recipe)


def test_no_shipped_suite_lists_an_unfinished_adapter():
    for name in _suite_names():
        planned = load_suite(SUITES / f"{name}.yaml", check=False)
        assert not [g.label for g in planned.generators if g.name == "mousai"], name


def test_ci_baseline_covers_every_generator_and_metric_of_the_ci_suite():
    from bench.compare import load_baseline

    planned = load_suite(SUITES / "ci.yaml", check=False)
    baseline = load_baseline(SUITES / "baselines" / "ci.json")
    for g in planned.generators:
        for m in planned.metrics:  # a metric may record several values: fad_synth-tagger, kl_reverse, ...
            assert any(e.generator == g.label and e.metric.startswith(m.name) for e in baseline.entries), \
                f"{g.label}/{m.name} is not in suites/baselines/ci.json"
