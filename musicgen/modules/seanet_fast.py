"""Inference path of a SEANet stack (``seanet.SEANetDecoder`` / ``SEANetEncoder``): the same layers and
weights, run faster on CPU without autograd.

Where the time goes in the plain modules (MusicGen 32 kHz decoder, 1 thread): the 2-layer LSTM over
1024 channels (torch's oneDNN LSTM), the transposed convolutions (torch's channels-first
``conv_transpose1d`` reaches about a third of the machine's GEMM rate for 64-256 channels), the reflect
padding copies in front of every convolution, and the ELUs. This path:

- keeps activations in channels-last layout ``[B, C, 1, T]`` (memory ``[B, T, C]``), where oneDNN's
  2-d convolution and deconvolution kernels are fastest; convolutions are ``conv2d`` with a height
  of 1;
- pads stride-1 convolutions with the convolution's own zeros and recomputes only the ``p`` outputs at
  each edge from a small reflect-padded slice (no copy of the whole input);
- runs the narrower transposed convolutions (kernel twice the stride) as plain kernel-2 convolutions
  with ``stride`` times the output channels, whose channels-last output is the interleaved waveform,
  and the wider ones as oneDNN deconvolutions with the trim folded into their padding;
- runs the LSTM as one input GEMM for all steps plus one product per step with the recurrent weight
  (16 MB for 1024 channels: the step is bound by reading it), through the compiled few-row kernel
  ``musicgen.modules.gemv.f32_linear`` where it runs (up to ``fast_linear.F32_GEMV_MAX_ROWS`` rows),
  else MKL on the weight stored transposed and contiguous; torch's LSTM reads the weight about 2x
  slower at batch 2-4;
- applies the ELUs in place on tensors it owns.

Results equal the plain modules' up to float32 rounding (summation order); ``tests/musicgen`` checks
them against transformers' EncodecModel. Only inference: under autograd, use the modules.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from musicgen.modules import gemv
from musicgen.modules.conv import PaddedConv1d, PaddedConvTranspose1d, extra_padding_for_conv1d, pad1d
from musicgen.modules.fast_linear import F32_GEMV_MAX_ROWS
from musicgen.modules.seanet import BottleneckLSTM, ResidualBlock

CL = torch.channels_last
CONV_FORM_MAX_CHANNELS = 1024


def _to_cl(x: torch.Tensor) -> torch.Tensor:
    """``[B, C, T]`` -> ``[B, C, 1, T]`` in channels-last memory."""
    return x[:, :, None].contiguous(memory_format=CL)


def _weight4(conv: nn.Module) -> torch.Tensor:
    """A conv's effective weight ``[O, I, k]`` as ``[O, I, 1, k]`` channels-last."""
    return conv.effective_weight()[:, :, None].contiguous(memory_format=CL)


def conv_cl(layer: PaddedConv1d, x: torch.Tensor) -> torch.Tensor:
    """``PaddedConv1d`` on channels-last ``x [B, C, 1, T]``."""
    conv = layer.conv
    w = _weight4(conv)
    stride, dilation = (1, conv.stride[0]), (1, conv.dilation[0])
    length = x.shape[-1]
    extra = extra_padding_for_conv1d(length, layer.effective_kernel, layer.stride, layer.padding_total)
    if layer.causal:
        left, right = layer.padding_total, extra
    else:
        right = layer.padding_total // 2
        left, right = layer.padding_total - right, right + extra
    p = left
    if layer.pad_mode in ("zero", "constant") or (left == 0 and right == 0):
        if left == right:
            return F.conv2d(x, w, conv.bias, stride, (0, p), dilation)
        return F.conv2d(F.pad(x, (left, right)), w, conv.bias, stride, 0, dilation)
    if layer.pad_mode == "reflect" and left == right and layer.stride == 1 and length > 3 * p:
        out = F.conv2d(x, w, conv.bias, stride, (0, p), dilation)  # zeros at the edges, fixed below
        head = F.pad(x[..., : 3 * p], (p, 0, 0, 0), mode="reflect")
        tail = F.pad(x[..., length - 3 * p:], (0, p, 0, 0), mode="reflect")
        out[..., :p] = F.conv2d(head, w, conv.bias, stride, 0, dilation)[..., :p]
        out[..., length - p:] = F.conv2d(tail, w, conv.bias, stride, 0, dilation)[..., -p:]
        return out
    if layer.pad_mode == "reflect" and length > max(left, right):
        padded = F.pad(x, (left, right, 0, 0), mode="reflect")
    else:  # short inputs and other modes: the modules' own padding rules
        padded = _to_cl(pad1d(x[:, :, 0], (left, right), mode=layer.pad_mode))
    return F.conv2d(padded, w, conv.bias, stride, 0, dilation)


def conv_transpose_cl(layer: PaddedConvTranspose1d, x: torch.Tensor) -> torch.Tensor:
    """``PaddedConvTranspose1d`` on channels-last ``x [B, C, 1, F]``; returns ``[B, O, 1, F * s]``.

    EnCodec's kernels are twice the stride (``k = 2 s``), so output frame ``m`` (``s`` samples) is
    ``W[:, :, :s]^T x[m] + W[:, :, s:]^T x[m - 1]``: a plain convolution of kernel 2 (one zero frame
    of padding each side) with ``s * O`` output channels, whose channels-last output ``[B, F + 1,
    s * O]`` is the interleaved waveform ``[B, (F + 1) s, O]`` as it lies in memory. oneDNN runs it
    faster than its deconvolution when ``s * O`` is at most ``CONV_FORM_MAX_CHANNELS`` (1024; measured
    on the 32 kHz decoder, 1 thread: 256 -> 128 and 128 -> 64 channels at stride 4 about 2x faster,
    512 -> 256 at stride 5 and 1024 -> 512 at stride 8 slower); above, oneDNN's deconvolution with the
    trim folded into ``padding``/``output_padding``. The trim is a strided view, not a copy."""
    conv = layer.conv
    s, k = conv.stride[0], conv.kernel_size[0]
    w = conv.effective_weight()  # [I, O, k]
    if layer.causal:
        right = math.ceil(layer.padding_total * layer.trim_right_ratio)
    else:
        right = layer.padding_total // 2
    left = layer.padding_total - right
    b, _, _, frames = x.shape
    out_ch = w.shape[1]
    if k != 2 * s or s * out_ch > CONV_FORM_MAX_CHANNELS or conv.dilation[0] != 1 or conv.groups != 1:
        w4 = w[:, :, None].contiguous(memory_format=CL)
        if 0 <= left - right < s:  # the trim through padding / output_padding: no slice
            return F.conv_transpose2d(x, w4, conv.bias, (1, s), (0, left), (0, left - right), conv.groups,
                                      (1, conv.dilation[0]))
        y = F.conv_transpose2d(x, w4, conv.bias, (1, s), 0, 0, conv.groups, (1, conv.dilation[0]))
        return y[..., left: y.shape[-1] - right]
    # [I, O, 2, s] -> [s * O, I, 1, 2]: output channel (j, o); tap 0 on x[m - 1] (w[..., s + j]),
    # tap 1 on x[m] (w[..., j])
    wc = torch.stack([w[:, :, s:], w[:, :, :s]], dim=-1).permute(2, 1, 0, 3)
    wc = wc.reshape(s * out_ch, -1, 1, 2).contiguous(memory_format=CL)
    bias = None if conv.bias is None else conv.bias.repeat(s)
    y = F.conv2d(x, wc, bias, 1, (0, 1))  # [B, s * O, 1, F + 1]
    total = (frames + 1) * s
    y = y.permute(0, 2, 3, 1).reshape(b, total, out_ch)[:, left: total - right]  # [B, L, O] view
    return y.unsqueeze(1).permute(0, 3, 1, 2)  # [B, O, 1, L], channels-last strides


def lstm_cl(layer: BottleneckLSTM, x: torch.Tensor) -> torch.Tensor:
    """``BottleneckLSTM`` on channels-last ``x [B, C, 1, T]`` (memory ``[B, T, C]``): LSTM + skip."""
    lstm = layer.lstm
    b, c, _, t = x.shape
    inp = x.permute(0, 2, 3, 1).reshape(b, t, c)  # a view: the memory is already [B, T, C]
    skip = inp
    hsz = lstm.hidden_size
    for i in range(lstm.num_layers):
        w_ih, w_hh = getattr(lstm, f"weight_ih_l{i}"), getattr(lstm, f"weight_hh_l{i}")
        bias = getattr(lstm, f"bias_ih_l{i}") + getattr(lstm, f"bias_hh_l{i}")
        # gate order i, f, g, o -> i, f, o, g: one sigmoid over 3H, one tanh over H
        order = torch.cat([torch.arange(0, 2 * hsz), torch.arange(3 * hsz, 4 * hsz),
                           torch.arange(2 * hsz, 3 * hsz)]).to(w_ih.device)
        gx = torch.addmm(bias[order], inp.reshape(b * t, -1), w_ih[order].t()).view(b, t, 4 * hsz)
        use_gemv = (b <= F32_GEMV_MAX_ROWS and x.dtype == torch.float32 and x.device.type == "cpu"
                    and gemv.available())
        # the compiled few-row kernel reads W [4H, H] once per step; else MKL on W^T [H, 4H] row-major
        w_step = w_hh[order].contiguous() if use_gemv else w_hh[order].t().contiguous()
        h = x.new_zeros(b, hsz)
        cell = x.new_zeros(b, hsz)
        out = x.new_empty(b, t, hsz)
        gates = x.new_empty(b, 4 * hsz)
        for step in range(t):
            if use_gemv:
                gates = gemv.f32_linear(h, w_step)
            else:
                torch.mm(h, w_step, out=gates)
            gates += gx[:, step]  # the bias after the product: faster than addmm with a strided bias
            sig = torch.sigmoid(gates[:, : 3 * hsz])
            cell = torch.addcmul(sig[:, hsz: 2 * hsz] * cell, sig[:, :hsz], torch.tanh(gates[:, 3 * hsz:]))
            h = sig[:, 2 * hsz:] * torch.tanh(cell)
            out[:, step] = h
        inp = out
    y = inp + skip  # [B, T, C] contiguous
    return y.view(b, 1, t, c).permute(0, 3, 1, 2)  # [B, C, 1, T], channels-last memory


def residual_cl(block: ResidualBlock, x: torch.Tensor) -> torch.Tensor:
    """``ResidualBlock`` on channels-last ``x``: ``shortcut(x) + conv(ELU(conv(ELU(x))))``."""
    y = F.elu(x)
    for layer in block.block[1:]:
        y = F.elu_(y) if isinstance(layer, nn.ELU) else conv_cl(layer, y)
    short = x if isinstance(block.shortcut, nn.Identity) else conv_cl(block.shortcut, x)
    return y.add_(short)


def seanet_inference(layers: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    """Run a SEANet ``layers`` list on ``x [B, C, T]`` as above; returns ``[B, C', T']`` (contiguous)."""
    h = _to_cl(x)
    owned = h.data_ptr() != x.data_ptr()
    for layer in layers:
        if type(layer) is nn.ELU and layer.alpha == 1.0:
            h = F.elu_(h) if owned else F.elu(h)
        elif type(layer) is PaddedConv1d:
            h = conv_cl(layer, h)
        elif type(layer) is PaddedConvTranspose1d:
            h = conv_transpose_cl(layer, h)
        elif type(layer) is ResidualBlock:
            h = residual_cl(layer, h)
        elif type(layer) is BottleneckLSTM:
            h = lstm_cl(layer, h)
        else:  # anything else: the module itself, channels-first
            h = _to_cl(layer(h[:, :, 0].contiguous()))
        owned = True
    return h[:, :, 0].contiguous()
