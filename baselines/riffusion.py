"""``riffusion``: Stable Diffusion over spectrogram images (diffusers) + our spectrogram-to-audio.

Requires the ``riffusion`` extra (``diffusers``) and a local copy of the riffusion-model-v1 diffusers
folder (``model_index.json``, ``unet/``, ``vae/``, ``text_encoder/``, ``tokenizer/``, ``scheduler/``).

Image <-> audio follows riffusion's published ``SpectrogramParams`` defaults: 44.1 kHz mono, STFT
magnitude with n_fft = 17640 (400 ms), window 4410 (100 ms, Hann), hop 441 (10 ms); 512 HTK mel bands
0-10 kHz without area normalisation; the image holds ``255 - 255 * (mel / max) ** 0.25`` with low
frequencies at the bottom (row 0 is the highest band); decoding takes the first channel and scales
by ``max_value`` (30e6; irrelevant after loudness normalisation). Audio comes back through a
minimum-norm least-squares mel inversion clamped at zero (as torchaudio's ``InverseMelScale``, which
riffusion uses) and 32 Griffin-Lim iterations (librosa) seeded per clip.
A 512-pixel-wide image is 5.12 s; longer requests concatenate images generated with consecutive
seeds (riffusion's app interpolates between prompts instead; documented choice).

Status: the image <-> audio conversion is implemented and tested (round trip on synthetic audio);
the diffusion part (``generate``) is written against diffusers' ``StableDiffusionPipeline`` but is
UNTESTED here: neither diffusers nor the weights are available on the build machines.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import Field

from baselines._common import fingerprint_of, fit_length, missing_packages, prompt_seed, weights_digest
from bench.api import AudioClip, Generator, Params, Prompt

CODE_VERSION = "1"
SAMPLE_RATE = 44100
N_FFT, WIN_LENGTH, HOP_LENGTH = 17640, 4410, 441
N_MELS, F_MIN, F_MAX = 512, 0.0, 10000.0
POWER_FOR_IMAGE = 0.25
MAX_VALUE = 30e6
PIPELINE_FILES = ("model_index.json", "unet", "vae", "text_encoder", "tokenizer", "scheduler")


def _mel_kwargs() -> dict:
    return {"sr": SAMPLE_RATE, "n_fft": N_FFT, "n_mels": N_MELS, "fmin": F_MIN, "fmax": F_MAX,
            "htk": True, "norm": None}


def stft_magnitude(wav_mono: np.ndarray) -> np.ndarray:
    """``|STFT|`` ``[N_FFT // 2 + 1, frames]``: centred (reflect padding), periodic Hann window of
    ``WIN_LENGTH`` zero-padded to ``N_FFT`` in the middle, hop ``HOP_LENGTH`` (torch/librosa layout)."""
    x = np.pad(np.asarray(wav_mono, dtype=np.float64), N_FFT // 2, mode="reflect")
    window = np.zeros(N_FFT)
    left = (N_FFT - WIN_LENGTH) // 2
    window[left:left + WIN_LENGTH] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WIN_LENGTH) / WIN_LENGTH)
    frames = 1 + (len(x) - N_FFT) // HOP_LENGTH
    idx = np.arange(N_FFT)[None, :] + HOP_LENGTH * np.arange(frames)[:, None]
    return np.abs(np.fft.rfft(x[idx] * window, axis=1)).T


def audio_to_image(wav_mono: np.ndarray) -> np.ndarray:
    """Mono float ``[T]`` at 44.1 kHz -> riffusion image uint8 ``[512, frames, 3]``."""
    import librosa

    mel = librosa.filters.mel(**_mel_kwargs()) @ stft_magnitude(wav_mono)
    data = 255.0 - 255.0 * (mel / max(float(mel.max()), 1e-12)) ** POWER_FOR_IMAGE
    gray = data.astype(np.uint8)[::-1]
    return np.repeat(gray[:, :, None], 3, axis=2)


def image_to_mel(image: np.ndarray, max_value: float = MAX_VALUE) -> np.ndarray:
    """Riffusion image ``[512, W, 3]`` (uint8, or float in [0, 1]) -> mel magnitudes ``[512, W]``."""
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[0] != N_MELS:
        raise ValueError(f"expected a riffusion image [512, W, 3], got shape {img.shape}")
    data = img[::-1, :, 0].astype(np.float64)
    if img.dtype != np.uint8:
        data = data * 255.0
    return ((255.0 - data) / 255.0) ** (1.0 / POWER_FOR_IMAGE) * max_value


@functools.lru_cache(maxsize=1)
def _mel_pinv() -> np.ndarray:
    """Pseudo-inverse ``[8821, 512]`` of the mel basis, as ``B^T pinv(B B^T)`` (a 512 x 512 eigh)."""
    import librosa

    basis = librosa.filters.mel(**_mel_kwargs()).astype(np.float64)
    vals, vecs = np.linalg.eigh(basis @ basis.T)
    keep = vals > vals.max() * 1e-10
    inv = (vecs[:, keep] / vals[keep]) @ vecs[:, keep].T
    return basis.T @ inv


def image_to_audio(image: np.ndarray, seed: int = 0, griffin_lim_iters: int = 32) -> np.ndarray:
    """Riffusion image -> mono float32 ``[T]`` at 44.1 kHz (NNLS mel inversion + Griffin-Lim)."""
    import librosa

    mel = image_to_mel(image)
    mag = np.clip(_mel_pinv() @ mel, 0.0, None)  # minimum-norm least squares, then >= 0
    length = (mel.shape[1] - 1) * HOP_LENGTH
    wav = librosa.griffinlim(mag, n_iter=griffin_lim_iters, hop_length=HOP_LENGTH, win_length=WIN_LENGTH,
                             n_fft=N_FFT, window="hann", center=True, length=length,
                             random_state=np.random.default_rng(seed))
    return wav.astype(np.float32)


class RiffusionGenerator(Generator):
    class Params(Params):
        model_dir: Path
        num_inference_steps: int = Field(default=50, ge=1)
        guidance_scale: float = 7.0
        width: int = Field(default=512, ge=64, multiple_of=8)
        griffin_lim_iters: int = Field(default=32, ge=1)

    _pipe = None

    def check(self) -> list[str]:
        problems = []
        missing = missing_packages("diffusers")
        if missing:
            problems.append("package 'diffusers' is not installed (pip install 'musicgen-bench[riffusion]')")
        folder = self.params.model_dir
        if not folder.is_dir():
            problems.append(f"riffusion weights folder {str(folder)!r} does not exist (copy the diffusers "
                            f"folder of riffusion/riffusion-model-v1 there)")
        else:
            absent = [n for n in PIPELINE_FILES if not (folder / n).exists()]
            if absent:
                problems.append(f"riffusion weights folder {str(folder)!r} lacks {', '.join(absent)}")
        return problems

    def load(self, device: str = "cpu") -> None:  # UNTESTED: needs diffusers and the weights
        if self._pipe is not None:
            return
        from diffusers import StableDiffusionPipeline

        self._pipe = StableDiffusionPipeline.from_pretrained(self.params.model_dir, local_files_only=True,
                                                             safety_checker=None).to(device)
        self._device = device

    def fingerprint(self) -> str:
        return fingerprint_of("riffusion", CODE_VERSION, self.params,
                              weights=weights_digest(self.params.model_dir, self.context.cache_dir))

    def generate(self, prompts: Sequence[Prompt], seed: int, duration_s: float) -> list[AudioClip]:
        import torch  # UNTESTED below this line: needs diffusers and the weights

        self.load(self.context.device)
        p = self.params
        seconds_per_image = p.width * HOP_LENGTH / SAMPLE_RATE
        images_needed = max(1, math.ceil(duration_s / seconds_per_image))
        out = []
        for prompt in prompts:
            base = prompt_seed(seed, prompt.id)
            parts = []
            for i in range(images_needed):
                gen = torch.Generator(device="cpu").manual_seed(base + i)
                image = self._pipe(prompt.text, height=N_MELS, width=p.width, generator=gen,
                                   num_inference_steps=p.num_inference_steps, guidance_scale=p.guidance_scale,
                                   output_type="np").images[0]
                parts.append(image_to_audio(image, seed=base + i, griffin_lim_iters=p.griffin_lim_iters))
            wav = np.concatenate(parts)[None]
            n = round(duration_s * SAMPLE_RATE)
            out.append(AudioClip(fit_length(wav, n), SAMPLE_RATE, prompt.id, seed))
        return out
