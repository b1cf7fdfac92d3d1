"""Cheap looks inside weight files (``musicgen.checkpoints.peek``): names from safetensors headers and
torch pickles (zip and legacy) without loading, and one clear line for empty, truncated or foreign
files. Property tests: any bytes give names or ``UnreadableWeights``, never another exception."""

from __future__ import annotations

import string

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from musicgen.checkpoints.peek import (
    UnreadableWeights,
    check_weight_file,
    peek_names,
    peek_pickled_string,
)

NAMES = st.lists(st.text(string.ascii_letters + string.digits + "._", min_size=1, max_size=20),
                 min_size=1, max_size=6, unique=True)


@settings(max_examples=25, deadline=None)
@given(names=NAMES, fmt=st.sampled_from(["safetensors", "zip", "legacy"]))
def test_names_of_every_format(tmp_path_factory, names, fmt):
    path = tmp_path_factory.mktemp("w") / ("w.safetensors" if fmt == "safetensors" else "w.pt")
    state = {n: torch.zeros(2) for n in names}
    if fmt == "safetensors":
        save_file(state, str(path))
    else:
        torch.save({"best_state": state, "xp.cfg": "a: 1\n"}, path,
                   _use_new_zipfile_serialization=fmt == "zip")
    assert set(names) <= peek_names(path)
    if fmt != "safetensors":
        assert {"best_state", "xp.cfg"} <= peek_names(path)


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".safetensors", ".pt", ".bin"]),
       prefix=st.sampled_from([b"", b"PK\x03\x04", b"\x80\x02", b"\x10\x00\x00\x00\x00\x00\x00\x00{"]))
def test_any_bytes_give_names_or_one_clear_error(tmp_path_factory, data, suffix, prefix):
    path = tmp_path_factory.mktemp("w") / f"x{suffix}"
    path.write_bytes(prefix + data)
    try:
        assert isinstance(peek_names(path), set)
    except UnreadableWeights as e:
        assert str(path) in str(e)


def test_placeholders_and_truncations_are_named(tmp_path):
    empty = tmp_path / "clap.pt"
    empty.touch()
    [line] = check_weight_file(empty, "CLAP checkpoint", (), "Download it and pass its path.")
    assert "is empty (0 bytes)" in line and line.endswith("Download it and pass its path.")
    assert ".." not in line
    good = tmp_path / "m.safetensors"
    save_file({"decoder.w": torch.zeros(3)}, str(good))
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:20])
    assert "not a safetensors file" in check_weight_file(cut, "w")[0]
    [line] = check_weight_file(good, "w", (r"^decoder\.", r"^text_encoder\."))
    assert "text_encoder" in line and "not the expected checkpoint" in line and "decoder" not in line
    assert check_weight_file(good, "w", (r"^decoder\.",)) == []
    assert "does not exist" in check_weight_file(tmp_path / "none.pt", "w")[0]


def test_a_pickled_string_is_read_without_loading(tmp_path):
    path = tmp_path / "state_dict.bin"
    torch.save({"best_state": {"emb.0.weight": torch.zeros(2)},
                "xp.cfg": "dataset:\n  segment_duration: 10\n", "epoch": np.int64(3)}, path)
    assert peek_pickled_string(path, "xp.cfg") == "dataset:\n  segment_duration: 10\n"
    assert peek_pickled_string(path, "nope") is None
    with pytest.raises(FileNotFoundError):
        peek_names(tmp_path / "absent.bin")


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("true",))


def test_pickles_that_call_code_are_refused_before_loading(tmp_path):
    import numpy as np

    evil = tmp_path / "state_dict.bin"
    torch.save({"best_state": {"emb.0.weight": torch.zeros(2)}, "x": _Evil()}, evil)
    [line] = check_weight_file(evil, "audiocraft LM", (r"emb\.0\.weight",))
    assert "refused: not a weights-only torch checkpoint (its pickle calls posix.system)" in line
    data = tmp_path / "ok.pt"
    torch.save({"w": torch.zeros(2), "epoch": np.int64(3), "pca": np.arange(3), "s": {1, 2}}, data)
    assert check_weight_file(data, "w", (r"^w$",)) == []
