"""Test-wide settings: one torch thread.

The tests use tiny models, for which thread start-up costs more than it saves; on a loaded 2-core
machine two threads made them tens of times slower.
"""

from __future__ import annotations

import torch

torch.set_num_threads(1)
