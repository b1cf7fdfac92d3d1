"""bench: the evaluation harness (suites, registry, runner, metrics, embedders, reports)."""

__version__ = "0.1.0"
