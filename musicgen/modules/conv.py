"""Weight-normalised 1-d convolutions with EnCodec's padding rules.

``PaddedConv1d`` pads its input so that a strided convolution covers every input sample and its
output has ``ceil(T / stride)`` frames:

- the fixed padding is ``effective_kernel - stride`` (``effective_kernel = (k - 1) * dilation + 1``);
  causal convolutions put all of it on the left, non-causal ones split it with the extra sample on
  the left (``left = total - total // 2``);
- an extra right padding makes the last window complete (``extra_padding_for_conv1d``);
- reflect padding on an input shorter than the padding first appends zeros so the reflection is
  defined (the extra zeros are cut again after padding).

``PaddedConvTranspose1d`` removes the same fixed padding after the transposed convolution (causal:
``ceil(total * trim_right_ratio)`` on the right, the rest on the left; non-causal: ``total // 2`` on
the right). The extra padding is not removed per layer: the codec trims the final output instead.

Weight normalisation is stored as two parameters, ``weight_g`` (``[C_out, 1, 1]`` for a conv,
``[C_in, 1, 1]`` for a transposed conv, the norm over every dim but 0) and ``weight_v`` (the
direction), the layout of both audiocraft's and older transformers' checkpoints. The effective
weight is ``g * v / ||v||`` computed with ``torch._weight_norm`` (what torch's own weight-norm
parametrization calls), so results are bit-identical to those implementations.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

NORMS = ("weight_norm", "none")


def extra_padding_for_conv1d(length: int, kernel_size: int, stride: int, padding_total: int) -> int:
    """Right padding that makes the last window of a strided conv complete.

    ``kernel_size`` is the effective (dilated) size. With it the conv outputs
    ``ceil((length - kernel_size + padding_total) / stride) + 1`` frames.
    """
    n_frames = (length - kernel_size + padding_total) / stride + 1
    ideal_length = (math.ceil(n_frames) - 1) * stride + (kernel_size - padding_total)
    return ideal_length - length


def pad1d(x: torch.Tensor, paddings: tuple[int, int], mode: str = "constant") -> torch.Tensor:
    """``F.pad`` on the last dim of ``x [B, C, T]`` that also reflects inputs shorter than the padding."""
    left, right = paddings
    if mode != "reflect":
        return F.pad(x, (left, right), mode="constant" if mode in ("zero", "constant") else mode)
    length = x.shape[-1]
    max_pad = max(left, right)
    extra = 0
    if length <= max_pad:
        extra = max_pad - length + 1
        x = F.pad(x, (0, extra))
    padded = F.pad(x, (left, right), mode="reflect")
    return padded[..., : padded.shape[-1] - extra]


class _WeightNormMixin:
    """Holds ``weight_g``/``weight_v`` (or a plain ``weight``) and computes the effective weight."""

    def _init_norm(self, norm: str) -> None:
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        self.norm = norm
        if norm == "weight_norm":
            w = self.weight.detach()
            del self.weight
            self.weight_g = nn.Parameter(torch.norm_except_dim(w, 2, 0))
            self.weight_v = nn.Parameter(w.clone())

    def effective_weight(self) -> torch.Tensor:
        if self.norm == "weight_norm":
            return torch._weight_norm(self.weight_v, self.weight_g, 0)
        return self.weight


class WeightNormConv1d(_WeightNormMixin, nn.Conv1d):
    """``nn.Conv1d`` whose weight is ``g * v / ||v||`` (norm over ``[C_in, k]`` for each output channel)."""

    def __init__(self, *args, norm: str = "weight_norm", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_norm(norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.effective_weight(), self.bias)


class WeightNormConvTranspose1d(_WeightNormMixin, nn.ConvTranspose1d):
    """``nn.ConvTranspose1d`` whose weight ``[C_in, C_out, k]`` is weight-normalised over dim 0."""

    def __init__(self, *args, norm: str = "weight_norm", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_norm(norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose1d(
            x,
            self.effective_weight(),
            self.bias,
            self.stride,
            self.padding,
            self.output_padding,
            self.groups,
            self.dilation,
        )


class PaddedConv1d(nn.Module):
    """Conv1d ``[B, C_in, T] -> [B, C_out, ceil(T / stride)]`` with causal or centred padding."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        causal: bool = False,
        pad_mode: str = "reflect",
        norm: str = "weight_norm",
    ) -> None:
        super().__init__()
        self.conv = WeightNormConv1d(
            in_channels, out_channels, kernel_size, stride, dilation=dilation, norm=norm
        )
        self.causal = causal
        self.pad_mode = pad_mode
        self.stride = stride
        self.effective_kernel = (kernel_size - 1) * dilation + 1
        self.padding_total = self.effective_kernel - stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        extra = extra_padding_for_conv1d(x.shape[-1], self.effective_kernel, self.stride, self.padding_total)
        if self.causal:
            x = pad1d(x, (self.padding_total, extra), mode=self.pad_mode)
        else:
            right = self.padding_total // 2
            left = self.padding_total - right
            x = pad1d(x, (left, right + extra), mode=self.pad_mode)
        return self.conv(x)


class PaddedConvTranspose1d(nn.Module):
    """ConvTranspose1d ``[B, C_in, F] -> [B, C_out, F * stride]`` that trims EnCodec's fixed padding."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        causal: bool = False,
        trim_right_ratio: float = 1.0,
        norm: str = "weight_norm",
    ) -> None:
        super().__init__()
        if not causal and trim_right_ratio != 1.0:
            raise ValueError("trim_right_ratio != 1.0 only makes sense for causal convolutions")
        self.conv = WeightNormConvTranspose1d(in_channels, out_channels, kernel_size, stride, norm=norm)
        self.causal = causal
        self.trim_right_ratio = trim_right_ratio
        self.padding_total = kernel_size - stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if self.causal:
            right = math.ceil(self.padding_total * self.trim_right_ratio)
        else:
            right = self.padding_total // 2
        left = self.padding_total - right
        return y[..., left : y.shape[-1] - right]
