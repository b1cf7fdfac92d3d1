"""Bad audio and bad datasets (issue 22): one line naming the file, flagged clips counted and shown,
prompt ids that do not fit a file name kept apart."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from bench.audio import loudness_lufs, read_audio
from bench.cli import main
from bench.testing import TONES_SUITE

ONE_GEN = TONES_SUITE.split("generators:")[0] + """generators:
  - {name: noise, params: {sample_rate: 16000}}
metrics:
  - name: test-distance
"""


def _run(path: Path, capsys, rc: int = 1) -> str:
    assert main(["run", str(path), "--out", str(path.parent / "run"), "--no-progress"]) == rc
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_six_channel_reference_is_one_line(tones, write_suite, capsys, plugins):
    six = tones / "test" / "tone_2.wav"
    sf.write(six, np.full((16000, 6), 0.1, np.float32), 16000)
    text = ONE_GEN.replace("  batch_size: 2\n", "  batch_size: 2\n  normalize_reference: true\n")
    err = _run(write_suite(text), capsys)
    assert (f"bench run: error: reference audio of prompt 'tone_2' ({six.resolve()}): loudness "
            "(ITU-R BS.1770, pyloudnorm) is defined for 1 to 5 channels; this audio has 6") in err


def test_six_channel_generator_output_is_one_line(tones, write_suite, capsys, plugins):
    six = ONE_GEN.replace("{sample_rate: 16000}", "{sample_rate: 16000, channels: 6}")
    err = _run(write_suite(six), capsys)
    assert ("bench run: error: generator 'noise', prompt 'tone_0' seed 0: loudness (ITU-R BS.1770, "
            "pyloudnorm) is defined for 1 to 5 channels; this audio has 6; set generation.loudness_lufs: "
            "null to skip normalisation") in err
    with pytest.raises(ValueError, match="this audio has 6"):
        loudness_lufs(np.zeros((6, 16000), np.float32), 16000)


def test_silent_and_over_full_scale_clips_are_counted(tones, write_suite, capsys, plugins, tmp_path):
    text = ONE_GEN.replace("  - {name: noise, params: {sample_rate: 16000}}",
                           "  - {name: slow-noise, label: odd, "
                           "params: {silent: [tone_1], loud: [tone_3, tone_4]}}")
    run = tmp_path / "run"
    _run(write_suite(text), capsys, rc=0)
    results = json.loads((run / "results.json").read_text())
    flags = results["metadata"]["audio_flags"]
    assert flags == {"silent": {"count": 1, "clips": ["odd/tone_1#0"]},
                     "over_full_scale": {"count": 2, "clips": ["odd/tone_3#0", "odd/tone_4#0"]}}
    [rec] = results["records"]
    assert rec["n"] == 5  # the test metric averages every clip; built-in metrics flag silent ones
    samples = pd.read_csv(run / "samples.csv")
    assert list(samples.silent) == [False, True, False, False, False]
    assert list(samples.over_full_scale) == [False, False, False, True, True]
    assert samples.peak_dbfs[1] != samples.peak_dbfs[1]  # NaN (null) for digital silence
    assert (samples.peak_dbfs[[3, 4]] > 20).all() and (samples.peak_dbfs[[0, 2]] < 0).all()
    html = (run / "report.html").read_text()
    assert "Flagged clips" in html and "1 silent" in html and "2 over full scale" in html
    assert "odd/tone_3#0" in html


def test_metric_flags_reach_results_json(tones, write_suite, capsys, plugins, tmp_path):
    text = ONE_GEN.replace("  - {name: noise, params: {sample_rate: 16000}}",
                           "  - {name: slow-noise, params: {silent: [tone_1, tone_2]}}").replace(
        "  - name: test-distance", "  - name: chroma_cosine")
    _run(write_suite(text), capsys, rc=0)
    [rec] = json.loads((tmp_path / "run" / "results.json").read_text())["records"]
    assert rec["n"] == 3 and rec["n_flagged"] == 2
    assert rec["flagged"] == {"generated silent": ["tone_1#0", "tone_2#0"]}


def test_bad_sidecar_is_caught_at_validate_naming_the_file(tones, write_suite, capsys, plugins):
    bad = tones / "test" / "tone_3.json"
    bad.write_text('{"description": "unterminated')
    (tones / "test" / "tone_1.json").write_text("[1, 2]")
    (tones / "test" / "tone_4.json").write_bytes(b'{"description": "\xff"}')
    assert main(["validate", str(write_suite(ONE_GEN))]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: not valid JSON (JSONDecodeError: Unterminated string starting at: line 1 column 17" in err
    assert f"{tones / 'test' / 'tone_1.json'}: expected a JSON object, got list" in err
    assert f"{tones / 'test' / 'tone_4.json'}: not valid JSON (UnicodeDecodeError" in err
    assert "Traceback" not in err


def test_damaged_audio_header_is_caught_at_validate(tones, write_suite, capsys, plugins):
    wav = tones / "test" / "tone_2.wav"
    data = bytearray(wav.read_bytes())
    data[24:28] = struct.pack("<I", 0)  # sample rate 0
    wav.write_bytes(bytes(data))
    assert main(["validate", str(write_suite(ONE_GEN))]) == 1
    err = capsys.readouterr().err
    assert f"audio file {str(wav.resolve())!r}: " in err and "Traceback" not in err


def test_read_audio_refuses_implausible_headers(tmp_path):
    path = tmp_path / "x.wav"
    sf.write(path, np.zeros(1000, np.float32), 8000)
    data = bytearray(path.read_bytes())
    data[24:28] = struct.pack("<I", 40_000_000)  # 40 MHz: the resampler would build a huge kernel
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"sample rate 40000000 Hz is outside 1000\.\.384000 Hz"):
        read_audio(path)
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="cannot read audio file .*x.wav"):
        read_audio(path)
    sf.write(path, np.array([0.0, np.nan], np.float32), 8000, subtype="FLOAT")
    with pytest.raises(ValueError, match="holds NaN or infinite samples"):
        read_audio(path)


def test_prompt_ids_that_share_a_file_name_stay_apart(write_suite, capsys, plugins, tmp_path):
    data = tmp_path / "cjk"
    data.mkdir()
    ids = ["日本の歌", "中国の歌", "a b", "a_b", "x" * 200]
    for i, pid in enumerate(ids):
        sf.write(data / f"{pid}.wav", (0.1 * np.sin(np.arange(16000) * (0.05 + 0.01 * i))).astype(np.float32),
                 16000)
        (data / f"{pid}.json").write_text(json.dumps({"description": f"song {i}"}))
    text = ONE_GEN.replace("params: {root: data, split: test}", "params: {root: cjk}")
    _run(write_suite(text), capsys, rc=0)
    samples = pd.read_csv(tmp_path / "run" / "samples.csv", keep_default_na=False)
    assert sorted(samples.prompt_id) == sorted(ids)
    assert samples.audio.nunique() == len(ids) and samples.reference_audio.nunique() == len(ids)
    assert "audio/noise/a_b__s0.wav" in set(samples.audio)  # ids that are file names stay as they are
    for rel in samples.audio:
        assert (tmp_path / "run" / rel).is_file() and len(Path(rel).name) < 120
