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
def _legacy_steps(pattern: str, params: dict[str, Any], protocol: dict[str, Any], duration: Any = None):
    """``musicgen.modules.patterns.pattern_steps`` for what the old report rule read from a record's
    params/protocol (duration, frame rate 50 Hz, K: 4 per channel), or None for an unknown pattern."""
    from musicgen.modules.patterns import pattern_channels, pattern_names, pattern_steps

    if pattern not in pattern_names():
        return None
    generation = protocol.get("generation") if isinstance(protocol.get("generation"), dict) else {}
    both = {**generation, **protocol, **params}
    duration = both.get("duration_s", both.get("duration", duration))
    if not isinstance(duration, int | float) or isinstance(duration, bool):
        duration = 1.0 / float(both.get("frame_rate", 50))  # one frame: for the tail and formula only
        both["_no_duration"] = True
    k = int(both.get("num_codebooks", 4 * pattern_channels(pattern)))
    frames = max(1, round(float(duration) * float(both.get("frame_rate", 50))))
    return pattern_steps(pattern, k, frames), "_no_duration" in both


@_shim("bench.report", "autoregressive_steps", "Generator.describe and bench.run_results.reported_steps")
def autoregressive_steps(pattern: str, params: dict[str, Any], protocol: dict[str, Any]) -> int | None:
    found = _legacy_steps(pattern, params, protocol)
    return None if found is None or found[1] else found[0].steps


@_shim("bench.report", "delay_tail", "Generator.describe and bench.run_results.reported_steps")
def delay_tail(pattern: str, params: dict[str, Any], protocol: dict[str, Any]) -> int:
    found = _legacy_steps(pattern, params, protocol)
    return 0 if found is None else found[0].tail


@_shim("bench.report", "steps_formula", "bench.run_results.ReportedSteps.formula")
def steps_formula(pattern: str) -> str:
    found = _legacy_steps(pattern, {}, {})
    return "?" if found is None else found[0].formula
