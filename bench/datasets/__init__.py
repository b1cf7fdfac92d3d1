"""Dataset plug-ins. ``BUILTIN_DATASETS`` maps registry names to lazy ``"module:Class"`` strings."""

BUILTIN_DATASETS: dict[str, str] = {}
