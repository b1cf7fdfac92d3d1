"""One registry class for every kind of plug-in: generators, datasets, metrics, embedders.

A registry maps a name to a lazy ``"module:attr"`` string and imports the target only when the name
is looked up. Three sources, in this order of precedence:

1. names registered at run time with ``Registry.register`` (tests, notebooks);
2. the built-in tables (``baselines.BUILTIN_GENERATORS``, ``bench.datasets.BUILTIN_DATASETS``,
   ``bench.metrics.BUILTIN_METRICS``, ``bench.embedders.BUILTIN_EMBEDDERS``);
3. installed packages' entry points in the groups ``musicgen_bench.generators``,
   ``musicgen_bench.metrics``, ``musicgen_bench.datasets`` and ``musicgen_bench.embedders``.

A name that an entry point shares with a built-in is an error when it is looked up (never a silent
override). An unknown name raises ``UnknownPluginError`` listing the close matches (difflib).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Mapping
from importlib import metadata
from typing import Generic, TypeVar

from bench.api import Dataset, Embedder, Generator, Metric

T = TypeVar("T")

ENTRY_POINT_PREFIX = "musicgen_bench"


class RegistryError(LookupError):
    """A plug-in that cannot be found or imported; the message says what to do."""


class UnknownPluginError(RegistryError):
    """A name that no source registers."""


def import_target(target: str) -> object:
    """Import ``"package.module:attr"`` (``attr`` may be dotted) and return the attribute."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise RegistryError(f"plug-in target {target!r} is not of the form 'module:attr'")
    try:
        obj: object = importlib.import_module(module_name)
    except ImportError as e:
        raise RegistryError(f"cannot import {module_name!r} for plug-in {target!r}: {e}") from e
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as e:
            raise RegistryError(f"module {module_name!r} has no attribute {attr!r} "
                                f"(plug-in target {target!r})") from e
    return obj


class Registry(Generic[T]):
    """Name -> plug-in class, resolved lazily. ``kind`` is used in messages ("generator")."""

    def __init__(self, kind: str, base: type[T], builtins: Mapping[str, str] | str, group: str) -> None:
        """``builtins`` is the built-in table itself or, to keep imports lazy, where it lives
        (``"package:BUILTIN_TABLE"``): the package is imported on the first lookup, not before."""
        self.kind = kind
        self.base = base
        self.group = group
        self._builtin_source = builtins  # a table is kept by reference: entries added later are seen
        self._runtime: dict[str, str | type[T]] = {}
        self._entry_points: dict[str, list[str]] | None = None
        self._resolved: dict[str, type[T]] = {}

    @property
    def _builtins(self) -> Mapping[str, str]:
        if isinstance(self._builtin_source, str):
            table = import_target(self._builtin_source)
            if not isinstance(table, Mapping):
                raise RegistryError(f"built-in {self.kind} table {self._builtin_source!r} is not a mapping")
            self._builtin_source = table
        return self._builtin_source

    # -- sources ---------------------------------------------------------------------------------
    def entry_points(self) -> dict[str, list[str]]:
        """Installed entry points of this registry's group: name -> targets (several = conflict)."""
        if self._entry_points is None:
            found: dict[str, list[str]] = {}
            for ep in metadata.entry_points(group=self.group):
                found.setdefault(ep.name, []).append(ep.value)
            self._entry_points = found
        return self._entry_points

    def register(self, name: str, target: str | type[T], *, replace: bool = False) -> None:
        """Add ``name`` -> class (or ``"module:attr"``) for this process. Refuses to shadow a
        known name unless ``replace``."""
        if not replace and name in self.names():
            raise RegistryError(f"{self.kind} {name!r} is already registered ({self.target(name)}); "
                                f"pass replace=True to override it")
        self._runtime[name] = target
        self._resolved.pop(name, None)

    def unregister(self, name: str) -> None:
        """Remove a name added with ``register`` (built-ins and entry points stay)."""
        self._runtime.pop(name, None)
        self._resolved.pop(name, None)

    def names(self) -> list[str]:
        return sorted(set(self._runtime) | set(self._builtins) | set(self.entry_points()))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def target(self, name: str) -> str:
        """Where ``name`` comes from, as a ``"module:attr"`` string (or the class's qualified name)."""
        if name in self._runtime:
            t = self._runtime[name]
            return t if isinstance(t, str) else f"{t.__module__}:{t.__qualname__}"
        eps = self.entry_points().get(name, [])
        if name in self._builtins:
            if eps:
                raise RegistryError(f"{self.kind} {name!r} is both a built-in ({self._builtins[name]}) "
                                    f"and an installed entry point ({', '.join(eps)}) in group "
                                    f"{self.group!r}; rename the third-party plug-in")
            return self._builtins[name]
        if len(eps) > 1:
            raise RegistryError(f"{self.kind} {name!r} is registered by several entry points in group "
                                f"{self.group!r}: {', '.join(eps)}")
        if eps:
            return eps[0]
        raise UnknownPluginError(self.unknown_message(name))

    def unknown_message(self, name: str) -> str:
        known = self.names()
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        return f"unknown {self.kind} {name!r}{hint} (known: {', '.join(known) or 'none'})"

    # -- lookup ----------------------------------------------------------------------------------
    def get(self, name: str) -> type[T]:
        """The plug-in class registered as ``name`` (imported on first use)."""
        if name in self._resolved:
            return self._resolved[name]
        raw = self._runtime.get(name)
        obj = raw if raw is not None and not isinstance(raw, str) else import_target(self.target(name))
        if not (isinstance(obj, type) and issubclass(obj, self.base)):
            raise RegistryError(f"{self.kind} {name!r} ({self.target(name)}) is not a subclass of "
                                f"{self.base.__module__}.{self.base.__qualname__}")
        self._resolved[name] = obj
        return obj


GENERATORS: Registry[Generator] = Registry(
    "generator", Generator, "baselines:BUILTIN_GENERATORS",
    f"{ENTRY_POINT_PREFIX}.generators")
DATASETS: Registry[Dataset] = Registry(
    "dataset", Dataset, "bench.datasets:BUILTIN_DATASETS",
    f"{ENTRY_POINT_PREFIX}.datasets")
METRICS: Registry[Metric] = Registry(
    "metric", Metric, "bench.metrics:BUILTIN_METRICS", f"{ENTRY_POINT_PREFIX}.metrics")
EMBEDDERS: Registry[Embedder] = Registry(
    "embedder", Embedder, "bench.embedders:BUILTIN_EMBEDDERS",
    f"{ENTRY_POINT_PREFIX}.embedders")

REGISTRIES: dict[str, Registry] = {
    "generators": GENERATORS, "datasets": DATASETS, "metrics": METRICS, "embedders": EMBEDDERS,
}


def list_command(args: list[str]) -> int:
    """``bench list [generators|metrics|datasets|embedders]``: names and where each comes from."""
    kinds = args or list(REGISTRIES)
    for kind in kinds:
        if kind not in REGISTRIES:
            close = difflib.get_close_matches(kind, list(REGISTRIES), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            print(f"bench list: unknown kind {kind!r}{hint}; choose from {', '.join(REGISTRIES)}")
            return 2
    for kind in kinds:
        reg = REGISTRIES[kind]
        print(f"{kind}:")
        for name in reg.names():
            try:
                where = reg.target(name)
            except RegistryError as e:
                where = f"ERROR: {e}"
            print(f"  {name:<20} {where}")
    return 0
