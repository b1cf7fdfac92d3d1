"""SEANet encoder and decoder, as used by EnCodec.

Encoder ``[B, C, T] -> [B, D, ceil(T / hop)]`` with ``hop = prod(ratios)``; decoder
``[B, D, F] -> [B, C, F * hop]``. The layer list (``layers.N``) is, for the encoder::

    conv(C -> n_filters, kernel_size)
    for ratio in reversed(ratios):   # each stage doubles the channels
        residual blocks (dilations dilation_base**j), ELU, conv(stride=ratio, kernel=2*ratio)
    LSTM (lstm_layers, skip connection), ELU, conv(-> D, last_kernel_size)

and the mirror image for the decoder (conv, LSTM, then ELU + transposed conv + residual blocks per
ratio, ELU, final conv). Indices in ``layers`` therefore equal audiocraft's ``model.N`` and
transformers' ``layers.N``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from musicgen.modules.conv import PaddedConv1d, PaddedConvTranspose1d


class ResidualBlock(nn.Module):
    """``x + conv1(ELU(conv_k(ELU(x))))`` with a bottleneck of ``dim // compress`` channels.

    ``block`` = [ELU, conv(kernel, dilation), ELU, conv(1)]; the shortcut is identity (``true_skip``)
    or a 1x1 conv.
    """

    def __init__(
        self,
        dim: int,
        kernel_size: int,
        dilation: int,
        compress: int,
        true_skip: bool,
        causal: bool,
        pad_mode: str,
        norm: str,
    ) -> None:
        super().__init__()
        hidden = dim // compress
        kw = dict(causal=causal, pad_mode=pad_mode, norm=norm)
        self.block = nn.ModuleList(
            [
                nn.ELU(),
                PaddedConv1d(dim, hidden, kernel_size, dilation=dilation, **kw),
                nn.ELU(),
                PaddedConv1d(hidden, dim, 1, **kw),
            ]
        )
        self.shortcut: nn.Module = nn.Identity() if true_skip else PaddedConv1d(dim, dim, 1, **kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        for layer in self.block:
            y = layer(y)
        return self.shortcut(x) + y


class BottleneckLSTM(nn.Module):
    """A multi-layer LSTM over time with a skip connection, in conv layout ``[B, C, T] -> [B, C, T]``."""

    def __init__(self, dim: int, num_layers: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, num_layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(2, 0, 1)
        y = self.lstm(x)[0] + x
        return y.permute(1, 2, 0)


class _SEANetBase(nn.Module):
    def __init__(
        self,
        channels: int,
        dimension: int,
        n_filters: int,
        ratios: Sequence[int],
        residual_layers: int,
        kernel_size: int,
        last_kernel_size: int,
        residual_kernel_size: int,
        dilation_base: int,
        compress: int,
        lstm_layers: int,
        causal: bool,
        pad_mode: str,
        true_skip: bool,
        norm: str,
    ) -> None:
        super().__init__()
        self.ratios = list(ratios)
        self.hop_length = 1
        for r in self.ratios:
            self.hop_length *= int(r)
        self._kw = dict(causal=causal, pad_mode=pad_mode, norm=norm)
        self._res = dict(kernel_size=residual_kernel_size, compress=compress, true_skip=true_skip, **self._kw)
        self._residual_layers = residual_layers
        self._dilation_base = dilation_base

    def _residual_stack(self, dim: int) -> list[nn.Module]:
        return [
            ResidualBlock(dim, dilation=self._dilation_base**j, **self._res)
            for j in range(self._residual_layers)
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class SEANetEncoder(_SEANetBase):
    """Waveform ``[B, channels, T]`` -> latents ``[B, dimension, ceil(T / hop_length)]``."""

    def __init__(
        self,
        channels: int = 1,
        dimension: int = 128,
        n_filters: int = 64,
        ratios: Sequence[int] = (8, 5, 4, 4),
        residual_layers: int = 1,
        kernel_size: int = 7,
        last_kernel_size: int = 7,
        residual_kernel_size: int = 3,
        dilation_base: int = 2,
        compress: int = 2,
        lstm_layers: int = 2,
        causal: bool = False,
        pad_mode: str = "reflect",
        true_skip: bool = True,
        norm: str = "weight_norm",
    ) -> None:
        super().__init__(
            channels,
            dimension,
            n_filters,
            ratios,
            residual_layers,
            kernel_size,
            last_kernel_size,
            residual_kernel_size,
            dilation_base,
            compress,
            lstm_layers,
            causal,
            pad_mode,
            true_skip,
            norm,
        )
        layers: list[nn.Module] = [PaddedConv1d(channels, n_filters, kernel_size, **self._kw)]
        mult = 1
        for ratio in reversed(self.ratios):
            dim = mult * n_filters
            layers += self._residual_stack(dim)
            layers += [nn.ELU(), PaddedConv1d(dim, dim * 2, ratio * 2, stride=ratio, **self._kw)]
            mult *= 2
        if lstm_layers:
            layers.append(BottleneckLSTM(mult * n_filters, lstm_layers))
        layers += [nn.ELU(), PaddedConv1d(mult * n_filters, dimension, last_kernel_size, **self._kw)]
        self.layers = nn.ModuleList(layers)


class SEANetDecoder(_SEANetBase):
    """Latents ``[B, dimension, F]`` -> waveform ``[B, channels, F * hop_length]``."""

    def __init__(
        self,
        channels: int = 1,
        dimension: int = 128,
        n_filters: int = 64,
        ratios: Sequence[int] = (8, 5, 4, 4),
        residual_layers: int = 1,
        kernel_size: int = 7,
        last_kernel_size: int = 7,
        residual_kernel_size: int = 3,
        dilation_base: int = 2,
        compress: int = 2,
        lstm_layers: int = 2,
        causal: bool = False,
        pad_mode: str = "reflect",
        true_skip: bool = True,
        norm: str = "weight_norm",
        trim_right_ratio: float = 1.0,
    ) -> None:
        super().__init__(
            channels,
            dimension,
            n_filters,
            ratios,
            residual_layers,
            kernel_size,
            last_kernel_size,
            residual_kernel_size,
            dilation_base,
            compress,
            lstm_layers,
            causal,
            pad_mode,
            true_skip,
            norm,
        )
        mult = 2 ** len(self.ratios)
        layers: list[nn.Module] = [PaddedConv1d(dimension, mult * n_filters, kernel_size, **self._kw)]
        if lstm_layers:
            layers.append(BottleneckLSTM(mult * n_filters, lstm_layers))
        for ratio in self.ratios:
            dim = mult * n_filters
            layers += [
                nn.ELU(),
                PaddedConvTranspose1d(
                    dim,
                    dim // 2,
                    ratio * 2,
                    stride=ratio,
                    causal=causal,
                    trim_right_ratio=trim_right_ratio,
                    norm=norm,
                ),
            ]
            layers += self._residual_stack(dim // 2)
            mult //= 2
        layers += [nn.ELU(), PaddedConv1d(n_filters, channels, last_kernel_size, **self._kw)]
        self.layers = nn.ModuleList(layers)
