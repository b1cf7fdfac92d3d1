"""Rating exports: their format, their validation, and the store of imported ratings in the run.

An export (what the page downloads, and what ``bench ratings simulate`` writes)::

    {"format": "musicgen-bench/listening-ratings", "version": 1, "test_id": "t0123456789a",
     "protocol": "ovl-rel", "rater_id": "r17", "session": "...", "started": "...", "exported": "...",
     "item_order": ["i03", "i01", ...],
     "ratings": [{"item": "i03", "stimulus": "9f2c...", "position": 0,
                  "scores": {"ovl": 71, "rel": 64}, "listened_fraction": 1.0}, ...]}

``validate_export`` checks the format and version, that the test is one of the run's, the protocol,
the rater id, every item and stimulus (known, and the stimulus belongs to the item), every score
(exactly the protocol's scales, numbers in the slider's range) and duplicates (one rating per
stimulus). A partial export (a rater who stopped early) is valid; an empty one is not.

The store, ``RUN/listening/<test_id>/ratings.json``, holds every imported export with its source
file name and sha256, and the screening rules (``bench.listening.screening``). ``import_files``
validates every file first (including the same rater twice, within the batch or against the store)
and writes nothing unless all are valid; each store is then replaced atomically.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from bench.files import atomic_write_text, read_json
from bench.listening.design import ListeningError, TestKey, folder_of, load_keys

EXPORT_FORMAT = "musicgen-bench/listening-ratings"
EXPORT_VERSION = 1
STORE_FORMAT = "musicgen-bench/listening-ratings-store"
STORE_NAME = "ratings.json"
MAX_RATER_ID = 100


class RatingsError(ListeningError):
    """A rating file that cannot be imported; the message names the file and the field."""


def _fail(where: str, field: str, problem: str) -> RatingsError:
    return RatingsError(f"{where}: {field}: {problem}")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def parse_json(data: bytes, where: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise RatingsError(f"{where}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise RatingsError(
            f"{where}: not valid JSON (truncated or damaged: {e.msg} at line {e.lineno}, column {e.colno})"
        ) from None
    except RecursionError:
        raise RatingsError(f"{where}: not valid JSON (nested too deeply)") from None


def validate_export(data: Any, keys: Mapping[str, TestKey], where: str) -> dict[str, Any]:
    """The export, checked (module docstring); raises ``RatingsError`` naming ``where`` and the field."""
    if not isinstance(data, dict):
        raise RatingsError(f"{where}: expected a JSON object (a rating export), got {type(data).__name__}")
    if data.get("format") != EXPORT_FORMAT:
        raise _fail(where, "format", f"{data.get('format')!r} is not {EXPORT_FORMAT!r}: not a rating export")
    if data.get("version") != EXPORT_VERSION:
        raise _fail(where, "version", f"{data.get('version')!r}; this bench reads version {EXPORT_VERSION}")
    test_id = data.get("test_id")
    if not isinstance(test_id, str) or test_id not in keys:
        known = ", ".join(sorted(keys)) or "none: run `bench listen` first"
        raise _fail(where, "test_id", f"{test_id!r} is not a listening test of this run (known: {known})")
    key = keys[test_id]
    if data.get("protocol") != key.protocol:
        raise _fail(where, "protocol", f"{data.get('protocol')!r}; test {test_id} is {key.protocol!r}")
    rater = data.get("rater_id")
    if not isinstance(rater, str) or not rater.strip() or len(rater) > MAX_RATER_ID:
        raise _fail(
            where, "rater_id", f"{rater!r}: expected a non-empty text of at most {MAX_RATER_ID} characters"
        )
    ratings = data.get("ratings")
    if not isinstance(ratings, list) or not ratings:
        raise _fail(where, "ratings", "expected a non-empty list of ratings")
    stimuli = key.stimuli()
    scales = {s.name: s for s in key.scales}
    seen: dict[str, int] = {}
    for i, r in enumerate(ratings):
        at = f"ratings[{i}]"
        if not isinstance(r, dict):
            raise _fail(where, at, f"expected an object, got {type(r).__name__}")
        item, stim = r.get("item"), r.get("stimulus")
        if not isinstance(stim, str) or stim not in stimuli:
            raise _fail(where, f"{at}.stimulus", f"{stim!r} is not a stimulus of test {test_id}")
        if item != stimuli[stim][0].id:
            raise _fail(
                where, f"{at}.item", f"{item!r} is not an item of test {test_id} holding stimulus {stim}"
            )
        if stim in seen:
            raise _fail(where, f"{at}.stimulus", f"{stim} rated twice (also ratings[{seen[stim]}])")
        seen[stim] = i
        scores = r.get("scores")
        if not isinstance(scores, dict) or set(scores) != set(scales):
            got = sorted(scores) if isinstance(scores, dict) else scores
            raise _fail(where, f"{at}.scores", f"{got!r}; expected exactly {sorted(scales)}")
        for name, value in scores.items():
            sc = scales[name]
            if not _number(value) or not sc.low <= value <= sc.high:
                raise _fail(
                    where, f"{at}.scores.{name}", f"{value!r} is not a number in [{sc.low}, {sc.high}]"
                )
        listened = r.get("listened_fraction")
        if listened is not None and (not _number(listened) or not 0 <= listened <= 1):
            raise _fail(where, f"{at}.listened_fraction", f"{listened!r} is not null or a number in [0, 1]")
    return data


def store_path(run_dir: str | Path, test_id: str) -> Path:
    return folder_of(run_dir, test_id) / STORE_NAME


def load_store(run_dir: str | Path, key: TestKey) -> dict[str, Any]:
    """The store of ``key``'s test (an empty one when nothing was imported yet)."""
    path = store_path(run_dir, key.test_id)
    if not path.is_file():
        return {"format": STORE_FORMAT, "version": 1, "test_id": key.test_id, "screening": None, "raters": []}
    data = read_json(path, ListeningError, "ratings store")
    if (
        not isinstance(data, dict)
        or data.get("format") != STORE_FORMAT
        or not isinstance(data.get("raters"), list)
    ):
        raise ListeningError(f"{path}: not a ratings store (format {STORE_FORMAT!r})")
    return data


def write_store(run_dir: str | Path, store: dict[str, Any]) -> Path:
    path = store_path(run_dir, store["test_id"])
    atomic_write_text(path, json.dumps(store, indent=1) + "\n")
    return path


def import_exports(
    run_dir: str | Path,
    exports: Iterable[tuple[str, bytes]],
    *,
    replace: bool = False,
    screening: Callable[[str], list[dict[str, Any]]] | None = None,
    simulated: dict[str, Any] | None = None,
) -> dict[str, list[str]]:
    """Validate ``(name, bytes)`` exports and add them to their tests' stores, all or nothing.

    ``replace`` lets a rater already in the store be replaced (else it is an error); ``screening``
    (protocol -> rules, see ``bench.listening.screening``) replaces the stored rules of every test
    touched;
    ``simulated`` marks the raters as synthetic (the report says so) and drops the earlier synthetic
    raters of the tests touched. Returns test id -> rater ids."""
    keys = load_keys(run_dir)
    stores: dict[str, dict[str, Any]] = {}
    batch: dict[tuple[str, str], str] = {}
    added: dict[str, list[dict[str, Any]]] = {}
    for name, raw in exports:
        export = validate_export(parse_json(raw, name), keys, name)
        test_id, rater = export["test_id"], export["rater_id"]
        if test_id not in stores:
            stores[test_id] = load_store(run_dir, keys[test_id])
        if (test_id, rater) in batch:
            raise _fail(
                name, "rater_id", f"{rater!r} is also in {batch[(test_id, rater)]}: the same rater twice"
            )
        before = next((r for r in stores[test_id]["raters"] if r["rater_id"] == rater), None)
        if before is not None and not replace:
            raise _fail(
                name,
                "rater_id",
                f"{rater!r} was already imported into test {test_id} (from "
                f"{before['source']}); pass --replace to replace those ratings",
            )
        batch[(test_id, rater)] = name
        added.setdefault(test_id, []).append(
            {
                "rater_id": rater,
                "source": Path(name).name,
                "sha256": hashlib.sha256(raw).hexdigest(),
                "imported": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "simulated": simulated,
                "export": export,
            }
        )
    if not added:
        raise RatingsError("no rating file given")
    for test_id, new in added.items():
        store = stores[test_id]
        names = {r["rater_id"] for r in new}
        store["raters"] = [
            r
            for r in store["raters"]
            if r["rater_id"] not in names and not (simulated and r.get("simulated"))
        ] + new
        if screening is not None:
            store["screening"] = screening(keys[test_id].protocol)
    for store in stores.values():  # everything validated: only now is anything written
        write_store(run_dir, store)
    return {t: [r["rater_id"] for r in new] for t, new in added.items()}


def import_files(run_dir: str | Path, files: Iterable[str | Path], **kwargs: Any) -> dict[str, list[str]]:
    """``import_exports`` over files; an unreadable file is a ``RatingsError`` naming it."""
    exports = []
    for f in files:
        try:
            exports.append((str(f), Path(f).read_bytes()))
        except OSError as e:
            raise RatingsError(f"{f}: cannot read ({e.strerror or e})") from None
    return import_exports(run_dir, exports, **kwargs)
