"""Synthetic raters whose ratings follow a metric, to try the whole loop without people.

For a metric m (``--metric NAME`` or ``NAME@DIGEST``; default the run's first metric with a value
for at least two systems of the test), each system stimulus gets z, the metric's value for that clip
(its per-clip column in the samples table when there is one, else the system's value in
``results.json``), negated when lower is better, standardised over the test's system stimuli
(mean 0, SD 1). Each simulated rater r gives, on every scale::

    score = clip(round(50 + 15 z + e), low, high),   e ~ Normal(0, noise), independent per rating

and, in MUSHRA, ``clip(round(100 + e))`` to the hidden reference and ``clip(round(15 + e))`` to the
anchor. Raters are ``sim-01``, ``sim-02``, ...; their exports go through the same validation as
real ones and are stored marked as simulated (with this function, the metric, noise and seed), so
the report says the ratings are synthetic. Simulating again replaces the earlier simulated raters.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np

from bench.listening.design import ANCHOR, HIDDEN_REFERENCE, ListeningError, TestKey, load_keys
from bench.listening.ratings import EXPORT_FORMAT, EXPORT_VERSION, import_exports, load_store
from bench.run_results import load_results, load_samples

FUNCTION = "clip(round(50 + 15 z + e)), e ~ N(0, noise); hidden reference 100 + e, anchor 15 + e"


def pick_test(run_dir: str | Path, test_id: str | None) -> TestKey:
    keys = load_keys(run_dir)
    if not keys:
        raise ListeningError(f"{run_dir}: no listening test; run `bench listen {run_dir}` first")
    if test_id is None:
        return max(keys.values(), key=lambda k: k.created)
    if test_id not in keys:
        raise ListeningError(
            f"--test {test_id!r}: not a listening test of {run_dir} (known: {', '.join(keys)})"
        )
    return keys[test_id]


def metric_values(run_dir: Path, key: TestKey, metric: str | None) -> tuple[str, dict[str, float]]:
    """(metric name@digest, stimulus id -> oriented metric value) for the test's system stimuli."""
    records = load_results(run_dir).records
    systems = set(key.systems)
    groups: dict[str, list[Any]] = {}
    for r in records:
        groups.setdefault(f"{r.metric}@{r.digest}", []).append(r)
    if metric is None:
        usable = [name for name, recs in groups.items() if len({r.generator for r in recs} & systems) >= 2]
        if not usable:
            raise ListeningError(f"{run_dir}: no metric has a value for two systems of test {key.test_id}")
        chosen = usable[0]
    else:
        chosen_list = [n for n in groups if n == metric or n.split("@")[0] == metric]
        if len(chosen_list) != 1:
            what = "matches several protocols" if chosen_list else "is not a metric of the run"
            raise ListeningError(f"--metric {metric!r} {what} (metrics: {', '.join(groups)})")
        chosen = chosen_list[0]
    recs = groups[chosen]
    sign = 1.0 if recs[0].higher_is_better else -1.0
    per_system = {r.generator: r.value for r in recs}
    frame = load_samples(run_dir, str(load_results(run_dir).meta.get("samples_table") or "samples.csv"))
    name = chosen.split("@")[0]
    per_clip: dict[tuple[str, str, Any], float] = {}
    if frame is not None and name in frame.columns:
        for row in frame.to_dict("records"):
            seed = row.get("seed")
            per_clip[(str(row["generator"]), str(row["prompt_id"]), None if seed != seed else int(seed))] = (
                row[name]
            )
    out = {}
    for item in key.items:
        for s in item.stimuli:
            if s.system not in systems:
                continue
            v = per_clip.get((s.system, item.prompt_id, item.seed), per_system.get(s.system, float("nan")))
            if not np.isfinite(v):
                raise ListeningError(f"metric {chosen} has no value for system {s.system!r}, item {item.id}")
            out[s.id] = sign * float(v)
    return chosen, out


def simulate(
    run_dir: str | Path,
    raters: int,
    noise: float,
    metric: str | None = None,
    test_id: str | None = None,
    seed: int = 0,
) -> tuple[TestKey, list[str], str]:
    """Write ``raters`` simulated raters into the test's store. Returns (key, rater ids, metric)."""
    run_dir = Path(run_dir)
    if raters < 1 or not noise >= 0:
        raise ListeningError(f"--raters {raters} --noise {noise}: expected at least 1 rater and noise >= 0")
    key = pick_test(run_dir, test_id)
    chosen, values = metric_values(run_dir, key, metric)
    v = np.array(list(values.values()))
    sd = float(v.std()) or 1.0
    z = {s: (x - float(v.mean())) / sd for s, x in values.items()}
    rng = np.random.default_rng(seed)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    exports = []
    for k in range(raters):
        rater = f"sim-{k + 1:02d}"
        order = [key.items[i].id for i in rng.permutation(len(key.items))]
        by_id = {it.id: it for it in key.items}
        ratings = []
        for item_id in order:
            for pos, i in enumerate(rng.permutation(len(by_id[item_id].stimuli))):
                s = by_id[item_id].stimuli[i]
                centre = (
                    100.0 if s.kind == HIDDEN_REFERENCE else 15.0 if s.kind == ANCHOR else 50 + 15 * z[s.id]
                )
                scores = {
                    sc.name: int(np.clip(round(centre + rng.normal(0.0, noise)), sc.low, sc.high))
                    for sc in key.scales
                }
                ratings.append(
                    {
                        "item": item_id,
                        "stimulus": s.id,
                        "position": pos,
                        "scores": scores,
                        "listened_fraction": 1.0,
                    }
                )
        export = {
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "test_id": key.test_id,
            "protocol": key.protocol,
            "rater_id": rater,
            "session": f"simulated-{seed}-{k}",
            "started": now,
            "exported": now,
            "user_agent": "bench ratings simulate",
            "item_order": order,
            "ratings": ratings,
        }
        exports.append((f"<simulated {rater}>", json.dumps(export).encode()))
    people = {r["rater_id"] for r in load_store(run_dir, key)["raters"] if not r.get("simulated")}
    clash = sorted(people & {f"sim-{k + 1:02d}" for k in range(raters)})
    if clash:
        raise ListeningError(
            f"test {key.test_id}: imported (not simulated) raters {clash} have the ids "
            "simulated raters take; rename them before simulating"
        )
    info = {"metric": chosen, "function": FUNCTION, "noise": noise, "seed": seed}
    imported = import_exports(run_dir, exports, replace=True, simulated=info)
    return key, imported[key.test_id], chosen
