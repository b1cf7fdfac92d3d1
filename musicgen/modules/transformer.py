"""Pre-norm transformer decoder with a static KV cache, as used by MusicGen's LM.

Layer layout (the released checkpoints; every projection is bias free)::

    x = x + SelfAttn(LN_1(x))                 causal, keys/values cached for decoding
    x = x + CrossAttn(LN_cross(x), cond)      only when ``cross_attention`` (text conditioning)
    x = x + W_2 act(W_1 LN_2(x))              act: gelu (exact), gelu_tanh or relu

Attention goes through ``torch.nn.functional.scaled_dot_product_attention``.

Masks: a masked key gets a large negative additive score (``finfo.min``), never ``-inf``, so a query
whose keys are all masked attends uniformly instead of producing NaN. This is what transformers'
MusicGen does; for the classifier-free-guidance null condition (zero hidden states, zero mask) the
cross-attention output is therefore exactly zero, since the bias-free projections of zeros are zero.

Decoding: :class:`DecodeState` holds preallocated (static) self-attention caches ``[B, H, S_max, Dh]``
per layer and the cross-attention keys/values, which are computed once per generation by
:meth:`Transformer.start_decoding`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from musicgen.modules.fast_linear import PackedLinear, fused_weight

ACTIVATIONS = ("gelu", "gelu_tanh", "relu")


def sinusoidal_positions(num_positions: int, dim: int) -> torch.Tensor:
    """Sinusoidal position table ``[num_positions, dim]``, cosines first then sines.

    Frequencies ``exp(-i * ln(10000) / (dim/2 - 1))`` for ``i < dim/2``: the convention of the released
    MusicGen checkpoints (audiocraft's ``create_sin_embedding`` and transformers'
    ``MusicgenSinusoidalPositionalEmbedding``), computed here as transformers does so that logits match.
    """
    if dim % 2:
        raise ValueError(f"sinusoidal positions need an even dimension, got dim={dim}")
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.int64).float() * -(math.log(10000) / (half - 1)))
    phase = torch.arange(num_positions, dtype=torch.int64).float().unsqueeze(1) * freqs.unsqueeze(0)
    return torch.cat([torch.cos(phase), torch.sin(phase)], dim=1)


def attention_dtype(dtype: torch.dtype, device: torch.device) -> torch.dtype:
    """The dtype the decode caches and attention run in for weights of ``dtype`` on ``device``.

    float32 for bf16/fp16 weights on CPU: CPUs without native half-precision arithmetic (AVX2) run
    attention over a long cache several times slower in bf16 than in float32 (measured: 2 rows,
    16 heads, 250 keys: 0.93 ms vs 0.13 ms per call), which would dominate long generations. The
    weight products stay in the weights' dtype; queries are cast up, outputs cast back down.
    """
    if device.type == "cpu" and dtype in (torch.bfloat16, torch.float16):
        return torch.float32
    return dtype


def additive_key_mask(keep: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``keep [B, L]`` bool/0-1 -> additive mask ``[B, 1, 1, L]``: 0 where kept, ``finfo.min`` elsewhere."""
    keep = keep.to(torch.bool)
    out = torch.zeros(keep.shape, dtype=dtype, device=keep.device)
    out.masked_fill_(~keep, torch.finfo(dtype).min)
    return out[:, None, None, :]


class Attention(nn.Module):
    """Multi-head attention with separate bias-free q/k/v/out projections ``[D, D]``."""

    def __init__(self, dim: int, num_heads: int, bias: bool = False):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim={dim} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.q_proj = nn.Linear(dim, dim, bias=bias)
        self.k_proj = nn.Linear(dim, dim, bias=bias)
        self.v_proj = nn.Linear(dim, dim, bias=bias)
        self.out_proj = nn.Linear(dim, dim, bias=bias)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, S, D] -> [B, H, S, Dh]``."""
        b, s, _ = x.shape
        return x.view(b, s, self.num_heads, self.head_dim).transpose(1, 2)

    def keys_values(self, x: torch.Tensor,
                    packed: PackedLayer | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Projected keys and values ``[B, H, L, Dh]`` of ``x [B, L, D]`` (cross-attention keys/values
        through ``packed`` when given)."""
        if packed is not None:
            return self.split_heads(packed.cross_k(x)), self.split_heads(packed.cross_v(x))
        return self.split_heads(self.k_proj(x)), self.split_heads(self.v_proj(x))

    def attend(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               mask: torch.Tensor | None, is_causal: bool = False, q: torch.Tensor | None = None,
               out_proj: PackedLinear | None = None) -> torch.Tensor:
        """Queries from ``x [B, S, D]`` (or given projected ``q [B, S, D]``) over ``k, v [B, H, L, Dh]``
        -> ``[B, S, D]``."""
        q = self.split_heads(self.q_proj(x) if q is None else q).to(k.dtype)  # see attention_dtype
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)
        b, _, s, _ = out.shape
        out = out.transpose(1, 2).reshape(b, s, -1).to(x.dtype)
        return self.out_proj(out) if out_proj is None else out_proj(out)


class DecoderLayer(nn.Module):
    """One pre-norm layer: self-attention, optional cross-attention, feed-forward."""

    def __init__(self, dim: int, num_heads: int, ffn_dim: int, activation: str = "gelu",
                 cross_attention: bool = True, norm_eps: float = 1e-5):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation {activation!r} is not one of {ACTIVATIONS}")
        self.activation = activation
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.self_attn = Attention(dim, num_heads)
        self.norm_cross = nn.LayerNorm(dim, eps=norm_eps) if cross_attention else None
        self.cross_attn = Attention(dim, num_heads) if cross_attention else None
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.linear1 = nn.Linear(dim, ffn_dim, bias=False)
        self.linear2 = nn.Linear(ffn_dim, dim, bias=False)

    def feed_forward(self, x: torch.Tensor, packed: PackedLayer | None = None) -> torch.Tensor:
        n = self.norm2(x)
        h = self.linear1(n) if packed is None else packed.linear1(n)
        if self.activation == "gelu":
            h = F.gelu(h)
        elif self.activation == "gelu_tanh":
            h = F.gelu(h, approximate="tanh")
        else:
            h = F.relu(h)
        return x + (self.linear2(h) if packed is None else packed.linear2(h))


class PackedLayer:
    """The projections of one :class:`DecoderLayer` prepared for decoding (see
    :mod:`musicgen.modules.fast_linear`): self-attention q/k/v fused into one ``[3D, D]`` product (a
    copy of those weights); the other weights are shared with the modules (int8: quantized copies).
    Cross-attention k/v run once per generation, so they are not fused."""

    def __init__(self, layer: DecoderLayer, kernel: str):
        sa, ca = layer.self_attn, layer.cross_attn
        self.qkv = PackedLinear(fused_weight(sa.q_proj.weight, sa.k_proj.weight, sa.v_proj.weight), kernel)
        self.out = PackedLinear(sa.out_proj.weight, kernel)
        self.cross_q = self.cross_k = self.cross_v = self.cross_out = None
        if ca is not None:
            self.cross_q = PackedLinear(ca.q_proj.weight, kernel)
            self.cross_k = PackedLinear(ca.k_proj.weight, kernel)
            self.cross_v = PackedLinear(ca.v_proj.weight, kernel)
            self.cross_out = PackedLinear(ca.out_proj.weight, kernel)
        self.linear1 = PackedLinear(layer.linear1.weight, kernel)
        self.linear2 = PackedLinear(layer.linear2.weight, kernel)


@dataclass
class DecodeState:
    """Static caches for incremental decoding of a batch of ``B`` rows.

    ``self_k/self_v[i]``: ``[B, H, S_max, Dh]`` for layer ``i``; ``cross_k/cross_v[i]``: ``[B, H, L, Dh]``
    (empty without cross-attention); ``cross_mask``: additive ``[B, 1, 1, L]`` or None;
    ``key_mask``: additive ``[B, 1, 1, S_max]`` over self-attention keys (padding in a prefix) or None;
    ``length``: number of positions already in the cache.
    """

    self_k: list[torch.Tensor]
    self_v: list[torch.Tensor]
    cross_k: list[torch.Tensor] = field(default_factory=list)
    cross_v: list[torch.Tensor] = field(default_factory=list)
    cross_mask: torch.Tensor | None = None
    key_mask: torch.Tensor | None = None
    length: int = 0
    packed: list[PackedLayer] | None = None

    @property
    def capacity(self) -> int:
        return self.self_k[0].shape[2] if self.self_k else 0


class Transformer(nn.Module):
    """A stack of :class:`DecoderLayer` (no embeddings, no final norm: those live in the LM)."""

    def __init__(self, dim: int, num_heads: int, num_layers: int, ffn_dim: int, activation: str = "gelu",
                 cross_attention: bool = True, norm_eps: float = 1e-5):
        super().__init__()
        self.dim = dim
        self.num_heads = num_heads
        self.cross_attention = cross_attention
        self.layers = nn.ModuleList(
            DecoderLayer(dim, num_heads, ffn_dim, activation, cross_attention, norm_eps)
            for _ in range(num_layers))
        self._packed: tuple[tuple, list[PackedLayer]] | None = None
        self._compiled_step = None

    def compiled_step(self):
        """``torch.compile(self.step, dynamic=True)``, built once (positions and batch size are symbolic,
        so a new step position does not recompile). The first call compiles: minutes for a full-size
        model on a small CPU."""
        if self._compiled_step is None:
            self._compiled_step = torch.compile(self.step, dynamic=True)
        return self._compiled_step

    def packed_layers(self, kernel: str) -> list[PackedLayer]:
        """Per-layer :class:`PackedLayer` for ``kernel``; built once and reused until a parameter
        changes (in place or replaced: keyed by kernel, data pointers, versions, dtypes, devices)."""
        key = (kernel, *((p.data_ptr(), p._version, p.dtype, p.device) for p in self.parameters()))
        if self._packed is None or self._packed[0] != key:
            self._packed = None  # free the old copies before building new ones
            with torch.no_grad():
                self._packed = (key, [PackedLayer(layer, kernel) for layer in self.layers])
        return self._packed[1]

    def forward(self, x: torch.Tensor, cross: torch.Tensor | None = None,
                cross_keep: torch.Tensor | None = None, key_keep: torch.Tensor | None = None) -> torch.Tensor:
        """Full causal pass (training / scoring). ``x [B, S, D]``, ``cross [B, L, D]``, masks ``[B, L]``
        and ``[B, S]`` (True = attend). Returns ``[B, S, D]``."""
        state = self.start_decoding(x.shape[0], x.shape[1], cross, cross_keep, key_keep, dtype=x.dtype)
        return self.step(x, state)

    def start_decoding(self, batch_size: int, max_length: int, cross: torch.Tensor | None = None,
                       cross_keep: torch.Tensor | None = None, key_keep: torch.Tensor | None = None,
                       dtype: torch.dtype | None = None, kernel: str | None = None) -> DecodeState:
        """Allocate static caches for ``max_length`` positions and compute cross-attention K/V once.

        ``key_keep [B, P]`` (P <= max_length) marks which of the first P self-attention keys may be
        attended (a padded prefix); later positions are always attendable. ``kernel`` (one of
        :data:`musicgen.modules.fast_linear.LINEAR_KERNELS`): decode with packed weights (fused q/k/v)
        through that kernel; None: the modules' own ``nn.Linear`` (training, autograd). With a kernel,
        caches and attention run in :func:`attention_dtype` (float32 for half weights on CPU).
        """
        if self.cross_attention and cross is None:
            raise ValueError("this transformer has cross-attention: a condition tensor [B, L, D] is required")
        if not self.cross_attention and cross is not None:
            raise ValueError("this transformer has no cross-attention layers, but a condition was given")
        p = next(self.parameters())
        dtype = dtype or p.dtype
        if kernel is not None:
            dtype = attention_dtype(dtype, p.device)
        shape = (batch_size, self.num_heads, max_length, self.dim // self.num_heads)
        # zeros, not empty: static steps attend to unwritten positions under a mask, and NaN garbage
        # times a zero attention weight would still be NaN
        state = DecodeState(
            self_k=[torch.zeros(shape, dtype=dtype, device=p.device) for _ in self.layers],
            self_v=[torch.zeros(shape, dtype=dtype, device=p.device) for _ in self.layers])
        if kernel is not None:
            state.packed = self.packed_layers(kernel)
        if cross is not None:
            for i, layer in enumerate(self.layers):
                k, v = layer.cross_attn.keys_values(cross, state.packed[i] if state.packed else None)
                state.cross_k.append(k.to(dtype))
                state.cross_v.append(v.to(dtype))
            if cross_keep is not None:
                state.cross_mask = additive_key_mask(cross_keep, dtype)
        if key_keep is not None:
            keep = torch.ones(batch_size, max_length, dtype=torch.bool, device=p.device)
            keep[:, : key_keep.shape[1]] = key_keep.to(torch.bool)
            state.key_mask = additive_key_mask(keep, dtype)
        return state

    def step(self, x: torch.Tensor, state: DecodeState) -> torch.Tensor:
        """Run ``x [B, n, D]`` at positions ``state.length .. + n`` against the cache; advances the cache."""
        start, n = state.length, x.shape[1]
        end = start + n
        if end > state.capacity:
            raise ValueError(f"decode cache holds {state.capacity} positions, asked for {end}")
        mask = self._self_mask(state, start, n, state.self_k[0].dtype, x.device)
        x = self._layers(x, state, slice(start, end), end, mask, mask is None and n > 1)
        state.length = end
        return x

    def step_static(self, x: torch.Tensor, state: DecodeState, position: torch.Tensor) -> torch.Tensor:
        """One position ``x [B, 1, D]`` at ``position`` (a ``[1]`` long tensor on the device) with shapes
        that do not change from step to step, as CUDA graphs need: keys/values are written with
        ``index_copy_`` and attention runs over the whole cache under a mask of the positions after
        ``position``. Does not advance ``state.length`` (the caller does). Same values as :meth:`step`
        up to float rounding (masked keys add exact zeros, but the kernel may sum in another order).
        """
        cap = state.capacity
        dtype = state.self_k[0].dtype
        neg = torch.finfo(dtype).min
        later = torch.arange(cap, device=x.device) > position
        mask = torch.zeros(cap, dtype=dtype, device=x.device).masked_fill(later, neg).view(1, 1, 1, cap)
        if state.key_mask is not None:
            mask = torch.clamp_min(mask + state.key_mask, neg)
        return self._layers(x, state, position, None, mask, False)

    def _layers(self, x: torch.Tensor, state: DecodeState, where: slice | torch.Tensor, end: int | None,
                mask: torch.Tensor | None, is_causal: bool) -> torch.Tensor:
        """All layers; new keys/values go to cache positions ``where`` (a slice, or an index tensor
        written with ``index_copy_``); attention over the first ``end`` positions (None: all)."""
        for i, layer in enumerate(self.layers):
            sa = layer.self_attn
            h = layer.norm1(x)
            p = state.packed[i] if state.packed is not None else None
            if p is None:
                q, k, v = sa.q_proj(h), sa.k_proj(h), sa.v_proj(h)
            else:
                q, k, v = p.qkv(h).chunk(3, dim=-1)
            cache_k, cache_v = state.self_k[i], state.self_v[i]
            if isinstance(where, slice):
                cache_k[:, :, where] = sa.split_heads(k)
                cache_v[:, :, where] = sa.split_heads(v)
                cache_k, cache_v = cache_k[:, :, :end], cache_v[:, :, :end]
            else:
                cache_k.index_copy_(2, where, sa.split_heads(k).to(cache_k.dtype))
                cache_v.index_copy_(2, where, sa.split_heads(v).to(cache_v.dtype))
            out_proj = None if p is None else p.out
            x = x + sa.attend(h, cache_k, cache_v, mask, is_causal, q=q, out_proj=out_proj)
            if layer.cross_attn is not None:
                c = layer.norm_cross(x)
                x = x + layer.cross_attn.attend(
                    c, state.cross_k[i], state.cross_v[i], state.cross_mask,
                    q=None if p is None else p.cross_q(c), out_proj=None if p is None else p.cross_out)
            x = layer.feed_forward(x, p)
        return x

    @staticmethod
    def _self_mask(state: DecodeState, start: int, n: int, dtype: torch.dtype,
                   device: torch.device) -> torch.Tensor | None:
        """Additive self-attention mask ``[B|1, 1, n, start+n]`` or None when plain causal suffices."""
        end = start + n
        key_mask = state.key_mask[..., :end] if state.key_mask is not None else None
        if n == 1:
            return key_mask
        if key_mask is None and start == 0:
            return None  # SDPA's is_causal
        q_pos = torch.arange(start, end, device=device)[:, None]
        k_pos = torch.arange(end, device=device)[None, :]
        causal = torch.zeros(n, end, dtype=dtype, device=device)
        causal.masked_fill_(k_pos > q_pos, torch.finfo(dtype).min)
        causal = causal[None, None]
        return causal if key_mask is None else torch.maximum(
            causal + key_mask, torch.tensor(torch.finfo(dtype).min, dtype=dtype, device=device))
