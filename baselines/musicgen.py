"""``musicgen``: our MusicGen (``musicgen.MusicGen.from_pretrained``) as a generator.

``checkpoint`` is anything ``MusicGen.from_pretrained`` accepts (our native folder, a transformers
folder, an audiocraft folder, a hub id found in the local Hugging Face cache, or ``builtin:NAME`` for a
model shipped in ``musicgen/builtin/NAME``); a relative path
that exists next to the suite file is taken from there. It may name other
params in braces, so that an ablation ``matrix:`` over ``pattern`` and ``size`` picks a checkpoint per
cell: ``checkpoint: "models/{size}-{pattern}"``. ``pattern`` and ``size`` are recorded with every
result. Sampling defaults follow the paper (top-k 250, temperature 1, CFG 3). ``describe`` reports the
model's codebook pattern and its autoregressive steps for the run's duration (from the pattern
itself, ``musicgen.modules.patterns``), which the report's pattern table shows.

Train-or-reuse: ``recipe:`` (a shipped LM recipe name or a recipe file next to the suite) instead of
``checkpoint:`` trains the model on first use and reuses it afterwards, cached in the run's
``cache/models/<recipe digest>/``; ``overrides`` (nested recipe keys), ``pattern`` and ``size`` (a name
of ``baselines.trained_models.SIZES``) change the recipe and so the digest. See
``baselines.trained_models``.

Seeds: each prompt samples from its own torch generator seeded ``prompt_seed(seed, prompt.id)``
(``MusicGen.generate(seed=[...])`` seeds row by row), and decoding multiplies each batch row on its
own (``kernel: rowwise``, the default here; see ``musicgen.modules.fast_linear``), so a clip does not
depend on its batch, bit for bit. ``kernel`` takes the other kernels of ``LINEAR_KERNELS`` too:
``f32_gemv`` (float32 weights on an x86-64 CPU with AVX2 and a C compiler) is batch-invariant as
well and reads the weights once per step rather than once per row, so it is the fast choice for a
full-size model at batch > 1 (its clips differ in the last bits from ``rowwise``'s, so a cached
suite regenerates); ``auto`` may pick a kernel whose last bits, and so sampled tokens, depend on
the batch.
With ``melody: true`` each prompt's ``melody_path`` conditions through ``generate_with_chroma``
(prompts without one get the null melody). Token ids ``[K, T_frames]`` are kept with each clip for
the memorization metric, and ``encode_reference`` tokenises the training originals with the same
codec.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, field_validator, model_validator

from baselines._common import fingerprint_of, fit_length, prompt_seed, weights_digest
from baselines.trained_models import check_recipe, recipe_digest, resolve_recipe, trained_model
from bench.api import AudioClip, Generator, Params, Prompt

CODE_VERSION = "2"  # 2: audiocraft checkpoints follow xp.cfg (window, two-step CFG)
MELODY_RATE = 32000


class MusicGenGenerator(Generator):
    class Params(Params):
        checkpoint: str | None = Field(default=None,
                                       description="folder, file or local hub id; may use {size}, {pattern}")
        recipe: str | None = Field(default=None, description="LM recipe to train or reuse (instead of "
                                                             "checkpoint): shipped name or file")
        overrides: dict[str, Any] = Field(default_factory=dict, description="recipe keys to change")
        size: str | None = None
        pattern: str | None = None
        top_k: int = Field(default=250, ge=0)
        top_p: float = Field(default=0.0, ge=0.0, le=1.0)
        temperature: float = Field(default=1.0, ge=0.0)
        cfg_coef: float = 3.0
        two_step_cfg: bool = False
        use_sampling: bool = True
        melody: bool = False
        text_encoder: str | None = Field(default=None, description="T5 folder or cached hub id for an "
                                                                   "audiocraft checkpoint")
        kernel: str = Field(default="rowwise", description="decoding matrix kernel (LINEAR_KERNELS of "
                                                           "musicgen.modules.fast_linear)")

        @field_validator("kernel")
        @classmethod
        def _known_kernel(cls, kernel: str) -> str:
            from musicgen.modules.fast_linear import LINEAR_KERNELS

            if kernel not in LINEAR_KERNELS:
                raise ValueError(f"unknown kernel {kernel!r}; expected one of {', '.join(LINEAR_KERNELS)}")
            return kernel

        @model_validator(mode="after")
        def _one_source(self) -> MusicGenGenerator.Params:
            if (self.checkpoint is None) == (self.recipe is None):
                raise ValueError("give exactly one of checkpoint (released or saved weights) or recipe "
                                 "(train-or-reuse)")
            if self.text_encoder is not None and self.checkpoint is None:
                raise ValueError("text_encoder says where an audiocraft checkpoint's T5 is: it needs "
                                 "checkpoint, not recipe")
            if self.overrides and self.recipe is None:
                raise ValueError("overrides change a recipe: they need recipe, not checkpoint")
            return self

    _model = None
    _trained: Path | None = None

    @property
    def checkpoint(self) -> str:
        if self.params.recipe is not None:
            return f"recipe:{self.params.recipe}@{recipe_digest(self._recipe())[:16]}"
        fields = self.params.model_dump()
        try:
            return self.context.resolve(self.params.checkpoint.format(**fields))
        except (KeyError, IndexError) as e:
            raise ValueError(f"checkpoint {self.params.checkpoint!r} names an unknown parameter {e}; "
                             f"known: {', '.join(fields)}") from e

    def _recipe(self) -> dict[str, Any]:
        p = self.params
        return resolve_recipe(p.recipe, self.context.base_dir, p.overrides, pattern=p.pattern, size=p.size)

    def _folder(self) -> Path:
        if self.params.recipe is not None:
            if self._trained is None:
                if self.context.cache_dir is None:
                    raise ValueError(f"recipe {self.params.recipe!r}: training needs a run directory")
                self._trained = trained_model(self._recipe(), self.context.cache_dir, self.context.device,
                                              source=self.params.recipe, progress=sys.stderr.isatty())
            return self._trained
        from musicgen.checkpoints.files import resolve_local  # also builtin:NAME

        return resolve_local(self.checkpoint)

    def check(self) -> list[str]:
        if self.params.recipe is not None:
            try:
                return check_recipe(self._recipe(), self.params.recipe)
            except ValueError as e:
                return [str(e)]
        try:
            folder = self._folder()
        except (FileNotFoundError, ValueError) as e:
            return [str(e)]
        from musicgen.checkpoints.check import check_musicgen_folder

        return check_musicgen_folder(folder, self._text_encoder())

    def _text_encoder(self) -> str | None:
        te = self.params.text_encoder
        return None if te is None else self.context.resolve(te)

    def load(self, device: str = "cpu") -> None:
        if self._model is not None:
            return
        from musicgen import MusicGen

        self._model = MusicGen.from_pretrained(str(self._folder()), device=device,
                                               text_encoder=self._text_encoder())

    def fingerprint(self) -> str:
        import musicgen
        from musicgen.checkpoints.check import audiocraft_text_encoder

        folder = self._folder()
        t5 = audiocraft_text_encoder(folder, self._text_encoder()) if self.params.recipe is None else None
        return fingerprint_of("musicgen", CODE_VERSION, self.params, checkpoint=self.checkpoint,
                              musicgen=musicgen.__version__,
                              weights=weights_digest(folder, self.context.cache_dir),
                              codec=self._referenced_codec_digest(folder),
                              **({"text_encoder": weights_digest(t5, self.context.cache_dir)} if t5 else {}))

    def _referenced_codec_digest(self, folder: Path) -> str | None:
        """Digest of the codec a native folder references (``"codec": "builtin:codec-small"`` in
        ``musicgen.json``) instead of holding a copy: its weights are part of the model too."""
        import json

        from musicgen.checkpoints.files import resolve_local

        config = Path(folder) / "musicgen.json"
        ref = json.loads(config.read_text()).get("codec") if config.is_file() else None
        if not isinstance(ref, str):
            return None
        return weights_digest(resolve_local(ref), self.context.cache_dir)  # as the loader resolves it

    def describe(self, duration_s: float) -> dict[str, Any]:
        """The model's codebook pattern and its autoregressive steps for ``duration_s`` (one window,
        from the pattern's ``step_counts``: ``frames`` = duration x frame rate, ``steps`` = what the LM
        generates, ``delay_tail`` = the part after the last frame, ``formula`` = Table 4's count)."""
        self.load(self.context.device)
        model = self._model
        counts = model.pattern.step_counts(max(1, round(duration_s * model.frame_rate)))
        return {"pattern": counts.pattern, "num_codebooks": counts.num_codebooks,
                "channels": counts.channels, "frame_rate": float(model.frame_rate),
                "frames": counts.num_frames, "steps": counts.total, "delay_tail": counts.tail,
                "formula": counts.formula}

    def encode_reference(self, wav: np.ndarray, sample_rate: int) -> np.ndarray:
        """Reference audio ``[C, T]`` -> tokens ``[K, T_frames]`` with the model's own codec (channels
        averaged, then repeated to the codec's channel count), for token-based memorization."""
        import torch

        self.load(self.context.device)
        model = self._model
        x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))
        if x.shape[0] != model.audio_channels:
            x = x.mean(0, keepdim=True).expand(model.audio_channels, -1)
        with torch.no_grad():
            tokens = model.codec.encode(x[None].to(model.device), sample_rate=int(sample_rate))
        return tokens[0].cpu().numpy().astype(np.int64)

    def _melodies(self, prompts: Sequence[Prompt]) -> list:
        import torch

        from bench.audio import read_audio, resample

        out = []
        for p in prompts:
            if p.melody_path is None:
                out.append(None)
                continue
            wav, sr = read_audio(p.melody_path)
            out.append(torch.from_numpy(resample(wav, sr, MELODY_RATE)))
        return out

    def generate(self, prompts: Sequence[Prompt], seed: int, duration_s: float) -> list[AudioClip]:
        self.load(self.context.device)
        p = self.params
        model = self._model
        model.set_generation_params(duration_s=duration_s, top_k=p.top_k, top_p=p.top_p,
                                    temperature=p.temperature, cfg_coef=p.cfg_coef,
                                    two_step_cfg=p.two_step_cfg, use_sampling=p.use_sampling,
                                    kernel=p.kernel)
        seeds = [prompt_seed(seed, q.id) for q in prompts]
        texts = [q.text for q in prompts]
        if p.melody:
            audio, tokens = model.generate_with_chroma(texts, self._melodies(prompts), MELODY_RATE,
                                                       seed=seeds, return_tokens=True)
        else:
            audio, tokens = model.generate(texts, seed=seeds, return_tokens=True)
        audio = audio.float().cpu().numpy()
        tokens = tokens.cpu().numpy().astype(np.int64)
        sr = int(model.sample_rate)
        n = round(duration_s * sr)
        return [AudioClip(fit_length(audio[i], n), sr, q.id, seed, tokens=tokens[i],
                          meta={"checkpoint": self.checkpoint})
                for i, q in enumerate(prompts)]
