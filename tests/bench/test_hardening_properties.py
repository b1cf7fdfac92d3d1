"""Property tests of the user-file readers (issue 22): random and mutated suites through
``bench validate``, random and mutated audio headers through ``bench.audio.read_audio``. Whatever the
input: no exception escapes (no traceback), no example takes more than a few seconds, exit codes are
0, 1 or 2 only, and a refused audio file is one ``ValueError`` line naming the file."""

from __future__ import annotations

import io
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.audio import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, read_audio
from bench.cli import main
from bench.testing import TONES_SUITE, write_tone_dataset

FAST = settings(deadline=5000, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                      HealthCheck.too_slow], derandomize=True)


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as d:
        write_tone_dataset(Path(d) / "data")
        yield Path(d)


def _validate(folder: Path, text: bytes, capsys) -> None:
    path = folder / "suite.yaml"
    path.write_bytes(text)
    t0 = time.perf_counter()
    rc = main(["validate", str(path)])  # any exception escaping here fails the test
    assert time.perf_counter() - t0 < 5
    assert rc in (0, 1, 2)
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    if rc:
        assert out.err.startswith("bench validate: ")


scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(allow_nan=True),
                    st.text(max_size=20))
yaml_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=20)
SUITE_KEYS = ("name", "dataset", "generation", "generators", "metrics", "embedders", "report", "description")


@FAST
@given(data=st.dictionaries(st.sampled_from(SUITE_KEYS), yaml_values, max_size=8))
def test_random_suites_give_exit_codes_not_tracebacks(folder, plugins, capsys, data):
    _validate(folder, yaml.safe_dump(data, allow_unicode=True).encode(), capsys)


#: hostile tokens, the ones that broke the readers first (hypothesis favours the start of the list)
TOKENS = [b"2020-13-45", b"'{name.foo}'", b"[0, 0]", b".inf", b"1e999", b"&a [*a]", b"[[[[[[",
          b"{a: 1, a: 2}", b"'{name!r}'", b"'{'", b"'{0}'", b"-.inf", b".nan", b"-1", b"!!binary", b"!!set",
          b"!!python/object:os.system", b"\xff", b"\t", b"'", b'"', b"#", b"&a", b"*a", b"<<: *a", b"{", b"}",
          b"[", b"]", b":", b"- ", b"\n", b"  ", b"", b"2020-01-01", b"?", b"null", b"~", b"true", b"0x10",
          b"/etc/passwd", b"../..", "日本".encode()]
VALUE = re.compile(rb"(?<=: )[^\n,}]+|(?<=\[)[^\]\n]+")


@FAST
@given(edits=st.lists(st.tuples(st.integers(0, len(TONES_SUITE)), st.integers(0, 3), st.sampled_from(TOKENS)),
                      min_size=1, max_size=6))
def test_mutated_suites_give_exit_codes_not_tracebacks(folder, plugins, capsys, edits):
    """Bytes cut and tokens inserted anywhere."""
    text = bytearray(TONES_SUITE.lstrip().encode())
    for pos, cut, insert in edits:
        pos = min(pos, len(text))
        text[pos:pos + cut] = insert
    _validate(folder, bytes(text), capsys)


@FAST
@given(swaps=st.lists(st.tuples(st.integers(0, 40), st.sampled_from(TOKENS)), min_size=1, max_size=3))
def test_suites_with_swapped_values_give_exit_codes_not_tracebacks(folder, plugins, capsys, swaps):
    """One YAML value (after ``key: `` or inside ``[...]``) replaced by a hostile token at a time."""
    text = TONES_SUITE.lstrip().encode()
    for index, token in swaps:
        spans = [m.span() for m in VALUE.finditer(text)]
        start, end = spans[index % len(spans)]
        text = text[:start] + token + text[end:]
    _validate(folder, text, capsys)


def test_every_token_in_every_kind_of_value(folder, plugins, capsys):
    """A deterministic sweep beside the random ones: each token as a name, a number, a list, a
    mapping value and a generator label."""
    base = TONES_SUITE.lstrip().replace("{name: noise, params", "{name: noise, label: L, params")
    for token in TOKENS:
        for old in (b"tones", b"1.0", b"[0]", b"test-distance", b"label: L"):
            new = b"label: " + token if old == b"label: L" else token
            _validate(folder, base.encode().replace(old, new, 1), capsys)


#: offsets of the RIFF size, format, channels, rate, byte rate, block align, bits and data size fields
HEADER_FIELDS = [4, 20, 22, 24, 28, 32, 34, 40]


def _audio_bytes(fmt: str, channels: int, frames: int, rate: int) -> bytes:
    buf = io.BytesIO()
    wav = (0.1 * np.random.default_rng(0).standard_normal((frames, channels))).astype(np.float32)
    sf.write(buf, wav, rate, format=fmt, subtype={"WAV": "PCM_16", "FLAC": "PCM_16"}[fmt])
    return buf.getvalue()


@FAST
@given(fmt=st.sampled_from(["WAV", "FLAC"]), channels=st.integers(1, 3), frames=st.integers(1, 2000),
       rate=st.sampled_from([8000, 16000, 44100]),
       edits=st.lists(st.tuples(st.one_of(st.sampled_from(HEADER_FIELDS), st.integers(0, 80)),
                                st.binary(min_size=1, max_size=4)), max_size=4),
       cut=st.one_of(st.none(), st.integers(0, 200)))
def test_mutated_audio_headers_read_or_refuse_in_one_line(tmp_path, fmt, channels, frames, rate, edits, cut):
    data = bytearray(_audio_bytes(fmt, channels, frames, rate))
    for pos, patch in edits:
        data[pos:pos + len(patch)] = patch
    if cut is not None:
        data = data[:cut]
    path = tmp_path / f"clip.{fmt.lower()}"
    path.write_bytes(bytes(data))
    t0 = time.perf_counter()
    try:
        wav, sr = read_audio(path)
    except ValueError as e:
        assert str(path) in str(e) and "\n" not in str(e)
    else:
        assert wav.dtype == np.float32 and wav.ndim == 2 and wav.shape[1] > 0
        assert MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE and np.all(np.isfinite(wav))
    assert time.perf_counter() - t0 < 5


@FAST
@given(edits=st.lists(st.tuples(st.sampled_from(HEADER_FIELDS), st.binary(min_size=1, max_size=4)),
                      min_size=1, max_size=3),
       cut=st.one_of(st.none(), st.integers(0, 100)))
def test_validate_with_mutated_audio_headers_in_the_dataset(folder, plugins, capsys, edits, cut):
    """A damaged file in the dataset: ``bench validate`` names it (exit 1) or accepts it (exit 0)."""
    wav = folder / "data" / "test" / "tone_0.wav"
    original = wav.read_bytes()
    data = bytearray(original)
    for pos, patch in edits:
        data[pos:pos + len(patch)] = patch
    wav.write_bytes(bytes(data if cut is None else data[:cut]))
    try:
        _validate(folder, TONES_SUITE.lstrip().encode(), capsys)
    finally:
        wav.write_bytes(original)


FAD_PROTOCOL = {"backbone": "vggish", "sample_rate": 16000, "checkpoint_digest": "abc", "n_ref": 4}
entries = st.fixed_dictionaries(
    {"generator": st.sampled_from(["g", "x"]), "metric": st.just("fad"), "value": scalars,
     "higher_is_better": scalars, "protocol": st.one_of(st.just(FAD_PROTOCOL), yaml_values)},
    optional={"tolerance": yaml_values, "protocol_digest": scalars})


@FAST
@given(entries=st.one_of(st.lists(entries, max_size=3), yaml_values),
       extra=st.dictionaries(st.sampled_from(["tolerance", "metric_tolerances", "suite"]), yaml_values))
def test_random_baselines_give_exit_codes_not_tracebacks(tmp_path_factory, capsys, entries, extra):
    import json as _json

    from tests.bench.report_fixture import make_run, record

    root = tmp_path_factory.mktemp("cmp")
    run = make_run(root, records=[record("g", "fad", 1.0, False, FAD_PROTOCOL)], with_samples=False)
    base = root / "base.json"
    doc = {"format": "musicgen-bench-baseline", "version": 1, "entries": entries, **extra}
    base.write_text(_json.dumps(doc, allow_nan=True))
    assert main(["compare", str(run), str(base)]) in (0, 1, 2)
    assert "Traceback" not in capsys.readouterr().err


@FAST
@given(table=st.binary(max_size=300))
def test_random_samples_tables_give_exit_codes_not_tracebacks(tmp_path_factory, capsys, table):
    from tests.bench.report_fixture import make_run

    run = make_run(tmp_path_factory.mktemp("rep"))
    (run / "samples.csv").write_bytes(b"generator,prompt_id,seed,text,audio\n" + table)
    assert main(["report", str(run)]) in (0, 2)
    assert "Traceback" not in capsys.readouterr().err
