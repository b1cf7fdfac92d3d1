"""``bench listen``: item choice, blindness, loudness matching, the MUSHRA anchor, the CLI."""

from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np
import pytest

from bench.audio import loudness_lufs, read_audio
from bench.cli import main as bench_main
from bench.listening.design import ANCHOR, HIDDEN_REFERENCE, SYSTEM, ListeningError, choose_items, load_keys
from bench.listening.page import build_test, lowpass
from tests.bench.listening.listening_fixture import SYSTEM_PREFIX, make_listening_run, system_names


@pytest.mark.parametrize("n_prompts,n_seeds,n", [(5, 3, 7), (4, 1, 4), (6, 2, 12), (3, 4, 5)])
def test_items_are_stratified_over_prompts_and_reproducible(n_prompts, n_seeds, n):
    cands = [(f"p{p}", s) for p in range(n_prompts) for s in range(n_seeds)]
    chosen = choose_items(cands, n, raters_seed=3)
    assert len(chosen) == min(n, len(cands)) and len(set(chosen)) == len(chosen)
    assert set(chosen) <= set(cands)
    per_prompt = Counter(p for p, _ in chosen)
    # balanced: no prompt gets a second item before every prompt has one
    assert max(per_prompt.values()) - min(per_prompt.get(f"p{p}", 0) for p in range(n_prompts)) <= 1
    assert choose_items(cands, n, raters_seed=3) == chosen
    assert any(choose_items(cands, n, raters_seed=s) != chosen for s in range(4, 10))


def _all_text(folder) -> str:
    return "\n".join(
        p.read_text(errors="replace") for p in folder.rglob("*") if p.suffix in (".html", ".json")
    )


@pytest.mark.parametrize("protocol", ["ovl-rel", "mushra"])
def test_page_and_audio_names_reveal_no_system(tmp_path, protocol):
    run = make_listening_run(tmp_path, n_systems=3, n_prompts=3)
    key, page = build_test(run, tmp_path / "out", protocol=protocol, n_items=3, raters_seed=1)
    out = page.parent
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    n_stimuli = 3 + (2 if protocol == "mushra" else 0)
    assert len(files) == 1 + 3 * n_stimuli + (3 if protocol == "mushra" else 0)  # + open references
    assert all(re.fullmatch(r"audio/[0-9a-f]{16}\.wav", f) for f in files if f != "index.html"), files
    # nothing that names or hints at a system reaches the page folder
    text = _all_text(out)
    forbidden = [
        SYSTEM_PREFIX,
        "secret",
        "_reference",
        "reference_audio",
        "__s0",
        "generator",
        "anchor.wav",
        *system_names(3),
        *(f"p{p}" for p in range(3)),
    ]
    for word in forbidden:
        assert word not in text and not any(word in f for f in files), word
    # the page lists each item's stimuli sorted by opaque id, not by system
    config = json.loads(
        re.search(r'<script type="application/json" id="test-config">(.*?)</script>', text, re.S).group(1)
    )
    for item in config["items"]:
        ids = [s["id"] for s in item["stimuli"]]
        assert ids == sorted(ids) and len(ids) == n_stimuli
    # the key (outside the page folder) maps every id back
    keys = load_keys(run)
    assert list(keys) == [key.test_id] and not (out / "test.json").exists()
    kinds = Counter(s.kind for it in key.items for s in it.stimuli)
    assert kinds[SYSTEM] == 9 and kinds[HIDDEN_REFERENCE] == kinds[ANCHOR] == (
        3 if protocol == "mushra" else 0
    )


def test_prompt_text_is_data_not_markup(tmp_path):
    run = make_listening_run(tmp_path, n_systems=2, n_prompts=2)
    _, page = build_test(run, tmp_path / "out", n_items=2)
    html = page.read_text()
    assert "<b>bold</b>" not in html and "\\u003cb\\u003ebold" in html


def test_audio_is_loudness_matched_and_the_anchor_low_passed(tmp_path):
    run = make_listening_run(tmp_path, n_systems=3, n_prompts=2, duration_s=1.0)
    key, page = build_test(run, tmp_path / "out", protocol="mushra", n_items=2, target_lufs=-20.0)
    assert key.common_gain_db == 0.0
    for item in key.items:
        for s in item.stimuli:
            wav, sr = read_audio(page.parent / s.file)
            assert loudness_lufs(wav, sr) == pytest.approx(-20.0, abs=0.2), s.kind
        anchor = next(s for s in item.stimuli if s.kind == ANCHOR)
        ref, sr = read_audio(page.parent / item.reference_file)
        low, _ = read_audio(page.parent / anchor.file)
        assert ref.shape == low.shape
    # the filter itself: a 3 kHz tone passes, a 3.9 kHz tone is cut by more than 20 dB (8 kHz audio)
    t = np.arange(8000) / 8000
    for freq, passes in ((1000.0, True), (3900.0, False)):
        x = np.sin(2 * np.pi * freq * t)[None].astype(np.float32)
        ratio_db = 20 * np.log10(np.std(lowpass(x, 8000)[:, 1000:-1000]) / np.std(x[:, 1000:-1000]))
        assert (ratio_db > -1) if passes else (ratio_db < -20), (freq, ratio_db)
    with pytest.raises(ListeningError, match="Nyquist"):
        lowpass(np.zeros((1, 100), np.float32), 6000)


def test_loud_clips_share_one_gain(tmp_path):
    """Normalising a quiet sine to -3 LUFS would clip: every stimulus is lowered by the same gain."""
    run = make_listening_run(tmp_path, n_systems=2, n_prompts=1, duration_s=1.0)
    key, page = build_test(run, tmp_path / "out", n_items=1, target_lufs=-3.0)
    assert key.common_gain_db < 0
    levels = [loudness_lufs(*read_audio(page.parent / s.file)) for s in key.items[0].stimuli]
    assert max(levels) - min(levels) < 0.2 and all(v < -3.0 for v in levels)


def test_cli_errors_are_one_line(tmp_path, capsys):
    run = make_listening_run(tmp_path, n_systems=2, n_prompts=2)
    assert bench_main(["listen", str(run), "--items", "0"]) == 2
    assert "--items 0" in capsys.readouterr().err
    (run / "samples.csv").write_text(
        (run / "samples.csv").read_text().replace("audio/musicgen", "audio/missing")
    )
    assert bench_main(["listen", str(run)]) == 2
    err = capsys.readouterr().err
    assert "no (prompt, seed) has a clip from every system" in err and "Traceback" not in err


def test_cli_writes_the_test(tmp_path, capsys):
    run = make_listening_run(tmp_path, n_systems=2, n_prompts=3)
    assert bench_main(["listen", str(run), "--items", "5", "--raters-seed", "2"]) == 0
    out = capsys.readouterr().out
    assert "only 3 (prompt, seed) pairs" in out
    (key,) = load_keys(run).values()
    assert len(key.items) == 3 and key.raters_seed == 2
