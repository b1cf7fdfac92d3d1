"""Autoregressive generation with an :class:`~musicgen.models.lm.LMModel` following a codebook pattern.

The pattern (``musicgen.modules.patterns``) lays the codes ``[B, K, T]`` out as a sequence ``[B, K, S]``
with the special token ``card`` wherever nothing is placed. The LM input at step ``s`` is that sequence
shifted right by one (the special token at step 0) and the LM predicts column ``s``. Everything the
pattern decides is computed once before the loop: which ``(k, s)`` are sampled, which hold prompt
codes (kept verbatim), which stay special.

Decode loop: one static KV cache for all steps, cross-attention keys/values computed once,
conditional and null-conditioned rows in one batch for classifier-free guidance (rows ``[cond; null]``,
logits ``null + (cond - null) * cfg_coef``, transformers' and audiocraft's formula), one fused sampling
call over all K codebooks per step. ``two_step_cfg=True`` runs the two halves as separate forwards
with their own caches instead. The weights are packed for decoding (fused q/k/v and heads, a choice of
matrix kernel: ``kernel=``, see :mod:`musicgen.modules.fast_linear`); ``compile=True`` runs the
transformer step through ``torch.compile``.

Devices and dtypes: everything follows the LM's parameters, so ``lm.to(torch.bfloat16)`` (CPU or CUDA)
or ``lm.to("cuda", torch.float16)`` decode in that dtype (sampling is done in float32).
``static_shapes=True`` decodes with a step whose shapes never change (tested on CPU: same tokens);
``cuda_graph=True`` captures that step once in a CUDA graph and replays it. The CUDA paths (fp16,
CUDA graphs) are written device-generically but have NOT been run on a GPU in this project so far.

Reproducibility: each row samples from its own ``torch.Generator`` (``seeds=[...]`` or
``generators=[...]``), so a clip depends on its own seed, not on its batch neighbours. Bit for bit
that holds with ``kernel="rowwise"`` (each row's products computed alone) and with the compiled CPU
kernels ``"f32_gemv"`` and ``"bf16_gemv"`` (what ``"auto"`` runs on an AVX2 CPU with a C compiler up
to 16 / 64 rows); with ``"weight_left"`` and ``"gemm"`` the BLAS picks its blocking by the number of
rows, so at full model size a row's logits can differ in the last bits between batch sizes, and a
sampled token can (rarely) flip.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch

from musicgen.models.sampling import cfg_logits, make_generators, sample_next
from musicgen.modules.fast_linear import LINEAR_KERNELS

if TYPE_CHECKING:
    from musicgen.models.lm import LMModel


def _null_like(x: torch.Tensor | None, mask: torch.Tensor | None) -> tuple[Any, Any]:
    if x is None:
        return None, None
    return torch.zeros_like(x), (torch.zeros_like(mask) if mask is not None else None)


def _plan(pattern: Any, num_frames: int, prompt: torch.Tensor | None, batch: int, special: int,
          device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Initial sequence ``[B, K, S]`` (prompt codes placed, special elsewhere) and ``fill [S, K]``:
    the positions to sample."""
    k = pattern.num_codebooks
    codes = torch.zeros(batch, k, num_frames, dtype=torch.long, device=device)
    known = torch.zeros(1, k, num_frames, dtype=torch.long, device=device)
    if prompt is not None:
        codes[..., : prompt.shape[-1]] = prompt
        known[..., : prompt.shape[-1]] = 1
    seq, valid = pattern.build(codes, special)
    known_seq, _ = pattern.build(known, 0)
    valid = valid.to(device=device, dtype=torch.bool)
    known_pos = valid & known_seq[0].bool()
    seq = torch.where(valid & ~known_pos, torch.full_like(seq, special), seq)
    return seq, (valid & ~known_pos).T.contiguous()


@torch.inference_mode()
def generate(lm: LMModel, pattern: Any, num_frames: int, *,
             condition: torch.Tensor | None = None, condition_mask: torch.Tensor | None = None,
             null_condition: torch.Tensor | None = None, null_condition_mask: torch.Tensor | None = None,
             prefix: torch.Tensor | None = None, prefix_mask: torch.Tensor | None = None,
             null_prefix: torch.Tensor | None = None, null_prefix_mask: torch.Tensor | None = None,
             batch_size: int | None = None, prompt: torch.Tensor | None = None,
             cfg_coef: float = 3.0, two_step_cfg: bool = False,
             use_sampling: bool = True, temperature: float = 1.0, top_k: int = 250, top_p: float = 0.0,
             seeds: Sequence[int] | None = None, generators: Sequence[torch.Generator] | None = None,
             callback: Callable[[int, int], None] | None = None, kernel: str = "auto",
             compile: bool = False, static_shapes: bool = False, cuda_graph: bool = False) -> torch.Tensor:
    """Generate codes ``[B, K, num_frames]`` (long, values in ``0..card-1``).

    Args:
        pattern: a codebook pattern with ``num_codebooks``, ``build`` and ``revert``.
        condition, condition_mask: ``[B, L, cond_dim]`` and ``[B, L]`` for cross-attention LMs.
        null_condition, null_condition_mask: the null condition for guidance; default zeros (and a zero
            mask when ``condition_mask`` is given), i.e. transformers' null condition.
        prefix, prefix_mask, null_prefix, null_prefix_mask: ``[B, P, dim]`` / ``[B, P]`` prepended
            inputs (MusicGen-Melody); the null prefix defaults to zeros likewise.
        batch_size: needed only when neither condition, prefix nor prompt gives ``B``.
        prompt: codes ``[B, K, T_p]`` to continue (kept verbatim in the output), ``T_p <= num_frames``.
        cfg_coef: guidance coefficient; 1.0 switches guidance off (no null rows are run).
        seeds / generators: one per row, for per-row reproducible sampling.
        callback: ``callback(done_steps, total_steps)`` after every generated step.
        kernel: how the weight products run, see :mod:`musicgen.modules.fast_linear`: ``"auto"``
            (default: the fastest exact kernel for the device, dtype and row count), ``"gemm"``
            (bit-identical to transformers' MusicGen), ``"rowwise"`` (one batch row at a time: a clip
            never depends on its batch neighbours, bit for bit), ``"weight_left"``, ``"f32_gemv"`` /
            ``"bf16_gemv"`` (fp32 / bf16 weights on an AVX2 CPU, compiled on first use;
            batch-invariant), ``"int8"`` (int8
            weights, approximate, CPU). All fuse q/k/v and the K heads.
        compile: run the transformer step through ``torch.compile`` (inductor). Same tokens as eager
            on the tiny test models; the first generation pays the compilation (minutes on a small CPU).
        static_shapes: decode steps with shapes that never change (attention over the whole cache
            under a position mask, see ``Transformer.step_static``): what CUDA graphs need. Slower on
            CPU (it attends to the whole cache every step); same tokens up to float rounding.
        cuda_graph: capture the static step once in a CUDA graph and replay it every step (CUDA
            only; implies ``static_shapes``). UNTESTED on a GPU so far (no GPU in this project's CI).
    """
    static = static_shapes or cuda_graph
    _check_options(lm, pattern, num_frames, kernel, two_step_cfg, compile, static, cuda_graph)
    b = _batch_size(condition, prefix, prompt, batch_size)
    device = lm.positions.device
    prompt = _check_prompt(lm, prompt, num_frames, device)
    lm.check_prefix(prefix, b)
    num_prefix = 0 if prefix is None else prefix.shape[1]
    num_steps = pattern.num_steps(num_frames)
    if num_prefix + num_steps > lm.config.max_positions:
        raise ValueError(f"{num_frames} frames take {num_steps} steps (+{num_prefix} prefix positions), more "
                         f"than the model's max_positions={lm.config.max_positions}")
    generators = _row_generators(seeds, generators, b, device)

    special = lm.config.card
    seq, fill = _plan(pattern, num_frames, prompt, b, special, device)
    active = fill.any(dim=1).nonzero()
    if len(active) == 0:
        return pattern.revert(seq)
    first = int(active[0])

    guided = cfg_coef != 1.0
    conds = _condition_sets(guided, two_step_cfg, (condition, condition_mask, prefix, prefix_mask),
                            (null_condition, null_condition_mask, null_prefix, null_prefix_mask))
    reps = 2 if guided and not two_step_cfg else 1  # rows [cond; null] in one batch
    coef = cfg_coef if guided else None
    states = [lm.start_state(b * reps, (0 if c[2] is None else c[2].shape[1]) + num_steps, c[0], c[1], c[3],
                             kernel=kernel) for c in conds]
    logits_of = _Forward(lm, states, conds, b, reps, num_prefix, kernel, coef, compile)
    next_step = _StaticStep(lm, states[0], b, reps, kernel, coef, cuda_graph) if static else logits_of

    start_tok = torch.full((b, pattern.num_codebooks, 1), special, dtype=torch.long, device=device)
    logits = logits_of(torch.cat([start_tok, seq[..., :first]], dim=-1), num_prefix, with_prefix=True)
    for s in range(first, num_steps):
        if s > first:
            logits = next_step(seq[..., s - 1: s], num_prefix + s)
        nxt = sample_next(logits, use_sampling=use_sampling, temperature=temperature, top_k=top_k,
                          top_p=top_p, generators=generators)
        seq[..., s] = torch.where(fill[s], nxt, seq[..., s])
        if callback is not None:
            callback(s - first + 1, num_steps - first)
    return pattern.revert(seq)


def _check_options(lm: LMModel, pattern: Any, num_frames: int, kernel: str, two_step_cfg: bool,
                   compile: bool, static: bool, cuda_graph: bool) -> None:
    k = lm.config.num_codebooks
    if getattr(pattern, "num_codebooks", k) != k:
        raise ValueError(f"the pattern has {pattern.num_codebooks} codebooks but the LM has {k}")
    if cuda_graph and lm.positions.device.type != "cuda":
        raise ValueError(f"cuda_graph=True needs the LM on a CUDA device, it is on {lm.positions.device}; "
                         "static_shapes=True runs the same static step without a graph")
    if static and (two_step_cfg or compile):
        raise ValueError("static_shapes / cuda_graph work with batched CFG and without compile=True; "
                         f"got two_step_cfg={two_step_cfg}, compile={compile}")
    if kernel not in LINEAR_KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; expected one of {LINEAR_KERNELS}")
    if int(num_frames) <= 0:
        raise ValueError(f"num_frames must be positive, got {num_frames}")


def _batch_size(condition: torch.Tensor | None, prefix: torch.Tensor | None, prompt: torch.Tensor | None,
                batch_size: int | None) -> int:
    """``B``, the one batch size the condition, prefix, prompt and ``batch_size`` agree on."""
    candidates = [t.shape[0] for t in (condition, prefix, prompt) if t is not None]
    if batch_size is not None:
        candidates.append(int(batch_size))
    if not candidates:
        raise ValueError("cannot tell the batch size: pass condition, prefix, prompt or batch_size")
    if len(set(candidates)) != 1:
        raise ValueError(f"batch sizes disagree between condition / prefix / prompt / batch_size: "
                         f"{candidates}")
    return candidates[0]


def _check_prompt(lm: LMModel, prompt: torch.Tensor | None, num_frames: int,
                  device: torch.device) -> torch.Tensor | None:
    if prompt is None:
        return None
    lm.check_tokens(prompt, "prompt")
    if prompt.numel() and int(prompt.max()) >= lm.config.card:
        raise ValueError(f"prompt codes must be < card={lm.config.card}, got {int(prompt.max())}")
    if prompt.shape[-1] > num_frames:
        raise ValueError(f"the prompt has {prompt.shape[-1]} frames, more than num_frames={num_frames}")
    return prompt.to(device)


def _row_generators(seeds: Sequence[int] | None, generators: Sequence[torch.Generator] | None, b: int,
                    device: torch.device) -> Sequence[torch.Generator] | None:
    if generators is None and seeds is not None:
        if len(seeds) != b:
            raise ValueError(f"got {len(seeds)} seeds for a batch of {b}")
        generators = make_generators([int(s) for s in seeds], device)
    if generators is not None and len(generators) != b:
        raise ValueError(f"got {len(generators)} generators for a batch of {b}")
    return generators


Conditions = tuple[Any, Any, Any, Any]  # (condition, condition_mask, prefix, prefix_mask)


def _condition_sets(guided: bool, two_step_cfg: bool, cond: Conditions, null: Conditions) -> list[Conditions]:
    """The condition sets the LM runs on: ``[cond]`` without guidance; ``[cond, null]`` (two forwards,
    each with its own cache) for ``two_step_cfg``; else one set of stacked rows ``[cond; null]``.
    A null part left out defaults to zeros (and a zero mask where the condition has a mask)."""
    if not guided:
        return [cond]
    c, cm, p, pm = cond
    nc, ncm, np_, npm = null
    if nc is None:
        nc, ncm = _null_like(c, cm)
    if np_ is None:
        np_, npm = _null_like(p, pm)
    if two_step_cfg:
        return [cond, (nc, ncm, np_, npm)]
    return [(*_stack_rows(c, cm, nc, ncm, "condition"), *_stack_rows(p, pm, np_, npm, "prefix"))]


class _Forward:
    """Last-position logits ``[B, K, card]`` (after CFG) for input ``tokens [B, K, n]`` at ``start``,
    run through every condition set's cache (``static_shapes`` uses ``_StaticStep`` instead)."""

    def __init__(self, lm: LMModel, states: list[Any], conds: list[Conditions], batch: int, reps: int,
                 num_prefix: int, kernel: str, cfg_coef: float | None, compile: bool) -> None:
        self.lm, self.states, self.conds, self.batch, self.reps = lm, states, conds, batch, reps
        self.num_prefix, self.kernel, self.cfg_coef = num_prefix, kernel, cfg_coef
        self.step = lm.transformer.compiled_step() if compile else lm.transformer.step

    def __call__(self, tokens: torch.Tensor, start: int, with_prefix: bool = False) -> torch.Tensor:
        lm, outs = self.lm, []
        for state, c in zip(self.states, self.conds):
            # each set's tokens sit after its own prefix (two_step_cfg: the null prefix may be shorter)
            own = 0 if c[2] is None else c[2].shape[1]
            x = lm.embed(tokens.repeat(self.reps, 1, 1) if self.reps > 1 else tokens,
                         start - self.num_prefix + own)
            if with_prefix and c[2] is not None:
                x = torch.cat([c[2].to(x.dtype) + lm.positions[:own], x], dim=1)
            h = self.step(x, state)
            outs.append(lm.heads(h[:, -1:], self.kernel)[:, :, 0])
        logits = torch.cat(outs) if len(outs) > 1 else outs[0]
        if self.cfg_coef is not None:
            cond_logits, null_logits = logits.split(self.batch)
            logits = cfg_logits(cond_logits, null_logits, self.cfg_coef)
        return logits


class _StaticStep:
    """One-position decode step with fixed input/output buffers (``static_shapes``); with ``graph``
    the step is captured once in a ``torch.cuda.CUDAGraph`` and replayed (UNTESTED on a GPU so far)."""

    def __init__(self, lm: LMModel, state: Any, batch: int, reps: int, kernel: str, cfg_coef: float | None,
                 graph: bool):
        device = lm.positions.device
        self.lm, self.state, self.batch, self.reps = lm, state, batch, reps
        self.kernel, self.cfg_coef = kernel, cfg_coef
        self.tokens = torch.zeros(batch, lm.config.num_codebooks, 1, dtype=torch.long, device=device)
        self.position = torch.zeros(1, dtype=torch.long, device=device)
        self.use_graph = graph
        self.graph: Any = None
        self.logits: torch.Tensor | None = None

    def compute(self) -> torch.Tensor:
        lm = self.lm
        tokens = self.tokens.repeat(self.reps, 1, 1) if self.reps > 1 else self.tokens
        h = lm.transformer.step_static(lm.embed(tokens, self.position), self.state, self.position)
        logits = lm.heads(h, self.kernel)[:, :, 0]
        if self.cfg_coef is not None:
            cond_logits, null_logits = logits.split(self.batch)
            logits = cfg_logits(cond_logits, null_logits, self.cfg_coef)
        return logits

    def __call__(self, tokens: torch.Tensor, position: int) -> torch.Tensor:
        """Logits ``[B, K, card]`` for ``tokens [B, K, 1]`` at ``position`` (a view into a buffer that
        the next call overwrites)."""
        self.tokens.copy_(tokens)
        self.position.fill_(position)
        if not self.use_graph:
            out = self.compute()
        else:
            if self.graph is None:  # warm up on a side stream, then capture (the warm-up step writes the
                # same keys/values at the same position as the replay below, so it is harmless)
                stream = torch.cuda.Stream()
                stream.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(stream):
                    self.compute()
                torch.cuda.current_stream().wait_stream(stream)
                self.graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(self.graph):
                    self.logits = self.compute()
            self.graph.replay()
            out = self.logits
        self.state.length = position + 1
        return out


def _stack_rows(x: torch.Tensor | None, mask: torch.Tensor | None, null: torch.Tensor | None,
                null_mask: torch.Tensor | None, what: str) -> tuple[Any, Any]:
    """Rows ``[x; null]`` (``[2B, L, D]``) and their masks. A shorter one (e.g. a length-1 null
    condition) is padded with masked zeros, which needs masks on both sides."""
    if x is None and null is None:
        return None, None
    if x is None or null is None or (mask is None) != (null_mask is None):
        raise ValueError(f"the {what} and the null {what} must both be given or both be absent, "
                         "and both with masks or both without")
    length = max(x.shape[1], null.shape[1])
    if x.shape[1] != null.shape[1]:
        if mask is None:
            raise ValueError(f"the {what} has length {x.shape[1]} and the null {what} {null.shape[1]}: "
                             "give masks (padding is masked) or use two_step_cfg=True")
        def pad(t: torch.Tensor) -> torch.Tensor:  # zeros after the last of dim 1
            return torch.nn.functional.pad(t, (0, 0) * (t.dim() - 2) + (0, length - t.shape[1]))

        x, null, mask, null_mask = pad(x), pad(null), pad(mask), pad(null_mask)
    rows = torch.cat([x, null.to(x.dtype)], dim=0)
    masks = None if mask is None else torch.cat([mask.to(torch.long), null_mask.to(torch.long)], dim=0)
    return rows, masks
