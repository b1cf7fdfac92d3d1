"""MusicGen's language model over K parallel codebook streams.

``LMModel``: the sum of K codebook embeddings (vocabulary ``card + 1``: the extra id ``card`` is the
special token placed where a pattern puts nothing, and at the start of the input), plus sinusoidal
positions (:func:`musicgen.modules.transformer.sinusoidal_positions`), a pre-norm transformer decoder,
a final LayerNorm and K bias-free linear heads ``dim -> card``.

Conditioning, decided here and used by the pipeline:

* ``condition_proj`` (a ``Linear(cond_dim, dim)`` with bias, or absent when ``cond_dim`` is None) lives
  in the LM. It is the text condition projection of both released formats: transformers'
  ``enc_to_dec_proj`` and audiocraft's ``condition_provider.conditioners.description.output_proj``.
  ``forward``/``generate`` take the *unprojected* condition ``[B, L, cond_dim]`` (e.g. T5 hidden states)
  and an optional mask ``[B, L]``; the projected condition is zeroed where the mask is 0 (both formats do
  this).
* ``condition_mask`` also masks cross-attention keys (transformers' semantics). Passing
  ``condition_mask=None`` attends to every condition position (audiocraft's semantics: it never masks
  the cross-attention; padded positions are zero vectors there). The null condition for classifier-free
  guidance is zeros with a zero mask (transformers) or zeros without a mask (audiocraft): both give a
  cross-attention output of exactly zero.
* ``prefix [B, P, dim]`` (already projected, e.g. melody chroma + text for MusicGen-Melody) is prepended
  to the token embeddings; positions count from the start of the prefix; ``prefix_mask [B, P]`` marks
  attendable prefix positions. Logits are returned for the token positions only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from musicgen.modules.fast_linear import PackedLinear, fused_weight
from musicgen.modules.transformer import ACTIVATIONS, DecodeState, Transformer, sinusoidal_positions


@dataclass
class LMConfig:
    """Sizes of an :class:`LMModel`. ``ffn_dim`` defaults to ``4 * dim``."""

    dim: int = 1024
    num_heads: int = 16
    num_layers: int = 24
    card: int = 2048
    num_codebooks: int = 4
    ffn_dim: int | None = None
    activation: str = "gelu"
    cross_attention: bool = True
    cond_dim: int | None = 768
    max_positions: int = 2048
    norm_eps: float = 1e-5
    embed_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.ffn_dim is None:
            self.ffn_dim = 4 * self.dim
        for name in ("dim", "num_heads", "num_layers", "card", "num_codebooks", "ffn_dim", "max_positions"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"LMConfig.{name} must be positive, got {getattr(self, name)}")
        if self.dim % self.num_heads:
            raise ValueError(f"LMConfig.dim={self.dim} is not divisible by num_heads={self.num_heads}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"LMConfig.activation={self.activation!r}; expected one of {ACTIVATIONS}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> LMConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown LMConfig fields {unknown}; known: {sorted(known)}")
        return cls(**data)


PRESETS: dict[str, dict] = {
    "small": dict(dim=1024, num_heads=16, num_layers=24),
    "medium": dict(dim=1536, num_heads=24, num_layers=48),
    "large": dict(dim=2048, num_heads=32, num_layers=48),
    "tiny": dict(dim=32, num_heads=4, num_layers=2, card=16, cond_dim=24, max_positions=256),
    "tiny_melody": dict(dim=32, num_heads=4, num_layers=2, card=16, cond_dim=None, cross_attention=False,
                        max_positions=256),
}


def lm_config(preset: str, **overrides) -> LMConfig:
    """The :class:`LMConfig` of a named preset (small, medium, large: the paper's sizes; tiny ones)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown LM preset {preset!r}; known: {sorted(PRESETS)}")
    return LMConfig(**{**PRESETS[preset], **overrides})


class LMModel(nn.Module):
    """The MusicGen LM. See the module docstring for the conditioning contract."""

    def __init__(self, config: LMConfig):
        super().__init__()
        self.config = config
        c = config
        self.emb = nn.ModuleList(nn.Embedding(c.card + 1, c.dim) for _ in range(c.num_codebooks))
        self.condition_proj = nn.Linear(c.cond_dim, c.dim) if c.cond_dim is not None else None
        self.transformer = Transformer(c.dim, c.num_heads, c.num_layers, c.ffn_dim, c.activation,
                                       c.cross_attention, c.norm_eps)
        self.out_norm = nn.LayerNorm(c.dim, eps=c.norm_eps)
        self.linears = nn.ModuleList(nn.Linear(c.dim, c.card, bias=False) for _ in range(c.num_codebooks))
        self.register_buffer("positions", sinusoidal_positions(c.max_positions, c.dim), persistent=False)
        self._packed_heads: tuple[tuple, PackedLinear] | None = None

    @property
    def special_token(self) -> int:
        return self.config.card

    @property
    def num_codebooks(self) -> int:
        return self.config.num_codebooks

    # --- pieces shared by forward and generation -------------------------------------------------
    def project_condition(self, condition: torch.Tensor | None,
                          condition_mask: torch.Tensor | None) -> torch.Tensor | None:
        """``[B, L, cond_dim] -> [B, L, dim]`` through ``condition_proj``, zeroed where the mask is 0."""
        if condition is None:
            if self.config.cross_attention:
                raise ValueError("this LM cross-attends to a condition: pass condition [B, L, cond_dim] "
                                 "(zeros with a zero mask for the null condition)")
            return None
        if not self.config.cross_attention:
            raise ValueError("this LM has no cross-attention (it takes its condition as a prefix); "
                             "pass prefix=..., not condition=...")
        want = self.config.cond_dim if self.config.cond_dim is not None else self.config.dim
        if condition.dim() != 3 or condition.shape[-1] != want:
            raise ValueError(f"condition must be [B, L, {want}], got {tuple(condition.shape)}")
        w = self.transformer.layers[0].norm1.weight
        x = condition.to(dtype=w.dtype, device=w.device)
        if self.condition_proj is not None:
            x = self.condition_proj(x)
        if condition_mask is not None:
            if condition_mask.shape != condition.shape[:2]:
                raise ValueError(f"condition_mask must be [B, L] = {tuple(condition.shape[:2])}, "
                                 f"got {tuple(condition_mask.shape)}")
            x = x * condition_mask.to(x.dtype)[..., None]
        return x

    def embed(self, tokens: torch.Tensor, start: int | torch.Tensor) -> torch.Tensor:
        """``tokens [B, K, n]`` at positions ``start..start+n`` -> ``[B, n, dim]`` (embeddings+positions).
        ``start`` may be a ``[n]`` long tensor of positions (static shapes for CUDA graphs)."""
        x = self.emb[0](tokens[:, 0])
        for k in range(1, len(self.emb)):
            x = x + self.emb[k](tokens[:, k])
        if self.config.embed_scale != 1.0:
            x = x * self.config.embed_scale
        if isinstance(start, torch.Tensor):
            return x + self.positions.index_select(0, start)
        return x + self.positions[start: start + tokens.shape[-1]]

    def heads(self, x: torch.Tensor, kernel: str | None = None) -> torch.Tensor:
        """``[B, n, dim] -> [B, K, n, card]`` (final norm then one head per codebook). ``kernel``: the K
        heads as one fused product through that :mod:`~musicgen.modules.fast_linear` kernel."""
        x = self.out_norm(x)
        if kernel is None:
            return torch.stack([lin(x) for lin in self.linears], dim=1)
        b, n, _ = x.shape
        logits = self.packed_heads(kernel)(x)  # [B, n, K * card]
        return logits.view(b, n, self.config.num_codebooks, self.config.card).transpose(1, 2)

    def packed_heads(self, kernel: str) -> PackedLinear:
        """The K heads fused into one ``[K * card, dim]`` product, cached until a head weight changes."""
        key = (kernel, *((w.data_ptr(), w._version, w.dtype) for w in (lin.weight for lin in self.linears)))
        if self._packed_heads is None or self._packed_heads[0] != key:
            self._packed_heads = None
            with torch.no_grad():
                self._packed_heads = (key, PackedLinear(fused_weight(*(lin.weight for lin in self.linears)),
                                                        kernel))
        return self._packed_heads[1]

    def check_tokens(self, tokens: torch.Tensor, what: str = "tokens") -> None:
        c = self.config
        if tokens.dim() != 3 or tokens.shape[1] != c.num_codebooks:
            raise ValueError(f"{what} must be [B, {c.num_codebooks}, S], got {tuple(tokens.shape)}")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) > c.card):
            raise ValueError(f"{what} hold ids in [{int(tokens.min())}, {int(tokens.max())}]; "
                             f"expected 0..{c.card} "
                             f"(card={c.card} codes plus the special token {c.card})")

    def check_prefix(self, prefix: torch.Tensor | None, batch: int) -> None:
        if prefix is not None and (prefix.dim() != 3 or prefix.shape[0] != batch
                                   or prefix.shape[-1] != self.config.dim):
            raise ValueError(f"prefix must be [{batch}, P, {self.config.dim}], got {tuple(prefix.shape)}")

    def start_state(self, batch: int, max_length: int, condition: torch.Tensor | None,
                    condition_mask: torch.Tensor | None, prefix_mask: torch.Tensor | None,
                    kernel: str | None = None) -> DecodeState:
        if max_length > self.config.max_positions:
            raise ValueError(f"{max_length} positions exceed the model's max_positions="
                             f"{self.config.max_positions}")
        cross = self.project_condition(condition, condition_mask)
        return self.transformer.start_decoding(batch, max_length, cross, condition_mask, prefix_mask,
                                               kernel=kernel)

    # --- public API ---------------------------------------------------------------------------------
    def forward(self, tokens: torch.Tensor, condition: torch.Tensor | None = None,
                condition_mask: torch.Tensor | None = None, prefix: torch.Tensor | None = None,
                prefix_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``[B, K, S, card]`` for input ``tokens [B, K, S]`` (all causal, teacher forcing).

        ``condition [B, L, cond_dim]`` / ``condition_mask [B, L]`` for cross-attention; ``prefix
        [B, P, dim]`` / ``prefix_mask [B, P]`` prepended to the input. Position ``s`` of the output
        predicts the token that follows input position ``s``.
        """
        self.check_tokens(tokens)
        self.check_prefix(prefix, tokens.shape[0])
        p = 0 if prefix is None else prefix.shape[1]
        s = tokens.shape[-1]
        state = self.start_state(tokens.shape[0], p + s, condition, condition_mask, prefix_mask)
        x = self.embed(tokens, p)
        if prefix is not None:
            x = torch.cat([prefix.to(x.dtype) + self.positions[:p], x], dim=1)
        out = self.transformer.step(x, state)
        return self.heads(out[:, p:])

    def generate(self, *args, **kwargs) -> torch.Tensor:
        """Generate codes ``[B, K, T]``; see :func:`musicgen.models.generation.generate`."""
        from musicgen.models.generation import generate

        return generate(self, *args, **kwargs)
