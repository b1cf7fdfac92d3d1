"""Post-screening of raters, and the long table of ratings that screening and agreement read.

Rules (applied in the order given, each to the raters the previous ones kept):

- ``crowdmos`` (Ribeiro et al. 2011, CrowdMOS: workers whose scores correlate poorly with the
  others' are rejected): for each scale, the Pearson correlation between a rater's scores and the
  mean of the *other* raters' scores on the same stimuli; a rater is removed when it is below
  ``min_corr`` (default 0.25, CrowdMOS's rejection threshold) on any scale. A rater sharing fewer
  than ``min_overlap`` (default 3) stimuli with the others cannot be judged and is kept; a rater
  whose scores are all equal correlates 0 (removed); where the others' means are all equal the
  scale says nothing and is skipped.
- ``bs1534`` (ITU-R BS.1534-3, post-screening of assessors): a rater is removed who rates the hidden
  reference below ``ref_below`` (default 90) in more than ``max_fraction`` (default 0.15) of the
  items where they rated it. MUSHRA tests only (the others have no hidden reference).
- ``listened`` (the paper, Copet et al. 2023 section 4.1, removed raters who did not listen to the
  full recordings): a rater is removed when more than ``max_unlistened`` (default 0) of the clips
  they rated were played less than ``min_listened`` (default 0.9) of their length (the page records
  the furthest point played; an export without it counts as not listened). Opt-in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bench.listening.design import HIDDEN_REFERENCE, ListeningError, TestKey

DEFAULTS: dict[str, dict[str, float]] = {
    "crowdmos": {"min_corr": 0.25, "min_overlap": 3},
    "bs1534": {"ref_below": 90.0, "max_fraction": 0.15},
    "listened": {"min_listened": 0.9, "max_unlistened": 0.0},
}
COLUMNS = ("rater", "item", "stimulus", "kind", "system", "prompt_id", "seed", "scale", "score", "listened")


def default_rules(protocol: str) -> list[dict[str, Any]]:
    """CrowdMOS for OVL/REL (as the paper), BS.1534-3 for MUSHRA."""
    name = "bs1534" if protocol == "mushra" else "crowdmos"
    return [{"rule": name, **DEFAULTS[name]}]


def make_rules(names: Sequence[str], protocol: str, **thresholds: float | None) -> list[dict[str, Any]]:
    """Rules from names (``none`` for no screening) and thresholds (None keeps the default)."""
    rules = []
    for name in names:
        if name == "none":
            continue
        if name not in DEFAULTS:
            raise ListeningError(f"screening rule {name!r}: expected one of {', '.join(DEFAULTS)} or none")
        if name == "bs1534" and protocol != "mushra":
            raise ListeningError(
                f"screening rule bs1534 needs a hidden reference: a mushra test, not {protocol}"
            )
        params = {
            k: (v if thresholds.get(k) is None else float(thresholds[k])) for k, v in DEFAULTS[name].items()
        }
        rules.append({"rule": name, **params})
    return rules


def ratings_frame(key: TestKey, store: Mapping[str, Any]) -> pd.DataFrame:
    """One row per (rater, stimulus, scale) with the stimulus's item, kind, system, prompt and seed."""
    stimuli = key.stimuli()
    rows = []
    for rater in store["raters"]:
        for r in rater["export"]["ratings"]:
            item, stim = stimuli[r["stimulus"]]
            for scale, score in r["scores"].items():
                rows.append(
                    (
                        rater["rater_id"],
                        item.id,
                        stim.id,
                        stim.kind,
                        stim.system,
                        item.prompt_id,
                        item.seed,
                        scale,
                        float(score),
                        float("nan") if r.get("listened_fraction") is None else float(r["listened_fraction"]),
                    )
                )
    return pd.DataFrame(rows, columns=list(COLUMNS))


@dataclass
class Screening:
    """Who was kept, and who each rule removed (rule -> {rater: reason})."""

    raters: list[str]
    kept: list[str]
    removed: dict[str, dict[str, str]] = field(default_factory=dict)
    rules: list[dict[str, Any]] = field(default_factory=list)


def describe(rule: Mapping[str, Any]) -> str:
    if rule["rule"] == "crowdmos":
        return (
            f"CrowdMOS: correlation with the other raters' mean < {rule['min_corr']:g} on any scale "
            f"(at least {int(rule['min_overlap'])} shared stimuli)"
        )
    if rule["rule"] == "listened":
        return (
            f"listening: clips played less than {100 * rule['min_listened']:g} % of their length in more "
            f"than {100 * rule['max_unlistened']:g} % of a rater's ratings"
        )
    return (
        f"BS.1534-3: hidden reference rated below {rule['ref_below']:g} in more than "
        f"{100 * rule['max_fraction']:g} % of items"
    )


def crowdmos_correlations(frame: pd.DataFrame, min_overlap: int) -> dict[str, dict[str, float]]:
    """rater -> scale -> correlation with the leave-one-out mean of the others (scales it cannot
    judge are left out)."""
    out: dict[str, dict[str, float]] = {}
    for scale, part in frame.groupby("scale"):
        table = part.pivot_table(index="stimulus", columns="rater", values="score", aggfunc="mean")
        sums, counts = table.sum(axis=1), table.count(axis=1)
        for rater in table.columns:
            mine = table[rater]
            has = mine.notna() & (counts > 1)
            if int(has.sum()) < min_overlap:
                continue
            x = mine[has].to_numpy(float)
            y = ((sums[has] - mine[has]) / (counts[has] - 1)).to_numpy(float)
            if np.ptp(y) == 0:
                continue
            r = 0.0 if np.ptp(x) == 0 else float(np.corrcoef(x, y)[0, 1])
            out.setdefault(str(rater), {})[str(scale)] = r
    return out


def screen(frame: pd.DataFrame, rules: Sequence[Mapping[str, Any]]) -> Screening:
    """Apply ``rules`` in order (module docstring)."""
    raters = sorted(frame["rater"].unique().tolist()) if len(frame) else []
    result = Screening(raters, list(raters), {}, [dict(r) for r in rules])
    for rule in rules:
        part = frame[frame["rater"].isin(result.kept)]
        removed: dict[str, str] = {}
        if rule["rule"] == "crowdmos":
            for rater, by_scale in crowdmos_correlations(part, int(rule["min_overlap"])).items():
                low = {s: r for s, r in by_scale.items() if r < rule["min_corr"]}
                if low:
                    removed[rater] = ", ".join(f"r({s}) = {r:.3f}" for s, r in sorted(low.items()))
        elif rule["rule"] == "bs1534":
            ref = part[part["kind"] == HIDDEN_REFERENCE]
            for rater, rows in ref.groupby("rater"):
                frac = float((rows["score"] < rule["ref_below"]).mean())
                if frac > rule["max_fraction"]:
                    removed[str(rater)] = (
                        f"hidden reference below {rule['ref_below']:g} in "
                        f"{100 * frac:.0f} % of {len(rows)} items"
                    )
        elif rule["rule"] == "listened":
            clips = part.drop_duplicates(["rater", "stimulus"])
            short = (clips["listened"].fillna(0.0) < rule["min_listened"]).groupby(clips["rater"]).mean()
            for rater, frac in short.items():
                if frac > rule["max_unlistened"]:
                    removed[str(rater)] = f"{100 * frac:.0f} % of clips not played to the end"
        else:
            raise ListeningError(f"unknown screening rule {rule['rule']!r}")
        result.removed[str(rule["rule"])] = removed
        result.kept = [r for r in result.kept if r not in removed]
    return result
