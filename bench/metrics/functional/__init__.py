"""Pure metric functions (no state, no I/O)."""
