"""Scores, screening and metric-human agreement: parity with scipy, simulated raters recover the metric
they follow, a random metric's interval covers zero, screening removes the raters it should."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kendalltau, spearmanr

from bench.cli import main as bench_main
from bench.listening.agreement import kendall_rows, spearman_rows, system_agreement, system_scores
from bench.listening.design import SYSTEM
from bench.listening.page import build_test
from bench.listening.ratings import load_store
from bench.listening.screening import make_rules, ratings_frame, screen
from bench.listening.section import summarise
from bench.listening.simulate import simulate
from bench.run_results import Record
from tests.bench.listening.listening_fixture import make_listening_run, system_names


def test_row_correlations_match_scipy():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, size=(40, 9)).astype(float)  # ties on purpose
    y = x + rng.normal(0, 2, size=x.shape)
    y[3] = 1.0  # a constant row
    rho, tau = spearman_rows(x, y), kendall_rows(x, y)
    for i in range(len(x)):
        if i == 3:
            assert np.isnan(rho[i]) and np.isnan(tau[i])
            continue
        assert rho[i] == pytest.approx(spearmanr(x[i], y[i]).statistic, abs=1e-12)
        assert tau[i] == pytest.approx(kendalltau(x[i], y[i]).statistic, abs=1e-12)  # tau-b


def _frame(scores: dict[tuple[str, str, str], float], scale: str = "ovl") -> pd.DataFrame:
    rows = [(r, i, f"{i}/{s}", SYSTEM, s, i, 0, scale, v) for (r, i, s), v in scores.items()]
    return pd.DataFrame(
        rows, columns=["rater", "item", "stimulus", "kind", "system", "prompt_id", "seed", "scale", "score"]
    )


def test_system_scores_are_means_with_an_interval_over_raters_and_items():
    rng = np.random.default_rng(1)
    scores = {
        (f"r{r}", f"i{i}", s): 40 + 10 * k + rng.normal(0, 5)
        for r in range(6)
        for i in range(8)
        for k, s in enumerate("abc")
    }
    frame = _frame(scores)
    out = system_scores(frame, "ovl", n_boot=400, seed=0)
    for s in "abc":
        mine = [v for (_, _, sys_), v in scores.items() if sys_ == s]
        e = out[s]
        assert e.value == pytest.approx(np.mean(mine)) and e.n == 48 and e.valid == 400
        assert e.low < e.value < e.high and e.high - e.low < 10
    # a rater who rates everything 30 points higher moves the interval, not only the mean
    biased = _frame(
        {**scores, **{("r0", f"i{i}", s): v + 30 for (r, i, s), v in scores.items() if r == "r0"}}
    )
    wide = system_scores(biased, "ovl", n_boot=400, seed=0)["a"]
    assert wide.high - wide.low > out["a"].high - out["a"].low


def _records(values: dict[str, float], name: str = "m", hib: bool = True) -> list[Record]:
    return [Record(s, name, v, hib, protocol={"p": name}) for s, v in values.items()]


def test_agreement_signs_are_oriented():
    frame = _frame(
        {
            (f"r{r}", f"i{i}", s): 10.0 * k + r + i
            for r in range(3)
            for i in range(3)
            for k, s in enumerate("abcd")
        }
    )
    up = system_agreement(frame, _records(dict(zip("abcd", [1, 2, 3, 4]))), "ovl", n_boot=100)
    down = system_agreement(
        frame, _records(dict(zip("abcd", [9, 8, 7, 6])), "fad", hib=False), "ovl", n_boot=100
    )
    assert up[0].spearman.value == down[0].spearman.value == 1.0
    assert up[0].kendall.value == down[0].kendall.value == 1.0
    few = system_agreement(frame, _records({"a": 1, "b": 2}), "ovl", n_boot=100)
    assert few == []  # fewer than 3 systems: no correlation


@pytest.fixture(scope="module")
def big_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("agree")
    run = make_listening_run(root, n_systems=8, n_prompts=10, duration_s=0.25)
    key, _ = build_test(run, root / "page", n_items=10)
    return run, key


def test_simulated_raters_recover_their_metric_and_a_random_metric_covers_zero(big_run):
    run, key = big_run
    simulate(run, raters=8, noise=15.0, metric="quality", seed=0)
    frame = ratings_frame(key, load_store(run, key))
    systems = system_names(8)
    rng = np.random.default_rng(123)
    covered = 0
    for trial in range(20):
        records = _records(dict(zip(systems, rng.normal(size=8))), name=f"random{trial}")
        (a,) = system_agreement(frame, records, "ovl", n_boot=400, seed=trial)
        covered += a.spearman.low <= 0 <= a.spearman.high and a.kendall.low <= 0 <= a.kendall.high
    print(f"random metrics whose intervals cover zero: {covered} of 20")
    assert covered >= 17, covered  # 95 % intervals: about 19 of 20
    (summary,) = summarise(run, n_boot=400)
    by = {(a.metric, a.scale): a for a in summary.system_agreement}
    for scale in ("ovl", "rel"):
        for metric in ("quality", "distance"):  # distance is lower-is-better, oriented
            a = by[(metric, scale)]
            assert a.spearman.low > 0 and a.kendall.low > 0, (metric, scale, a)
    for a in summary.system_agreement + summary.clip_agreement:  # re-centred: the estimate is inside
        assert a.spearman.low <= a.spearman.value <= a.spearman.high and -1 <= a.spearman.low
        assert a.kendall.low <= a.kendall.value <= a.kendall.high <= 1
    clip = {(a.metric, a.scale): a for a in summary.clip_agreement}
    assert clip[("quality", "ovl")].spearman.low > 0 and clip[("quality", "ovl")].spearman.n == 80
    assert summary.scores["ovl"][systems[7]].value > summary.scores["ovl"][systems[0]].value


def test_crowdmos_removes_a_random_rater_and_bs1534_a_deaf_one(tmp_path, big_run):
    run, key = big_run
    simulate(run, raters=6, noise=5.0, metric="quality", seed=1)
    frame = ratings_frame(key, load_store(run, key))
    rng = np.random.default_rng(7)
    noisy = frame[frame["rater"] == "sim-01"].assign(
        rater="random", score=lambda d: rng.integers(1, 101, len(d))
    )
    flat = frame[frame["rater"] == "sim-02"].assign(rater="flat", score=50.0)
    both = pd.concat([frame, noisy, flat], ignore_index=True)
    result = screen(both, make_rules(["crowdmos"], "ovl-rel"))
    assert set(result.removed["crowdmos"]) == {"random", "flat"}
    assert len(result.kept) == 6
    lenient = screen(both, make_rules(["crowdmos"], "ovl-rel", min_corr=-1.0))
    assert lenient.removed["crowdmos"] == {}
    # BS.1534-3 on a MUSHRA test: a rater below 90 on the hidden reference in 2 of 3 items goes
    mkey, _ = build_test(run, tmp_path / "m", protocol="mushra", n_items=3)
    simulate(run, raters=4, noise=1.0, metric="quality", test_id=mkey.test_id, seed=2)
    m = ratings_frame(mkey, load_store(run, mkey))
    ref = (m["rater"] == "sim-01") & (m["kind"] == "hidden_reference")
    m.loc[ref, "score"] = [60.0, 95.0, 70.0]
    result = screen(m, make_rules(["bs1534"], "mushra"))
    assert (
        list(result.removed["bs1534"]) == ["sim-01"]
        and "67 % of 3 items" in result.removed["bs1534"]["sim-01"]
    )
    assert screen(m, make_rules(["bs1534"], "mushra", max_fraction=0.7)).removed["bs1534"] == {}


def test_simulate_cli(big_run, capsys):
    run, key = big_run
    assert (
        bench_main(
            [
                "ratings",
                "simulate",
                str(run),
                "--raters",
                "3",
                "--noise",
                "2",
                "--metric",
                "distance",
                "--test",
                key.test_id,
            ]
        )
        == 0
    )
    assert "3 simulated raters following distance@" in capsys.readouterr().out
    raters = load_store(run, key)["raters"]
    assert [r["rater_id"] for r in raters] == [
        "sim-01",
        "sim-02",
        "sim-03",
    ]  # earlier simulated ones replaced
    assert raters[0]["simulated"]["metric"].startswith("distance@")
    assert (
        bench_main(["ratings", "simulate", str(run), "--raters", "3", "--noise", "2", "--metric", "nope"])
        == 2
    )
    assert "--metric 'nope' is not a metric of the run" in capsys.readouterr().err
    json.dumps(raters)  # the store is plain JSON
    # a person whose id is one a simulated rater takes is never overwritten by a simulation
    from bench.listening.ratings import store_path

    path = store_path(run, key.test_id)
    data = json.loads(path.read_text())
    data["raters"][1]["simulated"] = None
    path.write_text(json.dumps(data))
    before = path.read_bytes()
    args = ["ratings", "simulate", str(run), "--raters", "3", "--noise", "2", "--test", key.test_id]
    assert bench_main(args) == 2
    assert "raters ['sim-02'] have the ids simulated raters take" in capsys.readouterr().err
    assert path.read_bytes() == before
    path.unlink()


def test_listened_rule_removes_raters_who_skipped_clips(big_run):
    run, key = big_run
    simulate(run, raters=3, noise=5.0, metric="quality", test_id=key.test_id, seed=3)
    frame = ratings_frame(key, load_store(run, key))
    assert (frame["listened"] == 1.0).all()  # simulated raters listen to everything
    first = frame["stimulus"].iloc[0]
    frame.loc[(frame["rater"] == "sim-02") & (frame["stimulus"] == first), "listened"] = 0.5
    frame.loc[frame["rater"] == "sim-03", "listened"] = float("nan")  # an export that did not record it
    result = screen(frame, make_rules(["listened"], "ovl-rel"))
    assert sorted(result.removed["listened"]) == ["sim-02", "sim-03"]
    lenient = screen(frame, make_rules(["listened"], "ovl-rel", max_unlistened=0.05))
    assert list(lenient.removed["listened"]) == ["sim-03"]


def test_a_damaged_store_is_named_in_the_report_not_fatal(tmp_path):
    from bench.listening.ratings import store_path
    from bench.report import write_report
    from tests.bench.html_tree import parse

    run = make_listening_run(tmp_path, n_systems=3, n_prompts=2)
    key, _ = build_test(run, tmp_path / "page", n_items=2)
    simulate(run, raters=2, noise=1.0)
    store = store_path(run, key.test_id)
    data = json.loads(store.read_text())
    data["raters"][0]["export"]["ratings"][0]["stimulus"] = "gone"
    store.write_text(json.dumps(data))
    (problem,) = parse(write_report(run).read_text()).find_all("p", "listening-problem")
    assert f"test {key.test_id}: damaged ratings store" in problem.text()
    with pytest.raises(ValueError, match="ratings.json: damaged ratings store"):
        summarise(run)
