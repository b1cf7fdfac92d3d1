from __future__ import annotations

from fractions import Fraction

import pytest
import torch
from safetensors.torch import save_file

from musicgen.checkpoints.files import (
    MissingCheckpointFile,
    load_state_dict,
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
