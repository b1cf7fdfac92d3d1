"""``synthcaps``: the embedded synthetic corpus (``musicgen.train.synthcaps``) as an audio folder.

The corpus is built (or reused: ``build_synthcaps`` keeps a corpus built with the same parameters) in
``<run dir>/cache/datasets/synthcaps/<parameters>/`` and read as an ``audio-folder`` on ``split``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from bench.api import Dataset, Params, Prompt
from bench.datasets.audio_folder import AudioFolder


class SynthCaps(Dataset):
    class Params(Params):
        split: Literal["train", "valid", "test"] = "test"
        num_clips: int = Field(default=300, ge=3)
        seed: int = 0
        duration_s: float = Field(default=10.0, gt=0)
        sample_rate: int = Field(default=32000, gt=0)

    def check(self) -> list[str]:
        if self.context.cache_dir is None:
            return ["synthcaps needs a cache directory inside the run directory"]
        return []

    @property
    def root(self) -> Path:
        p = self.params
        name = f"n{p.num_clips}-seed{p.seed}-{p.duration_s:g}s-{p.sample_rate}hz"
        if self.context.cache_dir is None:
            raise RuntimeError("synthcaps needs Context.cache_dir (a folder inside the run directory)")
        return self.context.cache_dir / "datasets" / "synthcaps" / name

    def prompts(self) -> list[Prompt]:
        problems = self.check()
        if problems:
            raise RuntimeError("; ".join(problems))
        from musicgen.train.synthcaps import build_synthcaps

        p = self.params
        root = build_synthcaps(self.root, num_clips=p.num_clips, seed=p.seed, duration_s=p.duration_s,
                               sample_rate=p.sample_rate)
        folder = AudioFolder(AudioFolder.Params(root=Path(root), split=p.split), self.context)
        return folder.prompts()

    def protocol(self) -> dict[str, Any]:
        return {"dataset": "synthcaps", **self.params.model_dump()}
