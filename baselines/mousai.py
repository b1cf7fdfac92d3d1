"""``mousai``: Moûsai (Schneider et al. 2023) through ``audio-diffusion-pytorch`` over local weights.

UNFINISHED. ``check()`` is complete: it names the missing package (``audio-diffusion-pytorch``, the
``mousai`` extra) and the missing checkpoint file. ``load``/``generate`` raise ``NotImplementedError``:
the Moûsai authors did not publish a checkpoint with a documented layout and configuration, so there
is nothing to write the loader against or to test it with on these machines. To finish: pin the
checkpoint (file, digest, model config), build ``audio_diffusion_pytorch.DiffusionModel`` with that
config, load the state dict with ``torch.load(weights_only=True)``, and sample with the text
conditioning and the number of steps as params.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import Field

from baselines._common import fingerprint_of, missing_packages
from bench.api import AudioClip, Generator, Params, Prompt

CODE_VERSION = "0"


class MousaiGenerator(Generator):
    class Params(Params):
        checkpoint: Path
        num_steps: int = Field(default=50, ge=1)
        embedding_scale: float = 5.0

    def check(self) -> list[str]:
        problems = []
        if missing_packages("audio_diffusion_pytorch"):
            problems.append("package 'audio-diffusion-pytorch' is not installed "
                            "(pip install 'musicgen-bench[mousai]')")
        if not self.params.checkpoint.is_file():
            problems.append(f"Moûsai checkpoint {str(self.params.checkpoint)!r} does not exist")
        problems.append("the mousai adapter is unfinished: loading and sampling are not implemented "
                        "(see baselines/mousai.py)")
        return problems

    def load(self, device: str = "cpu") -> None:
        raise NotImplementedError("mousai: loading is not implemented (no published checkpoint layout; "
                                  "see baselines/mousai.py)")

    def fingerprint(self) -> str:
        return fingerprint_of("mousai", CODE_VERSION, self.params)

    def generate(self, prompts: Sequence[Prompt], seed: int, duration_s: float) -> list[AudioClip]:
        raise NotImplementedError("mousai: generation is not implemented (see baselines/mousai.py)")
