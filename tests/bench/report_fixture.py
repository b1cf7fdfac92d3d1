"""A small fake run directory (results.json, samples.csv, WAV clips) for report and compare tests.

Written here, independent of the runner, in the format documented in ``bench.run_results`` (the one
``bench.runner`` writes: a "metadata" block, samples columns ``text``/``audio``/``reference_audio`` and
bookkeeping columns beside the per-sample scores).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.run_results import protocol_digest

PATTERNS = ("delay", "partial_delay", "parallel", "partial_flattening", "coarse_first", "flattening")
SIZES = ("small", "medium")
SCRIPT_PROMPT = '<script>document.title="pwned"</script> lo-fi piano & drums'
#: a generator label and a parameter value that would become elements if anything were not escaped
EVIL_LABEL = 'evil <img src=x onerror="document.title=1">'
EVIL_PARAM = "</span><script>document.title=2</script>"
FAD_PROTOCOL = {"backbone": "vggish", "sample_rate": 16000, "checkpoint_digest": "abc", "n_ref": 4}
CLAP_PROTOCOL = {"backbone": "clap-music", "sample_rate": 48000, "crop": "first-10s"}


def record(generator: str, metric: str, value: float, hib: bool, protocol: dict, params: dict | None = None,
           ci: float | None = 0.1, n: int = 4, generator_info: dict | None = None) -> dict:
    out = {"generator": generator, "params": params or {}, "metric": metric, "value": value,
           "ci_low": None if ci is None else value - ci, "ci_high": None if ci is None else value + ci,
           "n": n, "higher_is_better": hib, "protocol": protocol}
    if generator_info is not None:
        out["generator_info"] = generator_info
    return out


def pattern_info(pattern: str, duration_s: float, num_codebooks: int | None = None,
                 frame_rate: float = 50.0) -> dict:
    """``generator_info`` as the ``musicgen`` adapter reports it (``Generator.describe``), built here
    from ``musicgen.modules.patterns`` (K: 4 per channel, as the built-in codec, unless given)."""
    from musicgen.modules.patterns import pattern_channels, pattern_steps

    k = num_codebooks or 4 * pattern_channels(pattern)
    counts = pattern_steps(pattern, k, round(duration_s * frame_rate))
    return {"pattern": pattern, "num_codebooks": k, "channels": counts.channels, "frame_rate": frame_rate,
            "frames": counts.num_frames, "steps": counts.total, "delay_tail": counts.tail,
            "formula": counts.formula}


def demo_records() -> list[dict]:
    return [
        record("musicgen-small", "fad", 3.25, False, FAD_PROTOCOL, {"checkpoint": "small"}),
        record("noise", "fad", 14.5, False, FAD_PROTOCOL),
        record("reference", "fad", 0.0, False, FAD_PROTOCOL, ci=None),
        record("musicgen-small", "clap", 0.31, True, CLAP_PROTOCOL, {"checkpoint": "small"}),
        record("noise", "clap", 0.02, True, CLAP_PROTOCOL),
        record(EVIL_LABEL, "clap", 0.05, True, CLAP_PROTOCOL, {"note": EVIL_PARAM}),
        # same metric name, different protocol: must land in its own table
        record("musicgen-small", "clap", 0.27, True, {**CLAP_PROTOCOL, "crop": "centre-10s"}),
    ]


def ablation_records() -> list[dict]:
    out = []
    for i, pattern in enumerate(PATTERNS):
        for j, size in enumerate(SIZES):
            params = {"pattern": pattern, "size": size}
            label = f"musicgen[pattern={pattern},size={size}]"
            protocol = {"backbone": "passt", "generation": {"duration_s": 30.0, "seeds": [0]}}
            out.append(record(label, "kl", 0.5 + 0.02 * i - 0.01 * j, False, protocol, params,
                              generator_info=pattern_info(pattern, 30.0)))
    return out


def write_wav(path: Path, freq_hz: float, sample_rate: int = 8000, duration_s: float = 0.25) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(sample_rate * duration_s)) / sample_rate
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32), sample_rate)


def make_run(root: Path, records: list[dict] | None = None, with_samples: bool = True) -> Path:
    """A run directory under ``root`` with results.json (+ samples.csv and clips when asked)."""
    run = root / "run"
    run.mkdir(parents=True, exist_ok=True)
    meta = {"commit": "0123abcd", "versions": {"bench": "0.1.0", "torch": "2.13.0"}, "seeds": [0, 1],
            "device": "cpu", "durations_s": {"generate": 1.5, "embed": 0.5}, "cache": {"clip_hits": 3}}
    meta["samples_table"] = "samples.csv"
    data = {"suite": "fixture", "created": "2026-11-26T17:00:00Z", "metadata": meta,
            "records": demo_records() + ablation_records() if records is None else records}
    (run / "results.json").write_text(json.dumps(data, indent=1))
    if with_samples:
        rows = [("musicgen-small", "p1", 0, SCRIPT_PROMPT, 440.0, 0.30, 1.2),
                ("musicgen-small", "p2", 0, "ambient pad, slow", 220.0, 0.35, 0.8),
                ("noise", "p1", 0, SCRIPT_PROMPT, 880.0, 0.01, 9.5)]
        lines = ["generator,prompt_id,seed,text,audio,reference_audio,duration_s,sample_rate,"
                 "loudness_lufs_before,silent,cached,clap,kl"]
        for gen, pid, seed, text, freq, clap, kl in rows:
            clip = f"audio/{gen}/{pid}__s{seed}.wav"
            ref = f"audio/_reference/{pid}.wav"
            write_wav(run / clip, freq)
            write_wav(run / ref, freq / 2)
            quoted = '"' + text.replace('"', '""') + '"'
            lines.append(f"{gen},{pid},{seed},{quoted},{clip},{ref},0.25,8000,-20.5,False,True,{clap},{kl}")
        (run / "samples.csv").write_text("\n".join(lines) + "\n")
    return run


CONTROL_NAMES = ("reference", "noise", "silence", "retrieval")


def expected_rank(record: dict, records: list[dict], controls: set[str]) -> int | None:
    """Rank of ``record`` among the non-control records of its metric and protocol (1 = best, ties
    share), or None when fewer than two systems are under test or it is a control."""
    peers = [r for r in records if r["metric"] == record["metric"]
             and protocol_digest(r["protocol"]) == protocol_digest(record["protocol"])
             and r["generator"] not in controls]
    if record["generator"] in controls or len(peers) < 2:
        return None
    better = [r for r in peers if (r["value"] > record["value"] if record["higher_is_better"]
                                   else r["value"] < record["value"])]
    return 1 + len(better)


def assert_leaderboard_matches(dom, results: dict) -> None:
    """Every record of results.json is in the leaderboard, in the row of its generator and the column
    of its (metric, protocol), with its value, interval, rank and direction; nothing else is.
    ``dom`` from html_tree; ``results`` is the parsed results.json."""
    records = results["records"]
    gens = (results.get("metadata") or {}).get("generators") or {}
    controls = {r["generator"] for r in records
                if (gens.get(r["generator"]) or {}).get("name", r["generator"]) in CONTROL_NAMES}
    (board,) = dom.find_all("table", "leaderboard")
    rows = {tr.attrs["data-generator"]: tr for tr in board.find_all("tr", "system")}
    assert set(rows) == {r["generator"] for r in records}
    heads = {(th.attrs["data-metric"], th.attrs["data-protocol"]): th for th in board.find_all("th", "metric")
             if "data-metric" in th.attrs}
    shown = {}
    for gen, tr in rows.items():
        assert tr.find_all("th", "sys")[0].find_all("span", "generator")[0].text() == gen
        assert ("control" in tr.attrs["class"].split()) == (gen in controls)
        for c in tr.find_all(None, "lb-cell"):
            if "empty" not in c.attrs["class"].split():
                key = (gen, c.attrs["data-metric"], c.attrs["data-protocol"])
                assert key not in shown, key
                shown[key] = c
    expected = {(r["generator"], r["metric"], protocol_digest(r["protocol"])): r for r in records}
    assert set(shown) == set(expected)
    for key, r in expected.items():
        c = shown[key]
        assert float(c.attrs["data-value"]) == r["value"]
        if r["ci_low"] is not None:
            assert float(c.attrs["data-ci-low"]) == r["ci_low"]
            assert float(c.attrs["data-ci-high"]) == r["ci_high"]
        else:
            assert "data-ci-low" not in c.attrs
        if "rate" in c.attrs["class"].split():
            assert "rank" not in c.text() and not c.find_all("svg")  # memorization: no rank, no bar
            continue
        assert heads[key[1:]].attrs["data-higher-is-better"] == ("true" if r["higher_is_better"] else "false")
        assert c.find_all("span", "val")[0].text() == f"{r['value']:.4g}"
        if r["ci_low"] is not None:
            assert c.find_all("span", "ci")[0].text() == f"[{r['ci_low']:.4g}, {r['ci_high']:.4g}]"
        rank = expected_rank(r, records, controls)
        assert c.attrs["data-rank"] == ("" if rank is None else str(rank))
        ranks = c.find_all("span", "rank")
        assert (ranks[0].text() if ranks else None) == (None if rank is None else f"#{rank}")
