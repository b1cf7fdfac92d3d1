"""Tiny randomly initialised models for tests: each builds in well under a second on CPU.

Every constructor takes a ``seed`` so that tests are deterministic.
"""

from __future__ import annotations
