"""``bench ratings import``: every export checked, one clear error naming file and field, all or nothing."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.cli import main as bench_main
from bench.listening.design import load_keys
from bench.listening.page import build_test
from bench.listening.ratings import (
    EXPORT_FORMAT,
    RatingsError,
    import_exports,
    import_files,
    load_store,
    store_path,
    validate_export,
)
from tests.bench.listening.listening_fixture import make_listening_run


def export_for(key, rater: str, score: int = 50) -> dict:
    """A complete, valid export of ``key`` as the page writes it."""
    ratings = [
        {
            "item": it.id,
            "stimulus": s.id,
            "position": k,
            "scores": {sc.name: score for sc in key.scales},
            "listened_fraction": 1.0,
        }
        for it in key.items
        for k, s in enumerate(it.stimuli)
    ]
    return {
        "format": EXPORT_FORMAT,
        "version": 1,
        "test_id": key.test_id,
        "protocol": key.protocol,
        "rater_id": rater,
        "session": "s",
        "started": "2026-12-01T00:00:00Z",
        "exported": "2026-12-01T00:10:00Z",
        "item_order": [it.id for it in key.items],
        "ratings": ratings,
    }


@pytest.fixture(scope="module")
def run_with_test(tmp_path_factory):
    root = tmp_path_factory.mktemp("ratings")
    run = make_listening_run(root, n_systems=3, n_prompts=3)
    key, _ = build_test(run, root / "page", n_items=3)
    build_test(run, root / "page2", protocol="mushra", n_items=2)
    return run, key


def write(path: Path, obj) -> Path:
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def test_import_then_the_same_rater_again(run_with_test, tmp_path):
    run, key = run_with_test
    store = store_path(run, key.test_id)
    store.unlink(missing_ok=True)
    a, b = (
        write(tmp_path / "a.json", export_for(key, "ann")),
        write(tmp_path / "b.json", export_for(key, "bob")),
    )
    assert import_files(run, [a, b]) == {key.test_id: ["ann", "bob"]}
    before = store.read_bytes()
    again = write(tmp_path / "ann-again.json", export_for(key, "ann", score=70))
    with pytest.raises(RatingsError, match=r"ann-again\.json: rater_id: 'ann' was already imported"):
        import_files(run, [again])
    assert store.read_bytes() == before
    import_files(run, [again], replace=True)
    raters = load_store(run, key)["raters"]
    assert [r["rater_id"] for r in raters] == ["bob", "ann"]
    assert (
        raters[1]["export"]["ratings"][0]["scores"]["ovl"] == 70 and raters[1]["source"] == "ann-again.json"
    )
    store.unlink()


def _bad_cases(key, other_key):
    good = export_for(key, "zed")
    cases = {}

    def case(name, field, mutate):
        e = copy.deepcopy(good)
        mutate(e)
        cases[name] = (e, field)

    case("other test", "test_id", lambda e: e.update(test_id="t000000000zz"))
    case("mushra export of another test", "test_id", lambda e: e.update(test_id="nope", protocol="mushra"))
    case("wrong protocol", "protocol", lambda e: e.update(protocol=other_key.protocol))
    case("out of range", "ratings[2].scores.rel", lambda e: e["ratings"][2]["scores"].update(rel=101))
    case("below range", "ratings[0].scores.ovl", lambda e: e["ratings"][0]["scores"].update(ovl=0))
    case("not a number", "ratings[1].scores.ovl", lambda e: e["ratings"][1]["scores"].update(ovl="80"))
    case("bool score", "ratings[1].scores.ovl", lambda e: e["ratings"][1]["scores"].update(ovl=True))
    case("missing scale", "ratings[0].scores", lambda e: e["ratings"][0]["scores"].pop("rel"))
    case("unknown item", "ratings[3].item", lambda e: e["ratings"][3].update(item="i99"))
    case("unknown stimulus", "ratings[3].stimulus", lambda e: e["ratings"][3].update(stimulus="0" * 16))
    case("stimulus of another item", "ratings[0].item", lambda e: e["ratings"][0].update(item="i02"))
    case("duplicate", "ratings[4].stimulus", lambda e: e["ratings"].__setitem__(4, dict(e["ratings"][0])))
    case("no ratings", "ratings", lambda e: e.update(ratings=[]))
    case("empty rater", "rater_id", lambda e: e.update(rater_id="  "))
    case("wrong format", "format", lambda e: e.update(format="something-else"))
    case("future version", "version", lambda e: e.update(version=2))
    case(
        "listened > 1", "ratings[0].listened_fraction", lambda e: e["ratings"][0].update(listened_fraction=3)
    )
    return cases


def test_bad_exports_name_file_and_field_and_change_nothing(run_with_test, tmp_path):
    run, key = run_with_test
    other = next(k for k in load_keys(run).values() if k.test_id != key.test_id)
    good = write(tmp_path / "good.json", export_for(key, "first"))
    import_files(run, [good])
    store = store_path(run, key.test_id)
    before = store.read_bytes()
    for name, (export, field) in _bad_cases(key, other).items():
        bad = write(tmp_path / "bad.json", export)
        fine = write(tmp_path / "fine.json", export_for(key, "second"))
        with pytest.raises(RatingsError) as err:
            import_files(run, [fine, bad])  # a valid file in the same batch is not imported either
        assert str(err.value).startswith(f"{bad}: {field}:"), (name, str(err.value))
        assert store.read_bytes() == before, name
    text = json.dumps(export_for(key, "third"))
    for name, raw in {"truncated": text[: len(text) // 2], "empty": "", "not an object": "[1, 2]"}.items():
        bad = write(tmp_path / "bad.json", raw)
        with pytest.raises(RatingsError, match=r"bad\.json: (not valid JSON|expected a JSON object)"):
            import_files(run, [bad])
        assert store.read_bytes() == before, name
    twice = [
        write(tmp_path / "x.json", export_for(key, "dup")),
        write(tmp_path / "y.json", export_for(key, "dup")),
    ]
    with pytest.raises(RatingsError, match=r"y\.json: rater_id: 'dup' is also in .*x\.json"):
        import_files(run, twice)
    with pytest.raises(RatingsError, match="missing.json: cannot read"):
        import_files(run, [tmp_path / "missing.json"])
    assert store.read_bytes() == before
    store.unlink()


def test_cli_import_error_is_one_line(run_with_test, tmp_path, capsys):
    run, key = run_with_test
    e = export_for(key, "cli")
    e["ratings"][0]["scores"]["ovl"] = 140
    bad = write(tmp_path / "cli.json", e)
    assert bench_main(["ratings", "import", str(run), str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"bench ratings import: {bad}: ratings[0].scores.ovl: 140 is not a number in [1, 100]")
    assert not store_path(run, key.test_id).exists()
    good = write(tmp_path / "ok.json", export_for(key, "cli"))
    assert (
        bench_main(["ratings", "import", str(run), str(good), "--screen", "crowdmos", "--min-corr", "0.4"])
        == 0
    )
    assert load_store(run, key)["screening"] == [{"rule": "crowdmos", "min_corr": 0.4, "min_overlap": 3}]
    assert bench_main(["ratings", "import", str(run), str(good), "--screen", "bs1534", "--replace"]) == 2
    assert "bs1534 needs a hidden reference" in capsys.readouterr().err
    # thresholds alone tune each test's default rule; a mushra test takes bs1534
    mushra = next(k for k in load_keys(run).values() if k.protocol == "mushra")
    m = write(tmp_path / "m.json", export_for(mushra, "cli", score=95))
    args = ["ratings", "import", str(run), str(m), "--ref-below", "80", "--min-corr", "0.1"]
    assert bench_main(args) == 0
    assert load_store(run, mushra)["screening"] == [
        {"rule": "bs1534", "ref_below": 80.0, "max_fraction": 0.15}
    ]
    assert (
        bench_main(
            ["ratings", "import", str(run), str(m), "--replace", "--screen", "bs1534", "--screen", "listened"]
        )
        == 0
    )
    assert [r["rule"] for r in load_store(run, mushra)["screening"]] == ["bs1534", "listened"]
    store_path(run, key.test_id).unlink()
    store_path(run, mushra.test_id).unlink()


# -- property test: a mutated export is imported or refused with a RatingsError, never a traceback --
_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@st.composite
def mutations(draw):
    ops = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["set", "drop", "truncate", "rating"]))
        ops.append((kind, draw(st.integers(0, 10**6)), draw(_values)))
    return ops


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:3]):
            yield from _paths(v, (*prefix, i))


def _mutate(export: dict, ops) -> bytes:
    e = copy.deepcopy(export)
    cut = None
    for kind, n, value in ops:
        paths = [p for p in _paths(e) if p]
        path = paths[n % len(paths)]
        parent = e
        for k in path[:-1]:
            parent = parent[k]
        if kind == "set":
            parent[path[-1]] = value
        elif kind == "drop":
            parent.pop(path[-1]) if isinstance(parent, dict) else parent.pop(path[-1])
        elif kind == "rating" and e.get("ratings") and isinstance(e["ratings"], list):
            r = e["ratings"][n % len(e["ratings"])]
            if isinstance(r, dict) and isinstance(r.get("scores"), dict):
                r["scores"][sorted(r["scores"])[0]] = value
        else:
            cut = n
    raw = json.dumps(e).encode()
    return raw[: cut % (len(raw) + 1)] if cut is not None else raw


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=mutations())
def test_mutated_exports_never_traceback(run_with_test, ops):
    run, key = run_with_test
    keys = load_keys(run)
    raw = _mutate(export_for(key, "prop"), ops)
    store = store_path(run, key.test_id)
    before = store.read_bytes() if store.exists() else None
    try:
        imported = import_exports(run, [("mutated.json", raw)], replace=True)
    except RatingsError as e:
        assert str(e).startswith("mutated.json: ") and "\n" not in str(e)
        assert (store.read_bytes() if store.exists() else None) == before
    else:
        validate_export(json.loads(raw), keys, "again")  # what was stored is valid
        assert imported == {key.test_id: [json.loads(raw)["rater_id"]]}
