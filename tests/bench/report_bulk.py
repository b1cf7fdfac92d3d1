"""A synthetic run directory of any size, for the report's size test and its render benchmark.

``make_bulk_run(root, n_prompts, systems, audio)`` writes results.json (every system x the metrics
of the demo suite, with intervals, plus the reference and noise controls) and samples.csv (one clip
per prompt and system, MusicCaps-length captions, three per-clip scores). With ``audio`` each clip is
a short WAV file (so thumbnails are made); without, the paths point to files that do not exist (the
grid then says "missing"), which keeps a 5,000-prompt run quick to write.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.bench.report_fixture import FAD_PROTOCOL, record, write_wav

METRICS = (("fad_vggish", False), ("kl", False), ("clap_score", True), ("chroma_cosine", True))
CAPTION = ("The low quality recording features a {} groove with a steady kick, warm bass and a bright "
           "synth lead; the mood is {} and it sounds like it is played at a house party, prompt {}.")


def make_bulk_run(root: Path, n_prompts: int, systems: tuple[str, ...] = ("musicgen-small", "musicgen-medium",
                  "musicgen-large"), audio: bool = False, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    run = root / "run"
    run.mkdir(parents=True, exist_ok=True)
    labels = [*systems, "reference", "noise"]
    records = []
    for metric, hib in METRICS:
        for label in labels:
            value = float(rng.uniform(0.1, 5.0))
            records.append(record(label, metric, value, hib, {**FAD_PROTOCOL, "metric": metric},
                                  ci=0.05 * value, n=n_prompts))
    meta = {"samples_table": "samples.csv", "dataset": {"name": "bulk", "n_prompts": n_prompts},
            "generators": {label: {"name": label if label in ("reference", "noise") else "musicgen"}
                           for label in labels}}
    (run / "results.json").write_text(json.dumps({"suite": "bulk", "created": "2026-12-05T00:00:00Z",
                                                  "metadata": meta, "records": records}))
    lines = ["generator,prompt_id,seed,text,audio,reference_audio,duration_s,sample_rate,clap,kl,chroma"]
    moods = ("energetic", "calm", "dark", "uplifting")
    for p in range(n_prompts):
        pid = f"q{p:05d}"
        caption = CAPTION.format(("funk", "disco", "house")[p % 3], moods[p % 4], p)
        ref = f"audio/_reference/{pid}.wav"
        if audio:
            write_wav(run / ref, 220.0 + p % 50)
        for label in labels:
            clip = f"audio/{label}/{pid}__s0.wav"
            if audio:
                write_wav(run / clip, 330.0 + (p * 7) % 200)
            clap, kl, chroma = rng.uniform(0, 0.6), rng.uniform(0, 4), rng.uniform(0, 1)
            lines.append(f'{label},{pid},0,"{caption}",{clip},{ref},10.0,32000,{clap:.4f},{kl:.4f},{chroma:.4f}')
    (run / "samples.csv").write_text("\n".join(lines) + "\n")
    return run
