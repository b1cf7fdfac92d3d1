"""The ``clip-folder`` dataset: prompt ids from a folder, captions from a manifest, a sidecar or none."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from bench.clipfiles import ClipFilesError
from bench.datasets.clip_folder import ClipFolder


def folder(tmp_path):
    root = tmp_path / "clips"
    root.mkdir()
    for name in ("b", "a", "c"):
        sf.write(root / f"{name}.wav", np.zeros(100, np.float32), 1000)
    (root / "c.json").write_text(json.dumps({"description": "from the sidecar"}))
    return root


def test_captions_in_order_of_precedence(tmp_path):
    root = folder(tmp_path)
    caps = tmp_path / "caps.jsonl"
    caps.write_text(json.dumps({"prompt_id": "a", "caption": "from the manifest"}) + "\n")
    ds = ClipFolder(ClipFolder.Params(root=root, captions=caps))
    prompts = ds.prompts()
    assert [p.id for p in prompts] == ["a", "b", "c"]
    assert [p.text for p in prompts] == ["from the manifest", "", "from the sidecar"]
    assert all(p.reference_path == root / f"{p.id}.wav" for p in prompts)
    assert ds.protocol()["n_captioned"] == 2
    no_audio = ClipFolder(ClipFolder.Params(root=root, reference=False)).prompts()
    assert all(p.reference_path is None for p in no_audio)


def test_bad_captions_are_named(tmp_path):
    root = folder(tmp_path)
    caps = tmp_path / "caps.csv"
    caps.write_text("prompt_id,caption\nz,unknown id\n")
    [problem] = ClipFolder(ClipFolder.Params(root=root, captions=caps)).check()
    assert "caps.csv' names 1 prompt id(s) with no clip" in problem and ": z" in problem
    caps.write_text("prompt_id,caption\na,\n")
    with pytest.raises(ClipFilesError, match=r"caps\.csv' line 2: no 'caption' for prompt id 'a'"):
        ClipFolder(ClipFolder.Params(root=root, captions=caps)).prompts()
    (root / "a.json").write_text("{not json")
    assert "a.json': not valid JSON" in ClipFolder(ClipFolder.Params(root=root)).check()[0]
