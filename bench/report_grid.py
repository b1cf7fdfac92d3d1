"""Report section: the listening grid, one row per prompt, one column per system.

Each row shows the prompt's caption and its reference clip; each cell the system's clip(s) for the
prompt (one per seed): a player (``preload="none"``: nothing is read until played), the clip's
per-clip numbers and a small mel-spectrogram thumbnail. The page stays small however large the run:
the grid's data is a sidecar script, ``<report>_files/grid.js`` (``window.BENCH_GRID = {...}``,
loaded with ``<script src>``, which works from ``file://`` where ``fetch`` does not), and the page's
script draws one page of rows at a time, sorted and filtered in the browser. Every text from the run
is inserted as text (``textContent``), never as HTML.

Data (``grid.js``): ``systems`` (labels of the systems with clips, in the leaderboard's order),
``scores`` (per-clip column names), ``constant`` (columns with one value for every clip, shown once
instead), ``thumb`` (``[width, height]``), ``rows``: ``[prompt_id, caption, reference_src or "",
reference_thumb, cells]`` where ``cells[i]`` lists system ``i``'s clips as ``[seed, src, exists
(0/1), thumb, [score per column, null where missing]]``. A thumbnail is the base64 of ``width *
height`` 4-bit levels (two per byte, high nibble first, row-major from the highest mel band), or ""
when not made.

Thumbnails: log energies in 16 mel-spaced bands up to 8 kHz of 48 frames spread over the first 10 s
of the clip, scaled to the clip's own peak over a 60 dB range. They are made for the first
``max_thumbnails`` clips in page order (default 1000, 1 to 3 ms each), so a 5,000-prompt run still
renders in seconds; the grid says how many were left without one.
"""

from __future__ import annotations

import base64
import json
import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from bench.report_leaderboard import systems
from bench.report_sections import ReportContext, Section
from bench.run_results import score_columns

THUMB_W, THUMB_H, N_FFT, MAX_SECONDS, RANGE_DB = 48, 16, 1024, 10.0, 60.0
MAX_THUMBNAILS = 1000
PAGE_SIZE = 20


@lru_cache(maxsize=8)
def _mel_bands(sample_rate: int) -> np.ndarray:
    """``[THUMB_H, N_FFT // 2 + 1]`` rectangular bands of equal width on the mel scale (HTK formula)
    from 0 to 8 kHz, each averaging the FFT bins inside it. Not a triangle bank, on purpose: a
    thumbnail needs only the picture, and numpy alone keeps ``bench report`` free of torch/scipy
    imports (seconds each)."""
    top = min(8000.0, sample_rate / 2)
    edges_mel = np.linspace(0.0, 2595.0 * np.log10(1 + top / 700.0), THUMB_H + 1)
    edges_hz = 700.0 * (10 ** (edges_mel / 2595.0) - 1)
    bins = np.arange(N_FFT // 2 + 1) * sample_rate / N_FFT
    bands = np.zeros((THUMB_H, bins.size), dtype=np.float32)
    for i in range(THUMB_H):
        inside = (bins >= edges_hz[i]) & (bins < edges_hz[i + 1])
        if not inside.any():  # a band narrower than a bin takes the nearest bin
            inside = np.abs(bins - (edges_hz[i] + edges_hz[i + 1]) / 2) == np.abs(
                bins - (edges_hz[i] + edges_hz[i + 1]) / 2).min()
        bands[i, inside] = 1.0 / inside.sum()
    return bands


def mel_levels(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """``[THUMB_H, THUMB_W]`` integer levels 0..15 (row 0 = highest band) of a mono signal ``[S]``."""
    x = np.asarray(wav, dtype=np.float32)
    if x.size < N_FFT:
        x = np.pad(x, (0, N_FFT - x.size))
    starts = np.linspace(0, x.size - N_FFT, THUMB_W).astype(np.int64)
    frames = x[starts[:, None] + np.arange(N_FFT)[None, :]] * np.hanning(N_FFT).astype(np.float32)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # [W, N_FFT // 2 + 1]
    db = 10 * np.log10(power @ _mel_bands(sample_rate).T + 1e-10)  # [W, H]
    levels = np.clip((db - (db.max() - RANGE_DB)) / RANGE_DB * 15.0, 0, 15).round().astype(np.uint8)
    return levels.T[::-1]


def encode_levels(levels: np.ndarray) -> str:
    """Base64 of the levels ``[H, W]`` packed two per byte (high nibble first)."""
    flat = levels.reshape(-1).astype(np.uint8)
    return base64.b64encode(((flat[0::2] << 4) | flat[1::2]).astype(np.uint8).tobytes()).decode()


def thumbnail(path: str | Path) -> str:
    """The encoded thumbnail of an audio file, or "" when it cannot be read."""
    try:
        with sf.SoundFile(str(path)) as f:
            sr = f.samplerate
            wav = f.read(frames=int(MAX_SECONDS * sr), dtype="float32", always_2d=True)
    except (OSError, RuntimeError, sf.LibsndfileError):
        return ""
    return encode_levels(mel_levels(wav.mean(axis=1), sr)) if wav.size else ""


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _number(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def grid_data(ctx: ReportContext, max_thumbnails: int = MAX_THUMBNAILS) -> dict[str, Any]:
    """The grid's data (see the module docstring) from the run's per-sample table."""
    frame = ctx.samples
    assert frame is not None
    order = [s.label for s in systems(ctx.results)]
    gens = [_text(g) for g in frame["generator"]]  # (pandas' str dtype keeps a missing value as NaN)
    pids = [_text(p) for p in frame["prompt_id"]]
    present = list(dict.fromkeys(gens))
    labels = [g for g in order if g in present] + [g for g in present if g not in order]
    scores = score_columns(frame)
    constant = {c: _number(frame[c].iloc[0]) for c in scores
                if len(frame) > 1 and frame[c].nunique(dropna=False) == 1}
    shown = [c for c in scores if c not in constant]
    index = {g: i for i, g in enumerate(labels)}
    rows: dict[str, list[Any]] = {}
    budget = [max_thumbnails]
    checked: dict[str, tuple[str, bool]] = {}

    def media(path_text: Any) -> tuple[str, bool, str]:
        text = _text(path_text)
        if not text:
            return "", False, ""
        if text not in checked:
            full = text if os.path.isabs(text) else os.path.join(ctx.run_dir, text)
            ok = os.path.isfile(full)
            thumb = ""
            if ok and budget[0] > 0:
                budget[0] -= 1
                thumb = thumbnail(full)
            checked[text] = (thumb, ok)
        thumb, ok = checked[text]
        return ctx.rel(text), ok, thumb

    has_ref = "reference" in frame.columns
    seeds = frame["seed"] if "seed" in frame.columns else [None] * len(frame)
    prompts = frame["prompt"] if "prompt" in frame.columns else [None] * len(frame)
    refs = frame["reference"] if has_ref else [None] * len(frame)
    values = frame[shown].to_numpy(dtype=float, na_value=np.nan) if shown else None
    for i, (gen, pid, seed, text, clip, ref) in enumerate(zip(gens, pids, seeds, prompts, frame["clip"],
                                                              refs)):
        row = rows.get(pid)
        if row is None:
            ref_src, ref_ok, ref_thumb = media(ref)
            row = rows[pid] = [pid, _text(text), ref_src if ref_ok else "", ref_thumb,
                               [[] for _ in labels]]
        src, ok, thumb = media(clip)
        nums = [None if _number(v) is None else round(float(v), 6)
                for v in (values[i] if values is not None else [])]
        seed_text = "" if _number(seed) is None else str(int(float(seed)))
        row[4][index[gen]].append([seed_text, src, int(ok), thumb, nums])
    made = sum(1 for t, _ in checked.values() if t)
    return {"systems": labels, "scores": shown, "constant": constant, "thumb": [THUMB_W, THUMB_H],
            "rows": list(rows.values()), "page_size": PAGE_SIZE,
            "thumbnails": {"made": made, "files": len(checked),
                           "left_out": max(0, sum(1 for _, ok in checked.values() if ok) - made)}}


def grid_section(ctx: ReportContext) -> Section | None:
    if ctx.samples is None or ctx.samples.empty:
        return None
    data = grid_data(ctx, int(ctx.options.get("max_thumbnails", MAX_THUMBNAILS)))
    text = "window.BENCH_GRID = " + json.dumps(data, separators=(",", ":"), allow_nan=False) + ";\n"
    src = ctx.add_file("grid.js", text)
    n_clips = sum(len(c) for r in data["rows"] for c in r[4])
    html = ctx.partial("grid.html.j2", src=src, data=data, n_clips=n_clips)
    return Section("listen", "Listening grid", html, order=70,
                   summary=f"{len(data['rows'])} prompts × {len(data['systems'])} systems, {n_clips} clips. "
                           "Players load nothing until played.")
