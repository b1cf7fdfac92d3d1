"""``hf-musicgen``: transformers' ``MusicgenForConditionalGeneration`` from a local folder.

The folder is what ``save_pretrained`` writes (config.json with text_encoder / audio_encoder / decoder
sub-configs, model.safetensors) plus the tokenizer files; nothing is downloaded (a hub id is looked up
in the local Hugging Face cache only). The class follows ``config.json``'s ``model_type``:
``musicgen`` -> ``MusicgenForConditionalGeneration``; ``musicgen_melody`` (facebook/musicgen-melody)
-> ``MusicgenMelodyForConditionalGeneration``, which prepends the melody's chroma instead of
cross-attending (loading it into the text-only class would leave cross-attention weights random).
For a melody model a prompt's ``melody_path`` (resampled to 32 kHz, channels averaged) is turned
into one-hot chroma ``[B, frames, 12]`` by ``musicgen.modules.chroma.ChromaExtractor``, the recipe of
transformers' ``MusicgenMelodyFeatureExtractor`` (which needs torchaudio, not a dependency here);
prompts without one are text-only (transformers gives them no melody prefix). Any other ``model_type``
is refused. Sampling follows the paper's protocol by default (top-k 250,
temperature 1, classifier-free guidance 3).

Each prompt is generated alone with the torch seed ``prompt_seed(seed, prompt.id)`` so that a clip
does not depend on the batch it was in (``batch_invariant: false`` batches prompts under one seed:
faster, but then a clip depends on its batch mates). Token ids are not returned (transformers'
``generate`` gives audio only), so token-based memorization does not apply to this generator.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import Field

from baselines._common import fingerprint_of, fit_length, missing_packages, prompt_seed, weights_digest
from bench.api import AudioClip, Generator, Params, Prompt

CODE_VERSION = "2"  # 2: MusicGen-Melody folders load with the melody class
MELODY_RATE = 32000
MODEL_CLASSES = {"musicgen": "MusicgenForConditionalGeneration",
                 "musicgen_melody": "MusicgenMelodyForConditionalGeneration"}


class HFMusicGen(Generator):
    class Params(Params):
        model: str = Field(description="local save_pretrained folder, or a hub id in the local HF cache")
        top_k: int = Field(default=250, ge=0)
        temperature: float = Field(default=1.0, gt=0)
        guidance_scale: float = Field(default=3.0, ge=1.0)
        do_sample: bool = True
        batch_invariant: bool = True

    _model = None
    _tokenizer = None
    _device = "cpu"
    _melody = False

    def _folder(self) -> Path:
        from musicgen.checkpoints.files import resolve_local

        return resolve_local(self.context.resolve(self.params.model))

    def check(self) -> list[str]:
        missing = missing_packages("transformers")
        if missing:
            return [f"package(s) {', '.join(missing)} not installed (pip install transformers)"]
        try:
            folder = self._folder()
        except FileNotFoundError as e:
            return [str(e)]
        problems = []
        if not (folder / "config.json").is_file():
            problems.append(f"{folder / 'config.json'} is missing (expected a save_pretrained folder of "
                            f"MusicgenForConditionalGeneration)")
        else:
            try:
                self._model_type(folder)
            except ValueError as e:
                problems.append(str(e))
        if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
            problems.append(f"no weights (*.safetensors) in {folder}")
        tokenizer_files = ("tokenizer.json", "spiece.model", "tokenizer_config.json")
        if not any((folder / n).is_file() for n in tokenizer_files):
            problems.append(f"no tokenizer files in {folder} (tokenizer.json or spiece.model)")
        return problems

    @staticmethod
    def _model_type(folder: Path) -> str:
        """``config.json``'s ``model_type`` when it is a MusicGen one, else a clear error."""
        import json

        path = folder / "config.json"
        try:
            kind = json.loads(path.read_text()).get("model_type")
        except (json.JSONDecodeError, AttributeError) as e:
            raise ValueError(f"{path}: not a transformers config ({e})") from None
        if kind not in MODEL_CLASSES:
            raise ValueError(f"{path}: model_type {kind!r} is not a MusicGen checkpoint (expected one of "
                             f"{sorted(MODEL_CLASSES)})")
        return kind

    def load(self, device: str = "cpu") -> None:
        if self._model is not None:
            return
        import transformers
        from transformers import AutoTokenizer

        folder = self._folder()
        self._melody = self._model_type(folder) == "musicgen_melody"
        cls = getattr(transformers, MODEL_CLASSES["musicgen_melody" if self._melody else "musicgen"])
        model = cls.from_pretrained(folder, local_files_only=True)
        self._model = model.to(device).eval()
        self._tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self._device = device

    def fingerprint(self) -> str:
        return fingerprint_of("hf-musicgen", CODE_VERSION, self.params,
                              weights=weights_digest(self._folder(), self.context.cache_dir))

    @property
    def sample_rate_hz(self) -> int:
        return int(self._model.config.audio_encoder.sampling_rate)

    def _melody_features(self, prompts: Sequence[Prompt]) -> dict:
        """``{"input_features": [B, frames, 12]}`` for a melody model when the prompts have melodies."""
        paths = [p.melody_path for p in prompts]
        if not self._melody or all(p is None for p in paths):
            return {}
        if any(p is None for p in paths):
            raise ValueError("hf-musicgen: a batch mixes prompts with and without melody_path; "
                             "transformers conditions a batch all with or all without a melody")
        import torch

        from bench.audio import read_audio, resample
        from musicgen.modules.chroma import ChromaExtractor

        extractor = ChromaExtractor(sample_rate=MELODY_RATE)
        feats = []
        for p in paths:
            wav, sr = read_audio(p)
            mono = torch.from_numpy(resample(wav, sr, MELODY_RATE).mean(0))
            feats.append(extractor(mono[None])[0])
        frames = min(f.shape[0] for f in feats)
        return {"input_features": torch.stack([f[:frames] for f in feats]).to(self._device)}

    def _generate(self, texts: list[str], duration_s: float, extra: dict | None = None) -> np.ndarray:
        import torch

        cfg = self._model.config
        frame_rate = cfg.audio_encoder.sampling_rate / math.prod(cfg.audio_encoder.upsampling_ratios)
        steps = math.ceil(duration_s * frame_rate) + cfg.decoder.num_codebooks
        inputs = self._tokenizer(texts, padding=True, return_tensors="pt").to(self._device)
        inputs = {**inputs, **(extra or {})}
        with torch.no_grad():
            audio = self._model.generate(**inputs, max_new_tokens=steps, do_sample=self.params.do_sample,
                                         top_k=self.params.top_k, temperature=self.params.temperature,
                                         guidance_scale=self.params.guidance_scale)
        return audio.float().cpu().numpy()

    def generate(self, prompts: Sequence[Prompt], seed: int, duration_s: float) -> list[AudioClip]:
        import torch

        self.load(self._device)
        n = round(duration_s * self.sample_rate_hz)
        if self.params.batch_invariant:
            waves = []
            for p in prompts:
                extra = self._melody_features([p])
                torch.manual_seed(prompt_seed(seed, p.id))
                waves.append(self._generate([p.text], duration_s, extra)[0])
        else:
            extra = self._melody_features(prompts)
            torch.manual_seed(seed)
            waves = list(self._generate([p.text for p in prompts], duration_s, extra))
        return [AudioClip(fit_length(w, n), self.sample_rate_hz, p.id, seed) for w, p in zip(waves, prompts)]
