"""Names that moved or were replaced, kept working with a ``DeprecationWarning`` that says where to go.

Modules whose names moved look them up here from their module ``__getattr__`` (so the shims cost
nothing until used). Remove an entry one release after its warning was first shipped.
"""

from __future__ import annotations

import warnings
from typing import Any

#: module -> old name -> (replacement to tell the user, shim)
_SHIMS: dict[str, dict[str, tuple[str, Any]]] = {}


def _shim(module: str, name: str, instead: str):
    def register(fn):
        _SHIMS.setdefault(module, {})[name] = (instead, fn)
        return fn
    return register


def lookup(module: str, name: str) -> Any:
    """The shim for ``module.name`` (warning once per call site), or ``AttributeError``."""
    entry = _SHIMS.get(module, {}).get(name)
    if entry is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    instead, obj = entry
    warnings.warn(f"{module}.{name} is deprecated; use {instead}", DeprecationWarning, stacklevel=3)
    return obj


# -- bench.report: pattern steps now come from the generator (Generator.describe) -------------------
def _legacy_pattern(pattern: str, params: dict[str, Any], protocol: dict[str, Any]):
    """(pattern object, frames) as the old report rule read them from params/protocol, or None."""
    from musicgen.modules.patterns import get_pattern, pattern_names

    if pattern not in pattern_names():
        return None
    generation = protocol.get("generation") if isinstance(protocol.get("generation"), dict) else {}
    both = {**generation, **protocol, **params}
    duration = both.get("duration_s", both.get("duration"))
    k = int(both.get("num_codebooks", 8 if pattern.startswith("stereo_") else 4))
    if not isinstance(duration, int | float) or isinstance(duration, bool):
        return get_pattern(pattern, num_codebooks=k), None
    return get_pattern(pattern, num_codebooks=k), round(float(duration) * float(both.get("frame_rate", 50)))


@_shim("bench.report", "autoregressive_steps", "Generator.describe and bench.run_results.reported_steps")
def autoregressive_steps(pattern: str, params: dict[str, Any], protocol: dict[str, Any]) -> int | None:
    found = _legacy_pattern(pattern, params, protocol)
    if found is None or found[1] is None:
        return None
    p, frames = found
    return p.num_steps(frames) - p.max_delay


@_shim("bench.report", "delay_tail", "Generator.describe and bench.run_results.reported_steps")
def delay_tail(pattern: str, params: dict[str, Any], protocol: dict[str, Any]) -> int:
    found = _legacy_pattern(pattern, params, protocol)
    return 0 if found is None else int(found[0].max_delay)


@_shim("bench.report", "steps_formula", "bench.run_results.ReportedSteps.formula")
def steps_formula(pattern: str) -> str:
    found = _legacy_pattern(pattern, {"duration_s": 1.0}, {})
    if found is None:
        return "?"
    from bench.run_results import ReportedSteps

    p, frames = found
    return ReportedSteps(frames, p.num_steps(frames), p.max_delay).formula
