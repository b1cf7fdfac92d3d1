"""The training loop shared by the LM and codec solvers: progress bar, JSONL metrics, cadence.

A solver subclasses ``SolverLoop`` and provides ``cfg`` (with ``steps``, ``log_every``,
``valid_every``, ``checkpoint_every``), ``step``, ``rank``, ``metrics_path``, ``train_step() -> dict``
(whose ``rate_key`` entry counts the work of the step: tokens, audio seconds), ``validate() -> dict``
(empty when there is no validation data) and ``save()``.

Every ``log_every`` steps the train metrics go to ``metrics.jsonl`` as
``{"split": "train", "step": ..., "<rate_key>_per_s": ..., ...}``; validation records have
``"split": "valid"``. The last step is always validated and checkpointed.
"""

from __future__ import annotations

import json
import time
from typing import Any


class SolverLoop:
    name = "train"
    rate_key = "tokens"
    rate_label = "tok/s"

    def _log(self, record: dict[str, Any]) -> None:
        if self.rank != 0:
            return
        self.metrics_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")

    def _validate_and_log(self) -> None:
        metrics = self.validate()
        if metrics:
            self._log({"split": "valid", "step": self.step, **metrics})

    def train(self, until_step: int | None = None, progress: bool = True) -> dict[str, float]:
        """Train from ``self.step`` to ``until_step`` (default ``cfg.steps``); return the last metrics."""
        from tqdm import tqdm

        cfg = self.cfg
        end = cfg.steps if until_step is None else min(until_step, cfg.steps)
        bar = tqdm(total=end, initial=self.step, disable=not progress or self.rank != 0,
                   desc=self.name, unit="step", dynamic_ncols=True)
        last: dict[str, float] = {}
        t0, work = time.perf_counter(), 0.0
        while self.step < end:
            last = self.train_step()
            work += last[self.rate_key]
            rate = work / max(time.perf_counter() - t0, 1e-9)
            bar.update(1)
            bar.set_postfix({"loss": f"{last['loss']:.3f}", self.rate_label: f"{rate:.0f}"})
            if self.step % cfg.log_every == 0 or self.step == end:
                self._log({"split": "train", "step": self.step, f"{self.rate_key}_per_s": rate, **last})
            if cfg.valid_every and self.step % cfg.valid_every == 0:
                self._validate_and_log()
            if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                self.save()
        bar.close()
        if self.step == cfg.steps:
            if not (cfg.valid_every and self.step % cfg.valid_every == 0):
                self._validate_and_log()
            if not (cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0):
                self.save()
        return last
