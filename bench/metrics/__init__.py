"""Metrics: pure functions in ``functional/`` plus stateful classes with float64 mergeable state.

``BUILTIN_METRICS`` maps registry names to lazy ``"module:Class"`` strings.
"""

BUILTIN_METRICS: dict[str, str] = {}
