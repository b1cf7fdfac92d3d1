"""``files``: a folder of already generated clips as a generator (sample-only systems, ``bench score``).

Clips are matched to the dataset's prompts by a manifest (CSV or JSONL: ``file``, ``prompt_id``,
optional ``caption`` and ``seed``; ``manifest`` param, or ``ROOT/manifest.csv|jsonl``) or, without
one, by file stem = prompt id (seed 0); see ``bench.clipfiles``. Every format soundfile reads (wav,
flac, ogg, mp3), any sample rate (kept, or resampled with julius to ``sample_rate``), any channel
count: channels are kept as in the file, and every embedder sees their mean (``bench.audio.to_mono``),
as for generated clips.

Length policy against the suite's ``duration_s`` (``length``): ``crop`` cuts longer clips and keeps
shorter ones as they are (the runner then trims the pair to its common length when
``trim_to_reference``); ``pad`` cuts longer clips and pads shorter ones with trailing zeros; ``refuse``
fails on any clip whose length differs from ``duration_s`` by more than ``length_tolerance_s``.

Missing clips (a prompt of the plan without a file) are listed by prompt id and fail the run, or with
``allow_missing: true`` those prompts are left out of this generator's items and their number is in
the generator's ``describe()`` (``generator_info`` beside every record). Files for prompt ids the
dataset does not have are an error, or with ``allow_unknown: true`` ignored and counted. A clip's
cache key includes its file's sha256 (``clip_identity``): replacing a file re-reads and re-embeds
that clip only. Undecodable, empty (0 bytes) and NaN/inf
files fail with one line naming the file; clips read before the failure stay cached.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from baselines._common import fingerprint_of
from bench.api import AudioClip, Generator, Params, Prompt
from bench.audio import AUDIO_EXTENSIONS, read_audio, resample
from bench.clipfiles import ClipEntry, ClipFilesError, FileDigests, listing, scan

CODE_VERSION = "1"
CHANNELS = "kept as in the file; embedders see the mean of the channels"


class FilesGenerator(Generator):
    class Params(Params):
        root: Path
        manifest: Path | None = None
        length: Literal["crop", "pad", "refuse"] = "crop"
        length_tolerance_s: float = Field(default=0.01, ge=0)
        sample_rate: int | None = Field(default=None, gt=0, description="resample to this rate; None keeps")
        allow_missing: bool = False
        #: ignore (and count) clips of prompt ids the dataset does not have, e.g. a sample set that
        #: covers MusicCaps clips absent from a local copy; otherwise they are an error
        allow_unknown: bool = False
        extensions: tuple[str, ...] = AUDIO_EXTENSIONS

    def __init__(self, params: Params | None = None, context: Any = None) -> None:
        super().__init__(params, context)
        self._entries: dict[tuple[str, int], ClipEntry] | None = None
        self._digests: FileDigests | None = None
        self.missing: list[str] = []
        self.unknown: list[str] = []

    # -- the folder ------------------------------------------------------------------------------
    def entries(self) -> dict[tuple[str, int], ClipEntry]:
        """``(prompt id, seed) -> ClipEntry`` (raises ``ClipFilesError`` naming the problem)."""
        if self._entries is None:
            found = scan(self.params.root, self.params.manifest, self.params.extensions)
            self._entries = {(e.prompt_id, e.seed): e for e in found}
        return self._entries

    def check(self) -> list[str]:
        import soundfile as sf

        if not self.params.root.is_dir():
            return [f"sample folder {str(self.params.root)!r} does not exist (put the system's clips "
                    f"there: one audio file per prompt, named <prompt id>.wav, or a manifest.csv)"]
        try:
            entries = self.entries()
        except ClipFilesError as e:
            return [str(e)]
        bad = []
        for e in entries.values():
            size = e.path.stat().st_size
            if size == 0:
                bad.append(f"{str(e.path)!r} is empty (0 bytes)")
                continue
            try:
                sf.info(str(e.path))
            except Exception as err:  # soundfile raises several types for undecodable files
                bad.append(f"{str(e.path)!r} is not audio soundfile can decode ({err})")
        if bad:
            return [f"{len(bad)} undecodable clip file(s): {listing(bad)}"]
        return []

    def plan_prompts(self, prompts: Sequence[Prompt], seeds: Sequence[int],
                     dataset_ids: Collection[str]) -> list[Prompt]:
        """The prompts this folder has a clip for at every seed. Raises ``ValueError`` for files of
        prompt ids the dataset does not have, and for missing clips unless ``allow_missing``."""
        entries = self.entries()
        unknown = sorted({pid for pid, _ in entries} - set(dataset_ids))
        self.unknown = unknown
        if unknown and not self.params.allow_unknown:
            raise ValueError(f"{len(unknown)} clip(s) in {str(self.params.root)!r} name prompt ids the "
                             f"dataset does not have: {listing(unknown)} (set allow_unknown: true to "
                             f"ignore them)")
        keep, missing = [], []
        for p in prompts:
            absent = [s for s in seeds if (p.id, s) not in entries]
            if absent:
                missing.append(p.id if list(absent) == list(seeds) else f"{p.id} (seeds {absent})")
            else:
                keep.append(p)
        self.missing = missing
        if missing and not self.params.allow_missing:
            raise ValueError(f"{len(missing)} of {len(prompts)} prompts have no clip in "
                             f"{str(self.params.root)!r}: {listing(missing)} (set allow_missing: true, "
                             f"or bench score --allow-missing, to score the {len(keep)} present)")
        if not keep:
            raise ValueError(f"no prompt of the dataset has a clip in {str(self.params.root)!r}")
        for p in keep:  # hash every file once now and remember the digests for the next run
            for s in seeds:
                self.clip_identity(p, s)
        self.save_digests()
        return keep

    def clip_identity(self, prompt: Prompt, seed: int) -> str:
        """sha256 of the file that holds the clip of (prompt, seed): part of its cache key."""
        if self._digests is None:
            memo = self.context.cache_dir / "file-digests.json" if self.context.cache_dir else None
            self._digests = FileDigests(memo)
        entry = self.entries()[(prompt.id, seed)]
        digest = self._digests(entry.path)
        return digest

    def save_digests(self) -> None:
        if self._digests is not None:
            self._digests.save()

    def describe(self, duration_s: float) -> dict[str, Any]:
        """Where the clips came from and how they were fitted (``generator_info`` of each record)."""
        p = self.params
        return {"source": "files", "root": str(p.root),
                "manifest": None if p.manifest is None else str(p.manifest), "length_policy": p.length,
                "length_tolerance_s": p.length_tolerance_s if p.length == "refuse" else None,
                "resampled_to": p.sample_rate, "channels": CHANNELS, "allow_missing": p.allow_missing,
                "n_missing": len(self.missing), "missing": self.missing[:50],
                "allow_unknown": p.allow_unknown, "n_unknown_ignored": len(self.unknown)}

    # -- the generator contract ------------------------------------------------------------------
    def load(self, device: str = "cpu") -> None:
        self.entries()

    def fingerprint(self) -> str:
        return fingerprint_of("files", CODE_VERSION, self.params)

    def _fit(self, wav: np.ndarray, sr: int, duration_s: float, path: Path) -> np.ndarray:
        n = round(duration_s * sr)
        if self.params.length == "refuse":
            if abs(wav.shape[-1] - n) > self.params.length_tolerance_s * sr:
                raise ValueError(f"clip {str(path)!r} lasts {wav.shape[-1] / sr:.3f} s where the suite asks "
                                 f"for {duration_s:g} s (length: refuse; tolerance "
                                 f"{self.params.length_tolerance_s:g} s)")
            return np.ascontiguousarray(wav[..., :n], dtype=np.float32)
        if self.params.length == "pad" and wav.shape[-1] < n:
            wav = np.pad(wav, ((0, 0), (0, n - wav.shape[-1])))
        return np.ascontiguousarray(wav[..., :n], dtype=np.float32)

    def generate(self, prompts: Sequence[Prompt], seed: int, duration_s: float) -> list[AudioClip]:
        out = []
        for p in prompts:
            entry = self.entries().get((p.id, seed))
            if entry is None:
                raise ValueError(f"no clip for prompt {p.id!r} seed {seed} in {str(self.params.root)!r}")
            wav, sr = read_audio(entry.path)
            if wav.shape[-1] == 0:
                raise ValueError(f"clip {str(entry.path)!r} holds no samples")
            if not np.all(np.isfinite(wav)):
                raise ValueError(f"clip {str(entry.path)!r} holds NaN or inf samples")
            if self.params.sample_rate and self.params.sample_rate != sr:
                wav, sr = resample(wav, sr, self.params.sample_rate), self.params.sample_rate
            wav = self._fit(wav, sr, duration_s, entry.path)
            out.append(AudioClip(wav, sr, p.id, seed, meta={"source": str(entry.path),
                                                            "sha256": self.clip_identity(p, seed)}))
        self.save_digests()
        return out
