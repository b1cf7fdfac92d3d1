"""``bench listen RUN_DIR [--out DIR] [--protocol ovl-rel|mushra] [--items N] [--raters-seed S]
[--lufs L]``: a blind listening test as one HTML page and its audio, opened from disk (file://).

The page (``bench/templates/listening.html.j2``) has no network access and no server: its test
description is a JSON block inside the page, its script is inline, ratings live in the browser's
``localStorage`` (key ``bench-listen/<test_id>/<rater id>``) across reloads and are exported as a
JSON file download (format in ``bench.listening.ratings``). Each rater sees the items and the
stimuli of each item in an order drawn from a PRNG seeded by (raters seed, rater id), so the order
is random across raters and stable for one rater across reloads.

Audio: each stimulus is the run's evaluated clip (``samples.csv`` column ``audio``), loudness-normalised
to ``--lufs`` (ITU-R BS.1770 via pyloudnorm; default -14 LUFS, the paper's level; silence stays
silent). Where a normalised clip would clip, one common gain lowers every stimulus of the test
alike, so loudness stays matched (``common_gain_db`` in the key). MUSHRA's anchor is the reference
low-pass filtered at 3.5 kHz (8th-order Butterworth, zero phase), normalised like the rest. Files
are 16-bit WAV at the clip's own sample rate, named by opaque stimulus id (``bench.listening.design``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import sys
from pathlib import Path

import jinja2
import numpy as np
import soundfile as sf
from markupsafe import Markup

from bench.audio import lowpass as audio_lowpass
from bench.audio import normalize_loudness, read_audio
from bench.files import atomic_write_bytes, atomic_write_text
from bench.listening.design import (
    ANCHOR,
    ANCHOR_CUTOFF_HZ,
    PROTOCOLS,
    ListeningError,
    TestKey,
    folder_of,
    plan_test,
)
from bench.run_results import ResultsError

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"
PAGE_TEMPLATE = "listening.html.j2"
PAGE_NAME = "index.html"


def lowpass(wav: np.ndarray, sample_rate: int, cutoff_hz: float = ANCHOR_CUTOFF_HZ) -> np.ndarray:
    """``[C, T]`` low-pass filtered for the anchor (8th-order zero-phase Butterworth,
    ``bench.audio.lowpass``); a cutoff at or above Nyquist is a ``ListeningError``."""
    if cutoff_hz >= sample_rate / 2:
        raise ListeningError(
            f"cannot low-pass at {cutoff_hz:g} Hz a clip sampled at {sample_rate} Hz "
            f"(Nyquist {sample_rate / 2:g} Hz)"
        )
    return audio_lowpass(wav, sample_rate, cutoff_hz)


def _read(run_dir: Path, path: str) -> tuple[np.ndarray, int]:
    p = Path(path)
    try:
        return read_audio(p if p.is_absolute() else run_dir / p)
    except ValueError as e:
        raise ListeningError(str(e)) from e


def prepare_audio(run_dir: Path, key: TestKey, out_dir: Path) -> None:
    """Write every stimulus (and MUSHRA's open references) of ``key`` under ``out_dir/audio``; sets
    ``key.common_gain_db``."""
    clips: dict[str, tuple[np.ndarray, int]] = {}
    for item in key.items:
        wanted = [(s.file, s.source, s.kind == ANCHOR) for s in item.stimuli]
        if item.reference_file and item.reference_source:
            wanted.append((item.reference_file, item.reference_source, False))
        for file, source, anchor in wanted:
            wav, sr = _read(run_dir, source)
            if anchor:
                wav = lowpass(wav, sr)
            if key.target_lufs is not None:
                wav, _ = normalize_loudness(wav, sr, key.target_lufs)
            clips[file] = (wav, sr)
    peak = max((float(np.max(np.abs(w))) for w, _ in clips.values() if w.size), default=0.0)
    gain = 1.0 if peak <= 1.0 else 0.999 / peak
    key.common_gain_db = round(20 * float(np.log10(gain)), 3)
    for file, (wav, sr) in clips.items():
        buf = io.BytesIO()
        sf.write(buf, np.clip(wav * gain, -1.0, 1.0).T, sr, format="WAV", subtype="PCM_16")
        atomic_write_bytes(out_dir / file, buf.getvalue())


def page_config(key: TestKey) -> dict:
    """What the page's script knows: ids, prompt texts and audio file names, never a system."""
    return {
        "test_id": key.test_id,
        "protocol": key.protocol,
        "raters_seed": key.raters_seed,
        "scales": [
            {"name": s.name, "label": s.label, "min": s.low, "max": s.high, "instructions": s.instructions}
            for s in key.scales
        ],
        "items": [
            {
                "id": it.id,
                "text": it.text if key.protocol == "ovl-rel" else "",
                "reference": it.reference_file,
                "stimuli": [{"id": s.id, "src": s.file} for s in it.stimuli],
            }
            for it in key.items
        ],
    }


def _script_json(obj: object) -> Markup:
    """JSON safe inside a ``<script>`` element (no ``<``, ``>`` or ``&`` that could close it)."""
    text = json.dumps(obj, ensure_ascii=False)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def render_page(key: TestKey) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=True, undefined=jinja2.StrictUndefined
    )
    return env.get_template(PAGE_TEMPLATE).render(
        test_id=key.test_id,
        protocol=key.protocol,
        scales=key.scales,
        n_items=len(key.items),
        config=_script_json(page_config(key)),
    )


def build_test(
    run_dir: str | Path,
    out: str | Path | None = None,
    protocol: str = "ovl-rel",
    n_items: int = 40,
    raters_seed: int = 0,
    target_lufs: float | None = -14.0,
) -> tuple[TestKey, Path]:
    """Plan a test, write its audio and page to ``out`` (default RUN/listening/<id>/page) and its key
    to RUN/listening/<id>/test.json. Returns (key, page path)."""
    run_dir = Path(run_dir)
    key = plan_test(run_dir, protocol, n_items, raters_seed)
    key.target_lufs = target_lufs
    key.created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    out_dir = Path(out) if out is not None else folder_of(run_dir, key.test_id) / "page"
    if out_dir.resolve() == folder_of(run_dir, key.test_id).resolve():
        raise ListeningError(f"--out {out_dir}: the page folder must not be the key's folder")
    prepare_audio(run_dir, key, out_dir)
    page = out_dir / PAGE_NAME
    atomic_write_text(page, render_page(key))
    key.extra["page"] = str(page.resolve())
    atomic_write_text(
        folder_of(run_dir, key.test_id) / "test.json", json.dumps(key.to_json(), indent=1) + "\n"
    )
    return key, page


def listen_command(args: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="bench listen",
        description="Write a blind listening test (one HTML page + audio) from a run directory.",
    )
    ap.add_argument("run_dir")
    ap.add_argument("--out", help="page folder (default RUN_DIR/listening/<test id>/page)")
    ap.add_argument("--protocol", default="ovl-rel", choices=sorted(PROTOCOLS))
    ap.add_argument("--items", type=int, default=40, help="number of (prompt, seed) items (default 40)")
    ap.add_argument("--raters-seed", type=int, default=0, help="seed of the item choice and rater orders")
    ap.add_argument("--lufs", type=float, default=-14.0, help="loudness of every stimulus (default -14)")
    ns = ap.parse_args(args)
    try:
        key, page = build_test(ns.run_dir, ns.out, ns.protocol, ns.items, ns.raters_seed, ns.lufs)
    except (ListeningError, ResultsError) as e:
        print(f"bench listen: {e}", file=sys.stderr)
        return 2
    n_stimuli = sum(len(it.stimuli) for it in key.items)
    print(
        f"test {key.test_id}: {key.protocol}, {len(key.items)} items x {len(key.items[0].stimuli)} stimuli "
        f"({n_stimuli} clips) at {key.target_lufs} LUFS (common gain {key.common_gain_db} dB)"
    )
    if len(key.items) < ns.items:
        print(f"note: {ns.items} items asked, only {len(key.items)} (prompt, seed) pairs have every system")
    print(f"page: {page}")
    print(f"key: {folder_of(ns.run_dir, key.test_id) / 'test.json'} (keep it out of the raters' hands)")
    return 0
