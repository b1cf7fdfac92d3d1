from __future__ import annotations

import json
from fractions import Fraction

import pytest
import torch
from safetensors.torch import save_file

from musicgen.checkpoints.files import (
    MissingCheckpointFile,
    atomic_folder,
    atomic_write_json,
    atomic_write_text,
    load_state_dict,
    load_state_strict,
    require_file,
    resolve_local,
    state_dict_digest,
)


def test_missing_file_error_names_the_file_and_the_folder(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(MissingCheckpointFile, match=r"model\.safetensors.*config\.json"):
        require_file(tmp_path, "model.safetensors")


def test_hub_id_resolves_from_local_cache_only(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(MissingCheckpointFile, match="huggingface-cli download facebook/musicgen-small"):
        resolve_local("facebook/musicgen-small")
    snap = tmp_path / "models--facebook--musicgen-small" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap.parent.parent / "refs").mkdir()
    (snap.parent.parent / "refs" / "main").write_text("abc123")
    assert resolve_local("facebook/musicgen-small") == snap


def test_state_dict_round_trip_and_digest(tmp_path):
    sd = {"a": torch.randn(3, 4), "b": torch.arange(5)}
    save_file(sd, str(tmp_path / "w.safetensors"))
    torch.save(sd, tmp_path / "w.pt")
    a, b = load_state_dict(tmp_path / "w.safetensors"), load_state_dict(tmp_path / "w.pt")
    assert state_dict_digest(a) == state_dict_digest(b) == state_dict_digest(sd)
    sd["a"][0, 0] += 1
    assert state_dict_digest(sd) != state_dict_digest(a)


def test_unsafe_pickle_is_refused(tmp_path):
    torch.save({"x": Fraction(1, 3)}, tmp_path / "evil.pt")  # a global outside the allow-list
    with pytest.raises(ValueError, match="evil.pt"):
        load_state_dict(tmp_path / "evil.pt")


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))


def test_strict_load_copies_every_tensor():
    src, dst = _net(), torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    load_state_strict(dst, src.state_dict(), "src.safetensors")
    assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), dst.state_dict().values()))


def test_strict_load_names_source_and_keys_and_loads_nothing_on_mismatch():
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    state = {k: torch.zeros_like(v) for k, v in net.state_dict().items()}
    del state["1.bias"]
    state["2.weight"] = torch.zeros(1)
    state["0.weight"] = torch.zeros(5, 3)
    with pytest.raises(ValueError) as err:
        load_state_strict(net, state, "w.safetensors", "test weights")
    msg = str(err.value)
    assert msg.startswith("w.safetensors: test weights do not match")
    assert "missing keys ['1.bias']" in msg and "unexpected keys ['2.weight']" in msg
    assert "0.weight: (5, 3) vs (4, 3)" in msg
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_strict_load_skips_a_prefix():
    net = _net()
    state = {k: torch.ones_like(v) for k, v in net.state_dict().items() if not k.startswith("0.")}
    load_state_strict(net, state, "w", skip=("0.",))
    assert (net[1].weight == 1).all()
    with pytest.raises(ValueError, match="missing keys"):
        load_state_strict(net, state, "w")


def test_atomic_writes_replace_whole_files_and_leave_no_temporaries(tmp_path):
    path = tmp_path / "sub" / "a.json"
    atomic_write_json(path, {"b": 1, "a": [1, 2]})
    assert json.loads(path.read_text()) == {"a": [1, 2], "b": 1} and path.read_text().endswith("\n")
    atomic_write_text(path, "new")
    assert path.read_text() == "new"
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.json"]


def test_atomic_folder_publishes_on_success_only(tmp_path):
    final = tmp_path / "out"
    with atomic_folder(final) as tmp:
        assert tmp.parent == tmp_path and tmp != final and not final.exists()
        (tmp / "x").write_text("1")
    assert (final / "x").read_text() == "1"
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_folder(final) as tmp:
            (tmp / "x").write_text("2")
            raise RuntimeError("boom")
    assert (final / "x").read_text() == "1"  # the old folder stays whole
    with atomic_folder(final) as tmp:
        (tmp / "y").write_text("3")
    assert sorted(p.name for p in final.iterdir()) == ["y"]  # replaced, not merged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporaries left
