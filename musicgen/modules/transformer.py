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

    def keys_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Projected keys and values ``[B, H, L, Dh]`` of ``x [B, L, D]``."""
        return self.split_heads(self.k_proj(x)), self.split_heads(self.v_proj(x))

    def attend(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               mask: torch.Tensor | None, is_causal: bool = False) -> torch.Tensor:
        """Queries from ``x [B, S, D]`` over ``k, v [B, H, L, Dh]`` -> ``[B, S, D]``."""
        q = self.split_heads(self.q_proj(x))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)
        b, _, s, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, s, -1))


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

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.linear1(self.norm2(x))
        if self.activation == "gelu":
            h = F.gelu(h)
        elif self.activation == "gelu_tanh":
            h = F.gelu(h, approximate="tanh")
        else:
            h = F.relu(h)
        return x + self.linear2(h)


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

    def forward(self, x: torch.Tensor, cross: torch.Tensor | None = None,
                cross_keep: torch.Tensor | None = None, key_keep: torch.Tensor | None = None) -> torch.Tensor:
        """Full causal pass (training / scoring). ``x [B, S, D]``, ``cross [B, L, D]``, masks ``[B, L]``
        and ``[B, S]`` (True = attend). Returns ``[B, S, D]``."""
        state = self.start_decoding(x.shape[0], x.shape[1], cross, cross_keep, key_keep, dtype=x.dtype)
        return self.step(x, state)

    def start_decoding(self, batch_size: int, max_length: int, cross: torch.Tensor | None = None,
                       cross_keep: torch.Tensor | None = None, key_keep: torch.Tensor | None = None,
                       dtype: torch.dtype | None = None) -> DecodeState:
        """Allocate static caches for ``max_length`` positions and compute cross-attention K/V once.

        ``key_keep [B, P]`` (P <= max_length) marks which of the first P self-attention keys may be
        attended (a padded prefix); later positions are always attendable.
        """
        if self.cross_attention and cross is None:
            raise ValueError("this transformer has cross-attention: a condition tensor [B, L, D] is required")
        if not self.cross_attention and cross is not None:
            raise ValueError("this transformer has no cross-attention layers, but a condition was given")
        p = next(self.parameters())
        dtype = dtype or p.dtype
        shape = (batch_size, self.num_heads, max_length, self.dim // self.num_heads)
        state = DecodeState(
            self_k=[torch.empty(shape, dtype=dtype, device=p.device) for _ in self.layers],
            self_v=[torch.empty(shape, dtype=dtype, device=p.device) for _ in self.layers])
        if cross is not None:
            for layer in self.layers:
                k, v = layer.cross_attn.keys_values(cross)
                state.cross_k.append(k)
                state.cross_v.append(v)
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
        mask = self._self_mask(state, start, n, x.dtype, x.device)
        is_causal = mask is None and n > 1
        for i, layer in enumerate(self.layers):
            h = layer.norm1(x)
            k, v = layer.self_attn.keys_values(h)
            state.self_k[i][:, :, start:end] = k
            state.self_v[i][:, :, start:end] = v
            x = x + layer.self_attn.attend(
                h, state.self_k[i][:, :, :end], state.self_v[i][:, :, :end], mask, is_causal)
            if layer.cross_attn is not None:
                x = x + layer.cross_attn.attend(
                    layer.norm_cross(x), state.cross_k[i], state.cross_v[i], state.cross_mask)
            x = layer.feed_forward(x)
        state.length = end
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
