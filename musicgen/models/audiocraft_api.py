"""audiocraft's ``MusicGen`` API on ours, as documented aliases, so users' scripts run unchanged.

audiocraft 1.3.0 (``audiocraft/models/musicgen.py``, ``genmodel.py``; usage in its ``docs/MUSICGEN.md``):

- ``MusicGen.get_pretrained(name='facebook/musicgen-melody', device=None)``: a hub id (or the short
  names ``small``, ``medium``, ``large``, ``melody``, which audiocraft maps to ``facebook/musicgen-*``)
  or a local folder, read here from the local Hugging Face cache only. Like audiocraft it reads the
  audiocraft files (``state_dict.bin`` + ``compression_state_dict.bin``) when the folder has them (the
  hub folders hold both layouts; ``from_pretrained`` prefers transformers' there). ``device=None``:
  CUDA when available, else CPU.
- ``set_generation_params(use_sampling, top_k, top_p, temperature, duration, cfg_coef, two_step_cfg,
  extend_stride)``: ``duration`` / ``extend_stride`` are our ``duration_s`` / ``extend_stride_s``
  (see :func:`audiocraft_aliases`).
- ``generate(descriptions, progress=True)``, ``generate_unconditional(n)``, ``generate_with_chroma(
  descriptions, melody_wavs, melody_sample_rate, progress=True)`` and ``generate_continuation(prompt,
  prompt_sample_rate, descriptions)`` have the same names, argument order and shapes on ours.
- ``model.sample_rate``, ``model.frame_rate``, ``model.audio_channels``, ``model.max_duration``.
"""

from __future__ import annotations

from typing import Any

#: audiocraft's short names (``MusicGen.get_pretrained('small')``)
SHORT_NAMES = {name: f"facebook/musicgen-{name}" for name in ("small", "medium", "large", "melody")}


def audiocraft_aliases(duration_s: float | None, duration: float | None, extend_stride_s: Any,
                       extend_stride: float | None) -> tuple[float, Any]:
    """``(duration_s, extend_stride_s)`` from ours and audiocraft's names (``duration``,
    ``extend_stride``); giving both spellings with different values is an error. Defaults: 10 s and
    ``"auto"`` (60 % of the window, audiocraft's 18 s of 30 s)."""
    if duration is not None and duration_s is not None and float(duration) != float(duration_s):
        raise ValueError(f"duration={duration} and duration_s={duration_s} disagree; give one")
    both = extend_stride is not None and extend_stride_s not in ("auto", None)
    if both and extend_stride != extend_stride_s:
        raise ValueError(f"extend_stride={extend_stride} and extend_stride_s={extend_stride_s} disagree; "
                         f"give one")
    duration_s = duration if duration is not None else (10.0 if duration_s is None else duration_s)
    return duration_s, extend_stride if extend_stride is not None else extend_stride_s


class AudiocraftAPI:
    """The parts of audiocraft's API that ours does not already have under the same name."""

    @classmethod
    def get_pretrained(cls, name: str = "facebook/musicgen-melody", device: Any = None) -> Any:
        """audiocraft's loader: ``name`` resolved locally (never downloaded); audiocraft's files are
        read when the folder has them. ``device=None``: CUDA when available, else CPU."""
        import torch

        from musicgen.checkpoints.files import resolve_local
        from musicgen.checkpoints.musicgen_formats import read_audiocraft_musicgen, read_musicgen

        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        folder = resolve_local(SHORT_NAMES.get(name, name))
        if folder.is_file():
            folder = folder.parent
        has_audiocraft = all((folder / n).is_file() for n in ("state_dict.bin", "compression_state_dict.bin"))
        parts = read_audiocraft_musicgen(folder) if has_audiocraft else read_musicgen(folder)
        return cls.from_parts(parts).to(device).eval()  # type: ignore[attr-defined]

    @property
    def max_duration(self) -> float:
        """audiocraft's name for ``max_duration_s`` (seconds one window holds)."""
        return self.max_duration_s  # type: ignore[attr-defined]
