"""Statistics files: round trip, per-song FAD, and a reader that survives hostile bytes."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.api import AudioClip, MetricItem, Prompt
from bench.metrics.fad import FrechetAudioDistance
from bench.metrics.functional.frechet import gaussian_sums
from bench.stats import FORMAT, EmbedderStats, StatsError, check_protocol, read_stats, write_stats

PROTOCOL = {"backbone": "test-bands", "version": "1", "sample_rate": 8000, "checkpoint_digest": "none"}


def make_stats(rng: np.random.Generator, clips: int = 4, dim: int = 3,
               embeddings: bool = True) -> EmbedderStats:
    frames = [rng.standard_normal((int(rng.integers(2, 5)), dim)) for _ in range(clips)]
    n, total, outer = gaussian_sums(np.concatenate(frames))
    offsets = np.cumsum([0] + [len(f) for f in frames])
    return EmbedderStats("test-bands", PROTOCOL, n, total, outer, clips,
                         tuple(f"c{i}" for i in range(clips)) if embeddings else None,
                         offsets if embeddings else None, np.concatenate(frames) if embeddings else None)


def test_round_trip_and_fadtk_keys(tmp_path):
    st_in = make_stats(np.random.default_rng(0))
    path = write_stats(tmp_path / "ref.npz", {"source": "x"}, {"test-bands": st_in})
    got = read_stats(path).get("test-bands")
    assert got.n == st_in.n and got.clip_ids == st_in.clip_ids
    np.testing.assert_array_equal(got.outer, st_in.outer)
    with np.load(path, allow_pickle=False) as z:  # fadtk's key names, mean and unbiased covariance
        np.testing.assert_allclose(z["test-bands.mu"], st_in.embeddings.mean(0))
        np.testing.assert_allclose(z["test-bands.cov"], np.cov(st_in.embeddings, rowvar=False))
    check_protocol(got, dict(PROTOCOL), path)
    other = r"another 'test-bands' protocol \(sample_rate: file 8000 vs in use 16000\)"
    with pytest.raises(StatsError, match=other):
        check_protocol(got, {**PROTOCOL, "sample_rate": 16000}, path)
    with pytest.raises(StatsError, match="has no statistics for embedder 'vggish'"):
        read_stats(path).get("vggish")


def test_inconsistent_mean_is_refused(tmp_path):
    path = write_stats(tmp_path / "ref.npz", {}, {"test-bands": make_stats(np.random.default_rng(1))})
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["test-bands.mu"] = arrays["test-bands.mu"] + 1.0
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(StatsError, match=r"'test-bands.mu' does not match the sums"):
        read_stats(tmp_path / "bad.npz")


def test_per_song_fad_is_fadtks_definition(tmp_path):
    """Per-song FAD of a clip = Frechet distance between the Gaussian of that clip's frames alone and
    the reference Gaussian (fadtk ``score_individual``), computed here with scipy's sqrtm."""
    from scipy import linalg

    rng = np.random.default_rng(3)
    metric = FrechetAudioDistance(FrechetAudioDistance.Params(embedder="e", n_bootstrap=0))
    refs, gens = [], {}
    for i in range(6):
        g, r = rng.standard_normal((5, 3)) + 0.3 * i, rng.standard_normal((5, 3))
        item = MetricItem(Prompt(f"p{i}", ""), AudioClip(np.full((1, 100), 0.1, np.float32), 100, f"p{i}", 0),
                          AudioClip(np.full((1, 100), 0.1, np.float32), 100, f"p{i}", -1))
        metric.update(item, {"e": {"generated": g, "reference": r}})
        refs.append(r)
        gens[(f"p{i}", 0)] = g
    late = metric.late_values()
    ref = np.concatenate(refs)
    mu_r, cov_r = ref.mean(0), np.cov(ref, rowvar=False)
    for key, g in gens.items():
        mu, cov = g.mean(0), np.cov(g, rowvar=False)
        expect = float(np.sum((mu - mu_r) ** 2) + np.trace(cov + cov_r - 2 * linalg.sqrtm(cov @ cov_r).real))
        assert late[key]["fad_per_song_e"] == pytest.approx(expect, rel=1e-7)


def _valid_bytes(tmp: Path) -> bytes:
    path = write_stats(tmp / "ok.npz", {"source": "x"}, {"test-bands": make_stats(np.random.default_rng(2))})
    return path.read_bytes()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_reader_never_crashes_on_mutated_files(tmp_path, data):
    """Flipped, cut or inserted bytes, or a rewritten array: a ReferenceStats or one StatsError line."""
    raw = bytearray(_valid_bytes(tmp_path))
    how = data.draw(st.sampled_from(["flip", "cut", "insert", "array"]))
    if how == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] = data.draw(st.integers(0, 255))
    elif how == "cut":
        raw = raw[:data.draw(st.integers(0, len(raw)))]
    elif how == "insert":
        i = data.draw(st.integers(0, len(raw)))
        raw[i:i] = data.draw(st.binary(min_size=1, max_size=16))
    else:  # a well-formed zip whose one member is replaced by another array
        with zipfile.ZipFile(io.BytesIO(bytes(raw))) as z:
            members = {n: z.read(n) for n in z.namelist()}
        name = data.draw(st.sampled_from(sorted(members)))
        value = data.draw(st.sampled_from([np.array("x"), np.array([np.nan]), np.zeros((2, 2)), np.array(3),
                                           np.array([1, 2], dtype=object), np.array('{"embedders": 1}')]))
        buf = io.BytesIO()
        np.lib.format.write_array(buf, value, allow_pickle=True)
        members[name] = buf.getvalue()
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as z:
            for n, b in members.items():
                z.writestr(n, b)
        raw = bytearray(out.getvalue())
    path = tmp_path / "mutated.npz"
    path.write_bytes(bytes(raw))
    try:
        stats = read_stats(path)
    except StatsError as e:
        assert "mutated.npz" in str(e) and "\n" not in str(e)
        return
    st_ = stats.get("test-bands")  # survived: then it is consistent
    assert st_.n >= 2 and st_.outer.shape == (st_.total.size, st_.total.size)


def test_format_is_checked(tmp_path):
    np.savez(tmp_path / "other.npz", format=np.array("something-else/1"))
    with pytest.raises(StatsError, match=f"expected {FORMAT!r}"):
        read_stats(tmp_path / "other.npz")
    with pytest.raises(StatsError, match="does not exist"):
        read_stats(tmp_path / "absent.npz")


def test_validate_names_a_missing_or_foreign_statistics_file(tmp_path, tones, write_suite, plugins):
    from bench.suite import load_suite
    from bench.yamlsource import SuiteError

    path = write_stats(tmp_path / "ref.npz", {}, {"test-bands": make_stats(np.random.default_rng(5))})
    suite = """
    name: t
    dataset: {name: audio-folder, params: {root: data, split: test}}
    generation: {duration_s: 1.0}
    generators: [{name: noise}]
    metrics: [{name: fad, params: {embedder: %s, reference_stats: %s}}]
    """
    load_suite(write_suite(suite % ("test-bands", path)), run_dir=tmp_path / "run")
    with pytest.raises(SuiteError, match=r"absent\.npz' does not exist \(make it with: bench stats"):
        load_suite(write_suite(suite % ("test-bands", tmp_path / "absent.npz")), run_dir=tmp_path / "run")
    with pytest.raises(SuiteError, match=r"has no statistics for embedder 'synth-tagger'"):
        load_suite(write_suite(suite % ("synth-tagger", path)), run_dir=tmp_path / "run")


def test_stats_command_errors_are_one_line(tmp_path, capsys):
    from bench.cli import main

    ref, out = str(tmp_path / "ref"), str(tmp_path / "x.npz")
    (tmp_path / "ref").mkdir()
    assert main(["stats", ref, "--embedder", "synth-tager", "-o", out]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "synth-tagger" in err  # the close match is named
    assert main(["stats", ref, "--embedder", "synth-tagger", "--embedder-param", "weights=x", "-o", out]) == 1
    assert "expected NAME.KEY=VALUE" in capsys.readouterr().err
    assert main(["stats", ref, "--embedder", "synth-tagger", "-o", out, "--no-progress"]) == 1
    assert "holds no audio files" in capsys.readouterr().err and not (tmp_path / "x.npz").exists()


class _Batching:
    """A test embedder with ``embed_batch``: frame means and energies of 100-sample blocks; records its
    calls, and fails the whole batch when a clip is shorter than 300 samples (like a backbone window)."""

    sample_rate = 1000

    def __init__(self):
        self.calls = []

    def embed(self, wav):
        if len(wav) < 300:
            raise ValueError(f"clip of {len(wav)} samples is shorter than the window")
        blocks = np.asarray(wav[: len(wav) // 100 * 100], np.float64).reshape(-1, 100)
        return np.stack([blocks.mean(1), (blocks**2).mean(1)], axis=1)

    def embed_batch(self, wavs):
        self.calls.append(len(wavs))
        return [self.embed(w) for w in wavs]

    def protocol(self):
        return {"backbone": "test-batching"}


def test_stats_embed_in_batches_with_the_same_sums_and_name_a_bad_clip(tmp_path):
    import soundfile as sf

    from bench.stats import compute_stats

    rng = np.random.default_rng(0)
    for i in range(5):
        wav = rng.standard_normal(1000 + 100 * i).astype(np.float32) * 0.1
        sf.write(tmp_path / f"clip{i}.wav", wav, 1000)
    one, four = _Batching(), _Batching()
    _, a = compute_stats(tmp_path, {"b": one}, {}, None, True, batch_size=1)
    _, b = compute_stats(tmp_path, {"b": four}, {}, None, True, batch_size=4)
    assert one.calls == [1] * 5 and four.calls == [4, 1]
    assert a["b"].n == b["b"].n and np.array_equal(a["b"].embeddings, b["b"].embeddings)
    assert np.allclose(a["b"].outer, b["b"].outer, rtol=1e-12) and np.allclose(a["b"].total, b["b"].total)
    sf.write(tmp_path / "clip9.wav", np.zeros(200, np.float32) + 0.1, 1000)  # too short: its batch fails
    with pytest.raises(StatsError, match=r"clip9\.wav.*200 samples"):
        compute_stats(tmp_path, {"b": _Batching()}, {}, None, False, batch_size=4)
