"""What a listening test holds: the protocols, the reproducible choice of items, and the key file.

An *item* is one (prompt, seed) of the run; its *stimuli* are the clips rated on one screen: one per
system of the run (generator label), plus, in MUSHRA, the hidden reference and the low-pass anchor.
Only items for which every system has a clip on disk (and, in MUSHRA, a reference clip) can be used.

Choice of items (``choose_items``), reproducible from ``raters_seed``: the prompts are shuffled, the
seeds of each prompt are shuffled, and items are taken round-robin over the prompts (every prompt's
first seed, then every prompt's second seed, ...) until ``n`` items are taken. So the test is
stratified over prompts: no prompt gets a second item before every prompt has one.

Blindness: stimulus ids are the first 16 hex digits of sha256(secret salt, item, system, kind), the
salt a random 128-bit value kept in the key only; audio files are named ``<stimulus id>.wav``; items
are ``i01``, ``i02``, ... in chosen order, and stimuli are listed in the page sorted by id, so
neither names nor order tell which system a clip comes from. The key (``test.json`` in the run
directory, never in the page folder) maps ids back to systems. Running ``bench listen`` again makes
a new test (new salt, new ids, new test id) over the same items when the seed is the same.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.files import read_json
from bench.run_results import load_results, load_samples

KEY_FORMAT = "musicgen-bench/listening-test"
KEY_VERSION = 1
LISTENING_DIR = "listening"
#: stimulus kinds: a generator's clip, the hidden reference and the low anchor (MUSHRA only)
SYSTEM, HIDDEN_REFERENCE, ANCHOR = "system", "hidden_reference", "anchor"


class ListeningError(ValueError):
    """A listening test that cannot be built or read; the message names the file or option."""


@dataclass(frozen=True)
class Scale:
    """One slider: ``name`` in exports, ``label`` and ``instructions`` shown to raters, integer range."""

    name: str
    label: str
    low: int
    high: int
    instructions: str


#: paraphrasing Copet et al. 2023, section 4.1 ("Human studies"): overall quality and relevance to
#: the text, each on a 1-100 scale
OVL = Scale(
    "ovl",
    "Overall quality (OVL)",
    1,
    100,
    "How good is the perceptual quality of this clip? Rate from 1 (very poor) to 100 (excellent), "
    "whatever the text says.",
)
REL = Scale(
    "rel",
    "Relevance to the text (REL)",
    1,
    100,
    "How well does this clip match the text description above? Rate from 1 (not at all) to 100 (perfectly).",
)
#: ITU-R BS.1534-3: basic audio quality against the open reference on the 0-100 continuous quality
#: scale (80-100 excellent, 60-80 good, 40-60 fair, 20-40 poor, 0-20 bad)
MUSHRA = Scale(
    "mushra",
    "Basic audio quality (MUSHRA)",
    0,
    100,
    "Compare each clip with the reference and rate its basic audio quality from 0 to 100: "
    "80-100 excellent, 60-80 good, 40-60 fair, 20-40 poor, 0-20 bad. One of the clips is the "
    "reference itself, hidden among them: rate it 100 when you find it.",
)
PROTOCOLS: dict[str, tuple[Scale, ...]] = {"ovl-rel": (OVL, REL), "mushra": (MUSHRA,)}
#: BS.1534-3 low anchor: the reference low-pass filtered at 3.5 kHz
ANCHOR_CUTOFF_HZ = 3500.0


@dataclass
class Stimulus:
    id: str
    kind: str  # SYSTEM, HIDDEN_REFERENCE or ANCHOR
    system: str  # generator label; "reference" / "anchor" for the MUSHRA extras
    source: str  # path of the run's audio, relative to the run directory (or absolute)

    @property
    def file(self) -> str:
        return f"audio/{self.id}.wav"


@dataclass
class Item:
    id: str
    prompt_id: str
    seed: int | None
    text: str
    stimuli: list[Stimulus]
    reference_source: str | None = None  # MUSHRA's open reference
    reference_id: str | None = None

    @property
    def reference_file(self) -> str | None:
        return f"audio/{self.reference_id}.wav" if self.reference_id else None


@dataclass
class TestKey:
    """Everything about one test, including what the page must not show (``test.json``)."""

    test_id: str
    protocol: str
    raters_seed: int
    items: list[Item]
    systems: list[str]
    salt: str
    target_lufs: float | None = -14.0
    common_gain_db: float = 0.0
    created: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def scales(self) -> tuple[Scale, ...]:
        return PROTOCOLS[self.protocol]

    def stimuli(self) -> dict[str, tuple[Item, Stimulus]]:
        return {s.id: (item, s) for item in self.items for s in item.stimuli}

    def to_json(self) -> dict[str, Any]:
        return {
            "format": KEY_FORMAT,
            "version": KEY_VERSION,
            "test_id": self.test_id,
            "protocol": self.protocol,
            "raters_seed": self.raters_seed,
            "created": self.created,
            "systems": self.systems,
            "salt": self.salt,
            "target_lufs": self.target_lufs,
            "common_gain_db": self.common_gain_db,
            "extra": self.extra,
            "items": [
                {
                    "id": it.id,
                    "prompt_id": it.prompt_id,
                    "seed": it.seed,
                    "text": it.text,
                    "reference_source": it.reference_source,
                    "reference_id": it.reference_id,
                    "stimuli": [vars(s) for s in it.stimuli],
                }
                for it in self.items
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str) -> TestKey:
        if (
            not isinstance(data, dict)
            or data.get("format") != KEY_FORMAT
            or data.get("version") != KEY_VERSION
        ):
            raise ListeningError(
                f"{where}: not a listening-test key (format {KEY_FORMAT!r} version {KEY_VERSION} expected)"
            )
        try:
            items = [
                Item(
                    it["id"],
                    it["prompt_id"],
                    it["seed"],
                    it["text"],
                    [Stimulus(**s) for s in it["stimuli"]],
                    it.get("reference_source"),
                    it.get("reference_id"),
                )
                for it in data["items"]
            ]
            return cls(
                data["test_id"],
                data["protocol"],
                int(data["raters_seed"]),
                items,
                data["systems"],
                data["salt"],
                data.get("target_lufs"),
                float(data.get("common_gain_db", 0.0)),
                data.get("created", ""),
                dict(data.get("extra") or {}),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ListeningError(f"{where}: damaged listening-test key ({type(e).__name__}: {e})") from e


def stimulus_id(salt: str, *parts: Any) -> str:
    return hashlib.sha256("\x1f".join([salt, *map(str, parts)]).encode()).hexdigest()[:16]


def choose_items(candidates: Sequence[tuple[str, Any]], n: int, raters_seed: int) -> list[tuple[str, Any]]:
    """``n`` of the (prompt_id, seed) ``candidates``, stratified over prompts (module docstring)."""
    rng = np.random.default_rng(raters_seed)
    by_prompt: dict[str, list[Any]] = {}
    for prompt_id, seed in candidates:
        by_prompt.setdefault(prompt_id, []).append(seed)
    prompts = sorted(by_prompt)
    prompts = [prompts[i] for i in rng.permutation(len(prompts))]
    queues = {
        p: [sorted(by_prompt[p], key=str)[i] for i in rng.permutation(len(by_prompt[p]))] for p in prompts
    }
    chosen: list[tuple[str, Any]] = []
    depth = 0
    while len(chosen) < n and any(len(q) > depth for q in queues.values()):
        chosen += [(p, queues[p][depth]) for p in prompts if len(queues[p]) > depth][: n - len(chosen)]
        depth += 1
    return chosen


def _seed(value: Any) -> int | None:
    return None if value is None or value != value else int(value)


def plan_test(run_dir: Path, protocol: str, n_items: int, raters_seed: int) -> TestKey:
    """A new test over the run's samples table (audio not written yet; see ``bench.listening.page``)."""
    if protocol not in PROTOCOLS:
        raise ListeningError(f"--protocol {protocol!r}: expected one of {', '.join(PROTOCOLS)}")
    if n_items < 1:
        raise ListeningError(f"--items {n_items}: expected at least 1")
    results = load_results(run_dir)
    name = str(results.meta.get("samples_table") or "samples.csv")
    frame = load_samples(run_dir, name)
    if frame is None:
        raise ListeningError(f"{run_dir / name}: no per-sample table; a listening test needs the run's clips")
    systems = list(dict.fromkeys(str(g) for g in frame["generator"]))
    clips: dict[tuple[str, Any], dict[str, dict[str, Any]]] = {}
    for row in frame.to_dict("records"):
        clip = row.get("clip")
        if isinstance(clip, str) and clip and _resolve(run_dir, clip).is_file():
            clips.setdefault((str(row["prompt_id"]), _seed(row.get("seed"))), {})[str(row["generator"])] = row
    needs_ref = protocol == "mushra"
    candidates = [
        k
        for k, rows in clips.items()
        if len(rows) == len(systems) and (not needs_ref or _has_reference(run_dir, rows))
    ]
    if not candidates:
        what = " and a reference clip" if needs_ref else ""
        raise ListeningError(
            f"{run_dir / name}: no (prompt, seed) has a clip from every system "
            f"({', '.join(systems)}){what} on disk"
        )
    salt = secrets.token_hex(16)
    items = []
    for i, (prompt_id, seed) in enumerate(choose_items(candidates, n_items, raters_seed)):
        rows = clips[(prompt_id, seed)]
        item_id = f"i{i + 1:02d}"
        stimuli = [
            Stimulus(stimulus_id(salt, item_id, SYSTEM, s), SYSTEM, s, str(rows[s]["clip"])) for s in systems
        ]
        text = next((str(r["prompt"]) for r in rows.values() if isinstance(r.get("prompt"), str)), "")
        item = Item(item_id, prompt_id, seed, text, stimuli)
        if needs_ref:
            ref = str(next(r["reference"] for r in rows.values() if isinstance(r.get("reference"), str)))
            item.reference_source, item.reference_id = ref, stimulus_id(salt, item_id, "open-reference")
            item.stimuli += [
                Stimulus(
                    stimulus_id(salt, item_id, HIDDEN_REFERENCE), HIDDEN_REFERENCE, "hidden reference", ref
                ),
                Stimulus(stimulus_id(salt, item_id, ANCHOR), ANCHOR, "anchor (3.5 kHz low-pass)", ref),
            ]
        item.stimuli.sort(key=lambda s: s.id)
        items.append(item)
    digest = hashlib.sha256(
        json.dumps([salt, protocol, raters_seed, [vars(s) for it in items for s in it.stimuli]]).encode()
    )
    return TestKey(f"t{digest.hexdigest()[:11]}", protocol, raters_seed, items, systems, salt)


def _resolve(run_dir: Path, path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else run_dir / p


def _has_reference(run_dir: Path, rows: dict[str, dict[str, Any]]) -> bool:
    refs = [
        r.get("reference") for r in rows.values() if isinstance(r.get("reference"), str) and r["reference"]
    ]
    return bool(refs) and _resolve(run_dir, str(refs[0])).is_file()


def folder_of(run_dir: str | Path, test_id: str) -> Path:
    return Path(run_dir) / LISTENING_DIR / test_id


def load_keys(run_dir: str | Path) -> dict[str, TestKey]:
    """Every listening test of the run, by test id (empty when there is none)."""
    root = Path(run_dir) / LISTENING_DIR
    out = {}
    for path in sorted(root.glob("*/test.json")) if root.is_dir() else []:
        key = TestKey.from_json(read_json(path, ListeningError, "listening-test key"), str(path))
        out[key.test_id] = key
    return out
