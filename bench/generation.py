"""Step 2 of ``bench run``: generate the clips the cache lacks.

Missing clips only, in batches of ``generation.batch_size`` per (generator, seed), with a tqdm
progress bar; each clip is checked against what was asked (``check_clips``: one per prompt, the
prompt id and seed asked, not empty, finite) and written to the cache atomically as soon as its batch
returns, so a killed run keeps every finished batch. The ``generate`` calls are timed per generator
(``bench.throughput``: audio seconds generated per wall second).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np

from bench.api import AudioClip, Prompt
from bench.plan import PlanEntry, RunError
from bench.store import RunStore
from bench.suite import GenerationSpec
from bench.throughput import Throughput


def check_clips(clips: Sequence[AudioClip], batch: Sequence[Prompt], seed: int, label: str) -> None:
    """Raise ``RunError`` unless ``clips`` are one per prompt of ``batch``, in order, for ``seed``,
    non-empty and finite."""
    if len(clips) != len(batch):
        raise RunError(f"generator {label!r} returned {len(clips)} clips for {len(batch)} prompts")
    for clip, prompt in zip(clips, batch):
        if clip.prompt_id != prompt.id or clip.seed != seed:
            raise RunError(f"generator {label!r} returned a clip for ({clip.prompt_id!r}, seed {clip.seed}) "
                           f"where ({prompt.id!r}, seed {seed}) was asked")
        if clip.wav.shape[-1] == 0 or not np.all(np.isfinite(clip.wav)):
            raise RunError(f"generator {label!r}: clip for prompt {prompt.id!r} seed {seed} is empty or "
                           f"holds NaN/inf")


def generate_missing(plan: list[PlanEntry], store: RunStore, settings: GenerationSpec, device: str,
                     progress: bool = True, throughput: Throughput | None = None) -> dict[str, int]:
    """Generate and cache every item of ``plan`` that is not ``cached``; returns the clip counts
    ``{"hits": ..., "generated": ...}``. ``throughput`` (if given) gets each generator's timings."""
    from tqdm import tqdm

    stats = {"hits": 0, "generated": 0}
    throughput = throughput if throughput is not None else Throughput(device)
    total = sum(len(entry.items) for entry in plan)
    with tqdm(total=total, desc="generate", unit="clip", disable=not progress, file=sys.stderr) as bar:
        for entry in plan:
            hits = [it for it in entry.items if it.cached]
            stats["hits"] += len(hits)
            throughput.add_cached("generation", entry.plugin.label, len(hits))
            bar.update(len(hits))
            todo = [it for it in entry.items if not it.cached]
            if not todo:
                continue
            try:
                generator = entry.load(device)
            except Exception as e:  # e.g. a refused unsafe checkpoint: one line naming the generator
                raise RunError(f"generator {entry.plugin.label!r} could not be loaded: {type(e).__name__}: "
                               f"{' '.join(str(e).split())}") from e
            for seed in settings.seeds:
                pending = [it for it in todo if it.seed == seed]
                for start in range(0, len(pending), settings.batch_size):
                    batch = pending[start:start + settings.batch_size]
                    prompts = [it.prompt for it in batch]
                    try:
                        with throughput.timed("generation", entry.plugin.label) as speed:
                            clips = generator.generate(prompts, seed, settings.duration_s)
                    except Exception as e:
                        raise RunError(f"generator {entry.plugin.label!r} failed on prompts "
                                       f"{[p.id for p in prompts]} seed {seed}: {type(e).__name__}: "
                                       f"{e}") from e
                    check_clips(clips, prompts, seed, entry.plugin.label)
                    for it, clip in zip(batch, clips):
                        store.save_clip(it.key, clip)
                        stats["generated"] += 1
                        speed.clips += 1
                        speed.audio_s += clip.wav.shape[-1] / clip.sample_rate
                    bar.update(len(batch))
    return stats
