"""VGGish (Hershey et al. 2017) in the torchvggish weights layout, for FAD.

Front end at 16 kHz (the AudioSet recipe): frames of 25 ms (400 samples) every 10 ms (160) without
padding, periodic Hann, magnitude of a 512-point FFT, 64 HTK-mel bands 125-7500 Hz (the DC row
zeroed), ``log(mel + 0.01)``; non-overlapping examples of 96 frames (0.96 s). A clip shorter than
one example (15600 samples, 0.975 s) is an error. Network: VGG convs 64-128-256x2-512x2 with four
max-pools, then 4096-4096-128 fully connected layers; one 128-d embedding per 0.96 s.

Three heads, reported under different names because their FAD values differ:
- ``vggish``: the 128-d output of the last linear layer without activation (TensorFlow VGGish's
  ``vggish/embedding`` in the current release of the model code);
- ``vggish-relu``: with the final ReLU, as torchvggish ``postprocess=False`` (fadtk's setting);
- ``vggish-pca``: ReLU, then the AudioSet PCA/whitening, clipping to [-2, 2] and 8-bit quantisation
  (torchvggish ``postprocess=True``); needs ``vggish_pca_params-970ea276.pth``.

Weights: ``vggish-10086976.pth`` from github.com/harritaylor/torchvggish releases (v0.1).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from bench.api import Embedder, Params
from bench.embedders.common import check_weight_files, local_file, require_length, torch_load_with_numpy

SAMPLE_RATE = 16000
WINDOW = 400
HOP = 160
N_FFT = 512
N_MELS = 64
EXAMPLE_FRAMES = 96
MIN_SAMPLES = WINDOW + HOP * (EXAMPLE_FRAMES - 1)
RELEASES = "https://github.com/harritaylor/torchvggish/releases/tag/v0.1"
HOW_TO_GET = f"Download vggish-10086976.pth from {RELEASES} and pass its path."
HOW_TO_GET_PCA = (f"Download vggish_pca_params-970ea276.pth (for vggish-pca) from {RELEASES} "
                  "and pass its path.")
WEIGHT_NAMES = (r"^features\.0\.weight$", r"^embeddings\.4\.weight$")
PCA_NAMES = ("^pca_eigen_vectors$", "^pca_means$")


@functools.lru_cache(maxsize=2)
def vggish_mel_matrix() -> torch.Tensor:
    """HTK mel filter bank ``[257, 64]`` (linear-frequency bins x bands) with the DC row zeroed."""
    def mel(f: np.ndarray) -> np.ndarray:
        return 1127.0 * np.log1p(f / 700.0)

    bins_mel = mel(np.linspace(0.0, SAMPLE_RATE / 2, N_FFT // 2 + 1))
    edges = np.linspace(mel(np.array(125.0)), mel(np.array(7500.0)), N_MELS + 2)
    lo, centre, hi = edges[:-2], edges[1:-1], edges[2:]
    up = (bins_mel[:, None] - lo) / (centre - lo)
    down = (hi - bins_mel[:, None]) / (hi - centre)
    w = np.maximum(0.0, np.minimum(up, down))
    w[0, :] = 0.0
    return torch.from_numpy(w)


@functools.lru_cache(maxsize=4)
def _front_end_tables(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Periodic Hann ``[400]`` and the mel matrix ``[257, 64]``, computed in float64, cast to ``dtype``."""
    window = 0.5 - 0.5 * torch.cos(2 * torch.pi * torch.arange(WINDOW, dtype=torch.float64) / WINDOW)
    return window.to(dtype), vggish_mel_matrix().to(dtype)


def vggish_examples(wav: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Mono 16 kHz ``[T]`` -> log-mel examples ``[N, 1, 96, 64]`` float32.

    ``dtype`` is the precision of the STFT and mel arithmetic. float32 (the default) moves the
    embeddings by at most 2e-6 against float64 on music-like clips from -50 to -1 dBFS (the ``+ 0.01``
    floor keeps quiet bands' log error small; ``benchmarks/front_end_precision.py``, the tests)."""
    window, mel_matrix = _front_end_tables(dtype)
    x = torch.from_numpy(np.asarray(wav)).to(dtype)
    frames = x.unfold(0, WINDOW, HOP)  # [F, 400]
    mag = torch.fft.rfft(frames * window, n=N_FFT).abs()  # [F, 257]
    log_mel = torch.log(mag @ mel_matrix + 0.01)  # [F, 64]
    examples = log_mel.unfold(0, EXAMPLE_FRAMES, EXAMPLE_FRAMES).transpose(1, 2)  # [N, 96, 64]
    return examples[:, None].float()


class VGGishNet(nn.Module):
    """The VGGish network with torchvggish's parameter names (``features.*``, ``embeddings.*``).

    ``forward`` takes ``[N, 1, 96, 64]`` and returns the pre-activation embedding ``[N, 128]``. The
    embedder runs it in channels-last memory (oneDNN's faster layout for these convolutions and
    pools: about 1.3x on 1 thread), with in-place ReLUs.
    """

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M"):
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, int(v), 3, padding=1), nn.ReLU(inplace=True)]
                channels = int(v)
        self.features = nn.Sequential(*layers)
        self.embeddings = nn.Sequential(nn.Linear(512 * 4 * 6, 4096), nn.ReLU(inplace=True),
                                        nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Linear(4096, 128))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)  # [N, 512, 6, 4]
        h = h.permute(0, 2, 3, 1).reshape(h.shape[0], -1)  # channels last, as the TF original
        return self.embeddings(h)


def _channels_last(net: nn.Module) -> nn.Module:
    """The convolution weights of ``net`` in channels-last memory (in place; values unchanged)."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            m.to(memory_format=torch.channels_last)
    return net


class VGGishParams(Params):
    weights: str = "vggish-10086976.pth"
    pca_params: str = "vggish_pca_params-970ea276.pth"
    batch_size: int = 64


class VGGishEmbedder(Embedder):
    """VGGish frame embeddings ``[F, 128]``, one per 0.96 s, without the final activation."""

    name: ClassVar[str] = "vggish"
    version: ClassVar[str] = "1"
    sample_rate: ClassVar[int] = SAMPLE_RATE
    dim: ClassVar[int] = 128
    head: ClassVar[str] = "linear"
    Params = VGGishParams

    def __init__(self, params: VGGishParams | None = None) -> None:
        super().__init__(params)
        self.net: VGGishNet | None = None
        self.pca: tuple[torch.Tensor, torch.Tensor] | None = None

    def check(self) -> list[str]:
        return check_weight_files(self, ("VGGish weights", WEIGHT_NAMES, HOW_TO_GET),
                                  ("VGGish PCA parameters", PCA_NAMES, HOW_TO_GET_PCA))

    def weight_files(self) -> list[Path]:
        paths = [local_file(self.params.weights, "VGGish weights", HOW_TO_GET)]
        if self.head == "pca":
            paths.append(local_file(self.params.pca_params, "VGGish PCA parameters", HOW_TO_GET_PCA))
        return paths

    def load(self, device: str = "cpu") -> None:
        paths = self.weight_files()
        with torch.device("meta"):  # no random init of 72 M parameters that are overwritten anyway
            net = VGGishNet()
        state = torch_load_with_numpy(paths[0])
        net.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()}, assign=True)
        self.net = _channels_last(net.eval().to(device))
        self.device = device
        if self.head == "pca":
            p = torch_load_with_numpy(paths[1])
            self.pca = (torch.as_tensor(np.asarray(p["pca_eigen_vectors"])).float(),
                        torch.as_tensor(np.asarray(p["pca_means"])).float().reshape(-1))

    def set_network(self, net: VGGishNet, pca: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        """Use an in-memory network (tests, benchmarks); digest becomes ``"in-memory"``."""
        self.net, self.pca = _channels_last(net.eval()), pca
        self.use_in_memory()

    def protocol(self) -> dict:
        return {**super().protocol(), "head": self.head, "frames": "0.96 s, no overlap, no padding",
                "min_samples": MIN_SAMPLES}

    def embed(self, wav: np.ndarray) -> np.ndarray:
        return self.embed_batch([wav])[0]

    @torch.inference_mode()
    def embed_batch(self, wavs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The 0.96 s examples of all clips through the network together, ``batch_size`` at a time."""
        if self.net is None:
            raise RuntimeError(f"{self.name}: call load() before embed()")
        per_clip = [vggish_examples(require_length(w, MIN_SAMPLES, self.name, SAMPLE_RATE)) for w in wavs]
        examples = torch.cat(per_clip)
        examples = examples.contiguous(memory_format=torch.channels_last)
        outs = [self.net(examples[i:i + self.params.batch_size].to(self.device)).cpu()
                for i in range(0, len(examples), self.params.batch_size)]
        emb = torch.cat(outs)
        if self.head in ("relu", "pca"):
            emb = torch.relu(emb)
        if self.head == "pca":
            assert self.pca is not None
            vectors, means = self.pca
            emb = (emb - means) @ vectors.T  # float32, as torchvggish
            emb = torch.round((emb.clamp(-2.0, 2.0) + 2.0) * (255.0 / 4.0))
        return [e.numpy() for e in emb.float().split([len(x) for x in per_clip])]


class VGGishReluEmbedder(VGGishEmbedder):
    """VGGish with the final ReLU (torchvggish ``postprocess=False``, fadtk)."""

    name: ClassVar[str] = "vggish-relu"
    head: ClassVar[str] = "relu"


class VGGishPCAEmbedder(VGGishEmbedder):
    """VGGish with ReLU, AudioSet PCA/whitening and 8-bit quantisation (values 0..255)."""

    name: ClassVar[str] = "vggish-pca"
    head: ClassVar[str] = "pca"
