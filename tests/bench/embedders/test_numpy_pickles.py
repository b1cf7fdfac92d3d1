"""Checkpoints whose pickles name numpy's module under either spelling load weights-only.

A file saved under numpy 1.x (the released laion CLAP checkpoint
``music_audioset_epoch_15_esc_90.14.pt``, torchvggish's PCA file) names
``numpy.core.multiarray.scalar`` / ``_reconstruct``; a file saved under numpy 2 names
``numpy._core.multiarray.*``. Both are written here whatever numpy runs the test."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from bench.embedders.common import torch_load_with_numpy
from tests.bench.embedders.numpy_pickles import SPELLINGS, pickled_globals, save_naming_numpy_module


@pytest.mark.parametrize("module", SPELLINGS)
def test_numpy_scalars_and_arrays_load_under_either_module_name(tmp_path, module):
    obj = {"epoch": np.int64(15), "lr": np.float64(1e-4), "pca": np.arange(6, dtype=np.float32).reshape(2, 3),
           "state_dict": {"w": torch.arange(4.0)}}
    path = tmp_path / "ckpt.pt"
    save_naming_numpy_module(obj, path, module)
    assert {f"{module}.scalar", f"{module}._reconstruct"} <= pickled_globals(path)
    out = torch_load_with_numpy(path)
    assert out["epoch"] == 15 and out["lr"] == 1e-4
    np.testing.assert_array_equal(out["pca"], obj["pca"])
    assert torch.equal(out["state_dict"]["w"], torch.arange(4.0))


def test_other_numpy_globals_stay_refused(tmp_path):
    path = tmp_path / "evil.pt"
    buf = io.BytesIO()
    torch.save({"f": np.linalg.norm}, buf)  # a numpy function is not data
    path.write_bytes(buf.getvalue())
    with pytest.raises(ValueError, match="evil.pt.*weights-only"):
        torch_load_with_numpy(path)
