"""A small run directory for listening-test tests: N systems x P prompts x 1 seed of short WAV clips,
reference clips, results.json with a system-level metric per system and a per-clip column.

Written here in the format documented in ``bench.run_results`` (independent of the runner). System
labels are deliberately revealing (``musicgen-secret-...``) so blindness checks can look for them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.bench.report_fixture import record, write_wav

SYSTEM_PREFIX = "musicgen-secret"
QUALITY = {"backbone": "test-quality", "sample_rate": 8000}
DISTANCE = {"backbone": "test-distance", "sample_rate": 8000}


def system_names(n: int) -> list[str]:
    return [f"{SYSTEM_PREFIX}-{i}" for i in range(n)]


def make_listening_run(
    root: Path,
    n_systems: int = 4,
    n_prompts: int = 3,
    seeds: tuple[int, ...] = (0,),
    duration_s: float = 0.5,
    seed: int = 0,
) -> Path:
    """The run directory ``root/run``. System i has quality ``i`` (higher is better) and distance
    ``10 - i`` (lower is better); per-clip ``quality`` is ``i`` plus a small clip-specific offset."""
    run = root / "run"
    rng = np.random.default_rng(seed)
    systems = system_names(n_systems)
    records = [record(s, "quality", float(i), True, QUALITY) for i, s in enumerate(systems)]
    records += [record(s, "distance", 10.0 - i, False, DISTANCE) for i, s in enumerate(systems)]
    lines = ["generator,prompt_id,seed,text,audio,reference_audio,duration_s,sample_rate,quality"]
    for p in range(n_prompts):
        ref = f"audio/_reference/p{p}.wav"
        write_wav(run / ref, 200.0 + 50 * p, duration_s=duration_s)
        for i, s in enumerate(systems):
            for sd in seeds:
                clip = f"audio/{s}/p{p}__s{sd}.wav"
                write_wav(run / clip, 300.0 + 100 * i + 10 * p + sd, duration_s=duration_s)
                q = i + 0.3 * rng.standard_normal()
                lines.append(
                    f'{s},p{p},{sd},"prompt {p}: calm piano, <b>bold</b> & drums",{clip},{ref},'
                    f"{duration_s},8000,{q:.4f}"
                )
    (run / "samples.csv").write_text("\n".join(lines) + "\n")
    data = {
        "suite": "listening-fixture",
        "created": "2026-12-01T00:00:00Z",
        "metadata": {"samples_table": "samples.csv"},
        "records": records,
    }
    (run / "results.json").write_text(json.dumps(data, indent=1))
    return run
