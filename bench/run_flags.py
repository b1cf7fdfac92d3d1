"""Clips that are flagged rather than scored: counted in ``results.json`` and the report, never
dropped quietly.

Per clip (a row of the per-sample table): ``silent`` (peak at or under
``bench.metrics.functional.audio_checks.SILENCE_PEAK`` after loudness normalisation: the metrics
leave such clips out of their values), ``peak_dbfs`` (peak of the clip as generated, before
normalisation; null for digital silence) and ``over_full_scale`` (that peak above 1.0, i.e. 0 dBFS:
the listening WAV is clipped, and without normalisation the metrics see the unclipped values).
``summarize`` counts them per generator for ``results.json["metadata"]["audio_flags"]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

FLAGS = ("silent", "over_full_scale")


def clip_flags(generated: np.ndarray, evaluated: np.ndarray) -> dict[str, Any]:
    """The flag columns of one row: ``generated`` is the clip as generated ``[C, T]``, ``evaluated``
    the normalised audio the metrics see."""
    from bench.metrics.functional.audio_checks import audio_flags  # here: bench.runner imports no plug-in

    peak = float(np.max(np.abs(generated))) if np.size(generated) else 0.0
    return {"silent": audio_flags(evaluated) == ["silent"],
            "peak_dbfs": round(20.0 * float(np.log10(peak)), 3) if peak > 0 else None,
            "over_full_scale": peak > 1.0}


def summarize(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """``{flag: {"count": n, "clips": ["generator/prompt_id#seed", ...]}}`` over every row."""
    out: dict[str, Any] = {flag: {"count": 0, "clips": []} for flag in FLAGS}
    for row in rows:
        for flag in FLAGS:
            if row.get(flag):
                out[flag]["count"] += 1
                out[flag]["clips"].append(f"{row['generator']}/{row['prompt_id']}#{row['seed']}")
    return out


def flag_counts(meta: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``[{"flag", "count", "clips"}]`` from ``metadata.audio_flags`` of a results file (for the
    report); flags with a count of zero and malformed entries are left out."""
    flags = meta.get("audio_flags") if isinstance(meta, Mapping) else None
    out = []
    for name, entry in (flags.items() if isinstance(flags, Mapping) else ()):
        count = entry.get("count") if isinstance(entry, Mapping) else None
        if isinstance(count, int) and not isinstance(count, bool) and count > 0:
            clips = entry.get("clips")
            out.append({"flag": str(name).replace("_", " "), "count": count,
                        "clips": [str(c) for c in clips] if isinstance(clips, list) else []})
    return out
