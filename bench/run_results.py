"""Reading a run directory's results for reports and regression checks.

A run directory (written by ``bench run``, see ``bench.store``) holds:

``results.json``::

    {"suite": "demo", "created": "2026-11-26T17:00:00Z",
     "metadata": {"commit": ..., "packages": {...}, "seeds": [...], "device": ..., "durations_s": {...},
                  "cache": {...}, "samples_table": "samples.csv", ...},   # free-form, shown as is
     "records": [{"generator": "musicgen-small", "params": {...}, "metric": "fad",
                  "value": 3.1, "ci_low": 2.9, "ci_high": 3.3, "n": 100,
                  "higher_is_better": false, "protocol": {...},
                  "generator_info": {...}, "details": {...}}, ...]}

(``generator_info``, optional: what the generator reports about its clips, ``Generator.describe``.)

(``details``, optional: what the metric reported beside its value, e.g. FAD-inf's fit
``{"slope", "r2", "frames", "fads"}``; not part of the protocol.)

(``"meta"`` is accepted as the name of the metadata block too.)

``samples.csv`` (the per-sample table, named by ``metadata.samples_table``): one row per generated clip
with the columns ``generator``, ``prompt_id``, ``seed``, the prompt text (``text``; also accepted:
``prompt``, ``prompt_text``), the clip path relative to the run directory (``audio``; also ``clip``,
``clip_path``, ``path``), the reference clip (``reference_audio``; also ``reference``,
``reference_path``, ``reference_clip``; relative to the run directory or absolute; empty when there
is none), and per-sample numbers: every other numeric column except booleans and ``INFO_COLUMNS``
(per-sample scores, duration, loudness before normalisation).

Numbers are only comparable under the same protocol: ``protocol_digest`` names a protocol by the
sha256 of its canonical JSON, and reports and ``bench compare`` group and match by it.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.files import read_json, sha256_json

RESULTS_FILE = "results.json"
SAMPLES_FILE = "samples.csv"
REQUIRED_RECORD_KEYS = ("generator", "metric", "value", "higher_is_better")

#: canonical per-sample column -> accepted spellings (first one is what ``bench run`` writes)
SAMPLE_ALIASES: dict[str, tuple[str, ...]] = {
    "generator": ("generator",),
    "prompt_id": ("prompt_id",),
    "seed": ("seed",),
    "prompt": ("text", "prompt", "prompt_text"),
    "clip": ("audio", "clip", "clip_path", "path"),
    "reference": ("reference_audio", "reference", "reference_path", "reference_clip"),
}
#: numeric per-sample columns that are bookkeeping, not shown as scores
INFO_COLUMNS = ("sample_rate",)


class ResultsError(ValueError):
    """A results file or per-sample table that does not follow the format above."""


def protocol_digest(protocol: dict[str, Any] | None) -> str:
    """Short sha256 hex (12 chars) of the canonical JSON of a protocol; equal protocols, equal digests."""
    return sha256_json(protocol or {})[:12]


@dataclass
class Record:
    """One generator x metric output of ``results.json``."""

    generator: str
    metric: str
    value: float
    higher_is_better: bool
    params: dict[str, Any] = field(default_factory=dict)
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None
    protocol: dict[str, Any] = field(default_factory=dict)
    #: what the generator reported about its clips (``Generator.describe``); not part of the protocol
    generator_info: dict[str, Any] = field(default_factory=dict)
    #: what the metric reported beside its value (e.g. FAD-inf's fit), never part of the protocol
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return protocol_digest(self.protocol)

    @property
    def key(self) -> tuple[str, str]:
        return (self.generator, self.metric)


@dataclass
class RunResults:
    """``results.json`` of one run: suite name, creation time, metadata and records."""

    path: Path
    suite: str
    created: str
    meta: dict[str, Any]
    records: list[Record]


def _float_or_none(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ResultsError(f"{where}: expected a number or null, got {value!r}")
    return float(value)


def parse_record(raw: Any, where: str) -> Record:
    """Validate one raw record dict; errors name ``where`` (file and record index) and the field."""
    if not isinstance(raw, dict):
        raise ResultsError(f"{where}: expected an object, got {type(raw).__name__}")
    missing = [k for k in REQUIRED_RECORD_KEYS if k not in raw]
    if missing:
        raise ResultsError(f"{where}: missing field(s) {', '.join(missing)}")
    value = _float_or_none(raw["value"], f"{where}.value")
    if value is None:
        raise ResultsError(f"{where}.value: expected a number, got null")
    if not isinstance(raw["higher_is_better"], bool):
        raise ResultsError(f"{where}.higher_is_better: expected true/false, got {raw['higher_is_better']!r}")
    for name in ("params", "protocol", "generator_info", "details"):
        if not isinstance(raw.get(name) or {}, dict):
            raise ResultsError(f"{where}.{name}: expected an object, got {raw[name]!r}")
    n = raw.get("n")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int)):
        raise ResultsError(f"{where}.n: expected an integer, got {n!r}")
    return Record(generator=str(raw["generator"]), metric=str(raw["metric"]), value=value,
                  higher_is_better=raw["higher_is_better"], params=dict(raw.get("params") or {}),
                  ci_low=_float_or_none(raw.get("ci_low"), f"{where}.ci_low"),
                  ci_high=_float_or_none(raw.get("ci_high"), f"{where}.ci_high"),
                  n=n, protocol=dict(raw.get("protocol") or {}),
                  generator_info=dict(raw.get("generator_info") or {}),
                  details=dict(raw.get("details") or {}))


def results_path(run: str | Path) -> Path:
    """``run`` may be a run directory or a results.json file."""
    path = Path(run)
    return path / RESULTS_FILE if path.is_dir() else path


def load_results(run: str | Path) -> RunResults:
    """Read and validate ``RUN/results.json``. Raises ``ResultsError`` naming the file and field."""
    path = results_path(run)
    data = read_json(path, ResultsError, "results file",
                     f"expected {RESULTS_FILE} in the run directory; run `bench run SUITE --out DIR` first")
    if not isinstance(data, dict) or not isinstance(data.get("records"), list):
        raise ResultsError(f"{path}: expected an object with a 'records' list")
    records = [parse_record(r, f"{path}: records[{i}]") for i, r in enumerate(data["records"])]
    meta = data.get("metadata", data.get("meta")) or {}
    if not isinstance(meta, dict):
        raise ResultsError(f"{path}: 'metadata' must be an object, got {type(meta).__name__}")
    return RunResults(path=path, suite=str(data.get("suite", "")), created=str(data.get("created", "")),
                      meta=meta, records=records)


def load_samples(run_dir: str | Path, name: str = SAMPLES_FILE,
                 expected_sha256: str | None = None) -> pd.DataFrame | None:
    """The per-sample table with canonical column names (see ``SAMPLE_ALIASES``), or None if absent.
    With ``expected_sha256`` (``metadata.samples_sha256[name]`` of the results it goes with) a table
    from another run (one stopped between writing its outputs) is refused, as is a missing one."""
    path = Path(run_dir) / name
    if not path.is_file():
        if expected_sha256:
            raise ResultsError(f"{path}: missing, but {RESULTS_FILE} was published with it; run the suite "
                               "again to write both")
        return None
    if expected_sha256 and hashlib.sha256(path.read_bytes()).hexdigest() != expected_sha256:
        raise ResultsError(f"{path} does not belong to the {RESULTS_FILE} beside it (sha256 differs from "
                           f"metadata.samples_sha256): a run stopped between writing its outputs; run the "
                           "suite again to publish both")
    # names, ids, captions and paths stay text ("00123" keeps its zeros, a caption "1e5" is not a number)
    text_columns = {a: str for c in ("generator", "prompt_id", "prompt", "clip", "reference")
                    for a in SAMPLE_ALIASES[c]}
    try:
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype=text_columns)
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:  # incl. bad UTF-8
        what = " ".join(str(err).split())
        raise ResultsError(f"{path}: not a readable CSV table ({type(err).__name__}: {what}); rerun "
                           "`bench run` to rewrite it") from None
    renames = {}
    for canonical, aliases in SAMPLE_ALIASES.items():
        found = [a for a in aliases if a in frame.columns]
        if found and canonical not in frame.columns:
            renames[found[0]] = canonical
    frame = frame.rename(columns=renames)
    missing = [c for c in ("generator", "prompt_id", "clip") if c not in frame.columns]
    if missing:
        raise ResultsError(f"{path}: missing column(s) {', '.join(missing)}; columns are "
                           f"{', '.join(map(str, frame.columns))}")
    return frame


def score_columns(frame: pd.DataFrame) -> list[str]:
    """Per-sample number columns: numeric, not boolean, not identifiers or ``INFO_COLUMNS``."""
    return [c for c in frame.columns if c not in SAMPLE_ALIASES and c not in INFO_COLUMNS
            and pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])]


def is_finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


@dataclass(frozen=True)
class ReportedSteps:
    """The autoregressive steps a generator reported for a record (``generator_info``: ``frames`` T,
    exact ``steps`` for T frames, ``delay_tail`` after the last frame)."""

    frames: int
    steps: int
    delay_tail: int
    reported_formula: str = ""

    @property
    def nominal(self) -> int:
        """Steps without the delay tail: the paper's Table 4 count."""
        return self.steps - self.delay_tail

    @property
    def formula(self) -> str:
        """The nominal steps as a multiple of T: the generator's ``formula`` (``T``, ``2T``, ``K·T``)
        when it gave one, else the multiple itself (``4T``)."""
        if self.reported_formula:
            return self.reported_formula
        text = f"{self.nominal / self.frames:g}"
        return "T" if text == "1" else f"{text}T"


def reported_steps(record: Record) -> ReportedSteps | None:
    """The steps the record's generator reported (``generator_info``), or None when it reported none."""
    info = record.generator_info
    values = [info.get(k) for k in ("frames", "steps", "delay_tail")]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values) or values[0] <= 0:
        return None
    formula = info.get("formula")
    return ReportedSteps(*values, reported_formula=formula if isinstance(formula, str) else "")
