"""The harness's contracts: prompts, clips, generators, datasets, embedders and metrics.

This module is where the contracts are stated, once; ``docs/EXTENDING.md`` walks through adding each
kind of plug-in.

Plug-ins. Every plug-in (generator, dataset, metric, embedder) is a class with a nested pydantic
``Params`` model (unknown keys are errors, values frozen); suites are validated against those models
before anything runs. Built-ins are listed lazily as ``"module:attr"`` strings in each package's
``BUILTIN_*`` table (``baselines.BUILTIN_GENERATORS``, ``bench.datasets.BUILTIN_DATASETS``,
``bench.metrics.BUILTIN_METRICS``, ``bench.embedders.BUILTIN_EMBEDDERS``), third-party ones as entry
points, and all are resolved by name through ``bench.registry`` (imported on first lookup).

Shapes and units.
- ``AudioClip.wav``: float32 ``[C, T]`` (channels first, samples), values in [-1, 1], at
  ``AudioClip.sample_rate`` Hz; ``AudioClip.tokens``: int64 ``[K, T_frames]`` or None.
- ``Embedder.embed``: mono float32 ``[T]`` at ``Embedder.sample_rate`` Hz -> frame embeddings float
  ``[F, D]`` (F >= 1 frames, D = ``Embedder.dim``); the runner downmixes, resamples (julius) and
  caches. ``Embedder.embed_text``: ``N`` texts -> ``[N, D]``.
- ``Metric.update`` receives ``features[embedder][side]`` with side ``"generated"`` / ``"reference"``,
  each ``[F, D]``; metric state is float64 arrays that merge by addition.
- Durations are seconds (``duration_s``), rates Hz (``sample_rate``), digests sha256 hex.

Hooks. Required methods are abstract. The optional ones below have default implementations here,
and the runner calls every one of them unconditionally (it never probes with ``hasattr``):
- ``Generator.check`` (what is missing, one line each), ``Generator.encode_reference`` (tokens of
  reference audio in the generator's codec, for ``Metric.needs_reference_tokens``; default None) and
  ``Generator.describe`` (facts about the clips it makes at a duration, recorded with every result as
  ``generator_info``: e.g. the codebook pattern and its autoregressive steps; default ``{}``).
- ``Dataset.check``, ``Dataset.protocol``.
- ``Embedder.weight_files`` (the local files holding the weights, or ``FileNotFoundError`` saying how
  to get them): the defaults of ``Embedder.check`` and ``Embedder.digest`` are built on it;
  ``Embedder.use_in_memory`` marks weights handed over in memory (digest ``"in-memory"``);
  ``Embedder.embed_text`` (a text tower; ``Embedder.text_encoder()`` is None without one);
  ``Embedder.protocol``.
- ``Metric.embedder_names`` (which embedders ``update`` needs), ``Metric.bind_embedder(name,
  protocol)`` (each loaded embedder's protocol, before the first ``update``),
  ``Metric.set_text_encoder(fn)`` (the embedder's text tower, when it has one) and the class flags
  ``needs_reference`` / ``needs_reference_tokens``.

Files. Plug-ins that read or write files get a ``Context``: relative ``Path`` fields of a plug-in's
``Params`` are already resolved against the suite file's folder when the suite is loaded, and
``Context.cache_dir`` is the one place inside the run directory where a plug-in may write (a dataset
that builds its corpus, a generator that unpacks weights).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from bench.files import files_digest


class Params(BaseModel):
    """Base of every plug-in's parameters: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Context:
    """What the harness lends a plug-in: where it may write and how to open another dataset.

    ``cache_dir`` lies inside the run directory (None when validating without a run directory);
    ``open_dataset(name, params)`` builds a registered dataset from raw params (used by generators
    such as ``retrieval`` that need a training set) without the plug-in importing the registry.
    """

    cache_dir: Path | None = None
    device: str = "cpu"
    open_dataset: Callable[[str, Mapping[str, Any]], Dataset] | None = None
    #: the suite file's folder: relative paths given as strings (path-or-hub-id fields) resolve here
    base_dir: Path | None = None

    def resolve(self, path_or_id: str) -> str:
        """``base_dir / path_or_id`` when that exists (a relative local path in the suite), else the
        string unchanged (an absolute path, or a hub id for the local Hugging Face cache)."""
        if self.base_dir is not None and not Path(path_or_id).expanduser().is_absolute():
            candidate = self.base_dir / path_or_id
            if candidate.exists():
                return str(candidate)
        return path_or_id


@dataclass(frozen=True)
class Prompt:
    """One item of a dataset: what a generator is asked for, and what the metrics compare with.

    ``melody_path`` is audio whose melody should be followed (chroma conditioning);
    ``reference_path`` is the dataset's own audio for this prompt (FAD/KL reference, ``reference``
    control). ``metadata`` holds dataset attributes (genre, bpm, key, split, ...).
    """

    id: str
    text: str
    melody_path: Path | None = None
    reference_path: Path | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class AudioClip:
    """Generated (or loaded) audio. ``wav`` is float32 ``[C, T]`` at ``sample_rate`` Hz.

    ``tokens`` is ``[K, T_frames]`` int64 for token-based generators (used by memorization), else None.
    """

    wav: np.ndarray
    sample_rate: int
    prompt_id: str
    seed: int
    tokens: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.wav.ndim != 2:
            raise ValueError(f"AudioClip.wav must be [C, T]; got shape {tuple(self.wav.shape)} "
                             f"for prompt {self.prompt_id!r}")
        if self.sample_rate <= 0:
            raise ValueError(f"AudioClip.sample_rate must be positive; got {self.sample_rate}")

    @property
    def duration_s(self) -> float:
        return self.wav.shape[-1] / self.sample_rate


class ContextPlugin:
    """What generators and datasets share: validated ``Params`` and the harness's ``Context``."""

    Params: ClassVar[type[Params]] = Params

    def __init__(self, params: Params | None = None, context: Context | None = None) -> None:
        self.params = params if params is not None else self.Params()
        self.context = context if context is not None else Context()

    def check(self) -> list[str]:
        """What is missing to run (packages, weight files, folders), one line each, without building
        anything; empty when ready."""
        return []


class Generator(ContextPlugin, abc.ABC):
    """Turns prompts into audio. Constructed from validated ``Params``; ``load`` happens once.

    ``fingerprint`` must change whenever the output could change (code version, params, weights
    digest): it keys the clip cache.
    """

    @abc.abstractmethod
    def load(self, device: str = "cpu") -> None: ...

    @abc.abstractmethod
    def generate(self, prompts: Sequence[Prompt], seed: int, duration_s: float) -> list[AudioClip]:
        """One clip per prompt. The same (prompt, seed) must give the same clip whatever the batch."""

    @abc.abstractmethod
    def fingerprint(self) -> str: ...

    def plan_prompts(self, prompts: Sequence[Prompt], seeds: Sequence[int],
                     dataset_ids: Collection[str]) -> list[Prompt]:
        """The prompts this generator will give clips for (all by default). A generator that reads
        clips from files (``files``) leaves out prompts it has none for, or raises ``ValueError``
        naming what is missing; ``dataset_ids`` are all the dataset's ids (before any limit)."""
        return list(prompts)

    def clip_identity(self, prompt: Prompt, seed: int) -> str | None:
        """Extra part of the clip cache key (e.g. the digest of the file a clip is read from), so
        that a changed source invalidates that clip only; None by default."""
        return None

    def encode_reference(self, wav: np.ndarray, sample_rate: int) -> np.ndarray | None:
        """Tokens ``[K, T_frames]`` of reference audio ``[C, T]`` in this generator's own codec, for
        token-based memorization (``Metric.needs_reference_tokens``); None when it has no tokens."""
        return None

    def describe(self, duration_s: float) -> dict[str, Any]:
        """Facts about the clips this generator makes at ``duration_s`` seconds, JSON-serialisable,
        recorded beside every result of the generator (``generator_info`` in ``results.json``) but not
        part of a metric's protocol. Token generators report their codebook pattern here:
        ``{"pattern": name, "num_codebooks": K, "frame_rate": Hz, "frames": T, "steps": S,
        "delay_tail": D}`` with ``S`` the exact autoregressive steps for ``T`` frames and ``D`` the
        steps after the last frame (the report's pattern table reads these). Default: nothing."""
        return {}


class Dataset(ContextPlugin, abc.ABC):
    """A set of prompts (with their reference audio, melody and metadata) from local files.

    ``check`` lists what is missing (folders, files) without building anything; ``prompts`` may
    build or index the data (inside ``context.cache_dir`` only) and returns them in a stable order.
    """

    @abc.abstractmethod
    def prompts(self) -> list[Prompt]: ...

    def protocol(self) -> dict[str, Any]:
        """What identifies this set in a result (name, split, N, how many items were missing)."""
        return {}

    def count(self) -> int | None:
        """How many prompts ``prompts`` will give, when that is known without building anything
        (``bench validate`` says how big a run is); None (the default) when it is not."""
        return None


class Embedder(abc.ABC):
    """An embedding backbone (fadtk-style): name, version, sample rate, dimension, lazy load.

    ``name`` is what protocols call it, ``version`` changes whenever its numbers could change (it
    keys the embedding cache with ``digest()``), ``sample_rate`` (Hz) is the rate ``embed`` takes and
    ``dim`` the width D of its frames.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    sample_rate: ClassVar[int] = 16000
    dim: ClassVar[int] = 0
    Params: ClassVar[type[Params]] = Params

    def __init__(self, params: Params | None = None) -> None:
        self.params = params if params is not None else self.Params()
        self.device = "cpu"
        self.in_memory = False  # weights handed over in memory (tests, benchmarks): digest "in-memory"

    def weight_files(self) -> list[Path]:
        """The local files holding this embedder's weights (their sha256 is its ``digest``); raise
        ``FileNotFoundError`` naming a missing file and how to obtain it. Default: none."""
        return []

    def check(self) -> list[str]:
        """What is missing to run (packages, weight files), one line each; empty when ready.
        Default: the error of ``weight_files()``, if any."""
        if self.in_memory:
            return []
        try:
            self.weight_files()
        except FileNotFoundError as e:
            return [str(e)]
        return []

    def use_in_memory(self) -> None:
        """Mark the weights as handed over in memory: ``digest()`` becomes ``"in-memory"``."""
        self.in_memory = True

    @abc.abstractmethod
    def load(self, device: str = "cpu") -> None: ...

    @abc.abstractmethod
    def embed(self, wav: np.ndarray) -> np.ndarray:
        """Mono float32 ``[T]`` at ``sample_rate`` -> frame embeddings float ``[F, D]``."""

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """Optional text tower: ``N`` texts -> embeddings ``[N, D]`` in the audio embeddings' space
        (CLAP-style). Embedders without one leave this default, which raises."""
        raise NotImplementedError(f"embedder {self.name!r} has no text tower")

    def text_encoder(self) -> Callable[[Sequence[str]], np.ndarray] | None:
        """``embed_text`` when this embedder overrides it, else None."""
        return None if type(self).embed_text is Embedder.embed_text else self.embed_text

    def digest(self) -> str:
        """Digest of the weights in use (sha256 hex), part of every protocol and cache key: of
        ``weight_files()`` (``"none"`` without files), or ``"in-memory"``."""
        if self.in_memory:
            return "in-memory"
        files = self.weight_files()
        return files_digest(*files) if files else "none"

    def protocol(self) -> dict[str, Any]:
        """What identifies these numbers in a result; subclasses add their crop or segment policy."""
        return {"backbone": self.name, "version": self.version, "sample_rate": self.sample_rate,
                "checkpoint_digest": self.digest()}


@dataclass(frozen=True)
class MetricInfo:
    """What one named output of a metric means. ``protocol`` is recorded beside every value."""

    name: str
    higher_is_better: bool
    unit: str = ""
    protocol: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricItem:
    """One generated clip with its prompt and, for paired metrics, the reference clip."""

    prompt: Prompt
    generated: AudioClip
    reference: AudioClip | None = None


class Metric(abc.ABC):
    """A metric with float64 sufficient statistics that merge by addition.

    Subclasses declare their state in ``__init__`` with ``add_state`` and fill it in ``update``;
    ``compute`` turns the state into values keyed by ``MetricInfo.name``. ``merge`` adds another
    instance's state, so shards, caches and ranks combine exactly.

    Hooks the runner calls (defaults here): ``embedder_names()`` once, then for each of those
    embedders ``bind_embedder(name, protocol)`` with its ``protocol()`` and, when the embedder has a
    text tower, ``set_text_encoder(fn)`` with its ``embed_text`` (texts -> ``[N, D]``; CLAP score).
    ``MetricResult.extra["protocol"]`` entries are merged into the record's protocol.
    """

    Params: ClassVar[type[Params]] = Params
    #: registry names of the embedders whose features ``update`` receives
    embedders: ClassVar[tuple[str, ...]] = ()
    #: True when every item needs ``reference`` (paired metrics); an instance may turn it off when it
    #: has the references another way (``kl`` with ``reference_stats``)
    needs_reference: bool = False
    #: True when ``item.reference.tokens`` should be filled by ``Generator.encode_reference``
    needs_reference_tokens: ClassVar[bool] = False

    def __init__(self, params: Params | None = None) -> None:
        self.params = params if params is not None else self.Params()
        self.state: dict[str, np.ndarray] = {}
        self.embedder_protocols: dict[str, dict[str, Any]] = {}

    def embedder_names(self) -> tuple[str, ...]:
        """Registry names of the embedders this instance needs: the ``embedder`` parameter when the
        metric's ``Params`` has one (the backbone is a suite choice), else ``embedders``."""
        chosen = getattr(self.params, "embedder", None)
        return (chosen,) if isinstance(chosen, str) else tuple(self.embedders)

    def bind_embedder(self, name: str, protocol: Mapping[str, Any]) -> None:
        """Receive the protocol of loaded embedder ``name`` (kept in ``embedder_protocols``)."""
        self.embedder_protocols[name] = dict(protocol)

    def set_text_encoder(self, encoder: Callable[[Sequence[str]], np.ndarray]) -> None:
        """Receive the text tower of an embedder this metric uses (texts -> ``[N, D]``). Default:
        unused."""
        return None

    def features_of(self, features: Mapping[str, Mapping[str, np.ndarray]], item: MetricItem,
                    sides: Sequence[str] = ("generated",)) -> dict[str, np.ndarray]:
        """``features[name][side]`` of this metric's (first) embedder for each of ``sides``; a
        missing one raises ``KeyError`` naming the metric, embedder, side, prompt and seed."""
        name = self.embedder_names()[0]
        got = features.get(name, {})
        for side in sides:
            if side not in got:
                raise KeyError(f"{type(self).__name__}: no {name!r} embeddings of the {side} clip of "
                               f"prompt {item.prompt.id!r} seed {item.generated.seed}")
        return {side: got[side] for side in sides}

    def add_state(self, name: str, shape: tuple[int, ...] = ()) -> None:
        self.state[name] = np.zeros(shape, dtype=np.float64)

    def merge(self, other: Metric) -> None:
        if type(other) is not type(self) or other.state.keys() != self.state.keys():
            raise ValueError(f"cannot merge {type(other).__name__} into {type(self).__name__}")
        for k, v in other.state.items():
            if v.shape != self.state[k].shape:
                raise ValueError(f"state {k!r}: shape {v.shape} does not match {self.state[k].shape}")
            self.state[k] = self.state[k] + v

    @abc.abstractmethod
    def infos(self) -> list[MetricInfo]: ...

    @abc.abstractmethod
    def update(self, item: MetricItem,
               features: Mapping[str, Mapping[str, np.ndarray]]) -> Mapping[str, float] | None:
        """Add one item. ``features[embedder_name]`` holds ``"generated"`` and, when available,
        ``"reference"`` frame embeddings ``[F, D]``. Raise on bad input; never skip silently.

        May return per-sample values (``{output_name: float}``); the runner puts them in the
        per-sample table. Returning None is fine."""

    @abc.abstractmethod
    def compute(self) -> dict[str, MetricResult]: ...

    def check(self) -> list[str]:
        """What is missing to run (files named in params), one line each; empty when ready."""
        return []

    def late_values(self) -> Mapping[tuple[str, int], Mapping[str, float]]:
        """Per-sample values that need the whole (merged) state, e.g. per-song FAD against the full
        reference fit: ``{(prompt id, seed): {column: value}}`` for the items this process updated.
        The runner calls it on every rank after the states are merged; empty by default."""
        return {}


@dataclass(frozen=True)
class MetricResult:
    """A value with its confidence interval (or None) and the number of items it rests on."""

    value: float
    n: int
    ci_low: float | None = None
    ci_high: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
