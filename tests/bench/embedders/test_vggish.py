"""VGGish parity with torchvggish 0.2 (network built by ``_vgg()`` with random weights, never
``vggish()``, which downloads) and its numpy front end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.embedders.vggish import (
    MIN_SAMPLES,
    VGGishEmbedder,
    VGGishPCAEmbedder,
    VGGishReluEmbedder,
    vggish_examples,
)

torchvggish = pytest.importorskip("torchvggish", reason="torchvggish (dev extra) is the reference")
from torchvggish import torchvggish as tv  # noqa: E402
from torchvggish import vggish_input  # noqa: E402


@pytest.fixture(scope="module")
def reference_files(tmp_path_factory):
    with torch.device("meta"):
        net = tv._vgg(postprocess=False).eval()
    net.to_empty(device="cpu")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():  # fan-in scaled normal: fast, and activations stay O(1)
            fan_in = p[0].numel() if p.ndim > 1 else 1
            p.copy_(torch.randn(p.shape, generator=gen) / fan_in**0.5 * (1.0 if p.ndim > 1 else 0.1))
    folder = tmp_path_factory.mktemp("vggish")
    torch.save(net.state_dict(), folder / "vggish.pth")
    rng = np.random.default_rng(0)
    pca = {"pca_eigen_vectors": (rng.standard_normal((128, 128)) * 0.05).astype(np.float64),
           "pca_means": rng.standard_normal((128, 1)).astype(np.float64)}
    torch.save(pca, folder / "pca.pth")
    return net, pca, folder


def _audio(seconds, seed=1):
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def test_front_end_matches_torchvggish():
    x = _audio(3.1)
    ref = vggish_input.waveform_to_examples(x, 16000, return_tensor=False)
    ours = vggish_examples(x)
    assert ours.shape == (3, 1, 96, 64)
    np.testing.assert_allclose(ours[:, 0].numpy(), ref, atol=1e-4, rtol=1e-5)


def test_network_matches_torchvggish_with_small_fc_layers():
    """Same conv stack and flatten order; the 12288-4096-4096 layers shrunk so the test is fast."""
    from bench.embedders.vggish import VGGishNet

    torch.manual_seed(0)
    with torch.device("meta"):  # skip initialising the 72 M full-size parameters
        ref = tv._vgg(postprocess=False).eval()
    ref.features = tv.make_layers()
    small = torch.nn.Sequential(torch.nn.Linear(12288, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16),
                                torch.nn.ReLU(), torch.nn.Linear(16, 128), torch.nn.ReLU())
    ref.embeddings = small
    with torch.device("meta"):
        ours = VGGishNet()
    ours.embeddings = torch.nn.Sequential(*list(small)[:-1])
    ours.load_state_dict(ref.state_dict(), assign=True)
    x = _audio(2.0)
    with torch.no_grad():
        expected = ref(vggish_input.waveform_to_examples(x, 16000)).numpy()
    e = VGGishReluEmbedder()
    e.set_network(ours)
    np.testing.assert_allclose(e.embed(x), expected, atol=1e-4)
    assert e.digest() == "in-memory"


@pytest.mark.slow
def test_embeddings_match_torchvggish_each_head(reference_files):
    net, pca, folder = reference_files
    x = _audio(2.0)
    examples = vggish_input.waveform_to_examples(x, 16000)
    with torch.no_grad():
        ref_relu = net(examples).numpy()
        pre = net.embeddings[:-1](torch.flatten(net.features(examples).permute(0, 2, 3, 1), 1)).numpy()
        post = tv.Postprocessor.__new__(tv.Postprocessor)  # skip its downloading __init__
        post._pca_matrix = torch.as_tensor(pca["pca_eigen_vectors"]).float()
        post._pca_means = torch.as_tensor(pca["pca_means"].reshape(-1, 1)).float()
        ref_pca = post.postprocess(net(examples)).numpy()
    params = VGGishEmbedder.Params(weights=str(folder / "vggish.pth"), pca_params=str(folder / "pca.pth"))
    loaded = VGGishPCAEmbedder(params)  # the file path once (both files); other heads share the net
    assert loaded.check() == []
    loaded.load()
    assert len(loaded.digest()) == 64 and loaded.protocol()["head"] == "pca"
    outs = {"vggish-pca": loaded.embed(x)}
    for cls in (VGGishEmbedder, VGGishReluEmbedder):
        e = cls(params)
        e.set_network(loaded.net)
        outs[cls.name] = e.embed(x)
        assert e.protocol()["head"] == cls.head
    np.testing.assert_allclose(outs["vggish"], pre, atol=1e-4)
    np.testing.assert_allclose(outs["vggish-relu"], ref_relu, atol=1e-4)
    assert np.abs(outs["vggish-pca"] - ref_pca).max() <= 1.0  # 8-bit levels; ties may round apart
    assert np.mean(outs["vggish-pca"] == ref_pca) > 0.99
    assert outs["vggish"].shape == (2, 128) and outs["vggish"].min() < 0 <= outs["vggish-relu"].min()


def test_short_clip_and_missing_file_errors(tmp_path):
    from bench.embedders.vggish import VGGishNet

    with torch.device("meta"):
        net = VGGishNet()
    net.features = torch.nn.Sequential(torch.nn.Conv2d(1, 512, 16, stride=16), torch.nn.ReLU())
    net.embeddings = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(128))
    e = VGGishEmbedder()
    e.set_network(net)
    assert e.embed(_audio(MIN_SAMPLES / 16000)).shape == (1, 128)
    with pytest.raises(ValueError, match="shorter than the backbone's window of 15600"):
        e.embed(_audio(0.5))
    missing = VGGishEmbedder(VGGishEmbedder.Params(weights=str(tmp_path / "nope.pth")))
    assert "nope.pth" in missing.check()[0] and "torchvggish/releases" in missing.check()[0]
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        missing.load()
