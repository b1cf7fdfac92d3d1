"""Metrics: pure functions in functional/ and stateful classes with float64 mergeable state."""
