"""Step 1 of ``bench run``: the plan, every (generator, prompt, seed) of a run as an ``EvalItem``.

Prompts are the dataset's, cut to ``dataset.limit`` and then ``--limit``; generators are the suite's
after matrix expansion, filtered by ``--only`` (label or registry name); seeds are
``generation.seeds``. Items are numbered across the whole plan (generators in suite order, then
seeds, then prompts): item ``i`` belongs to rank ``i % world_size`` (``EvalItem.mine``). Each item is
keyed by ``bench.store.clip_key`` (generator fingerprint, prompt, seed, duration, and the generator's
``clip_identity``, e.g. the digest of the file a ``files`` clip is read from); it is ``cached`` when
the store holds a sound entry for it (``RunStore.has_clip`` checks the entry). A generator may plan
fewer prompts than the dataset's (``Generator.plan_prompts``: a folder of clips with some missing).
The size of the plan is printed first, and a plan past ``bench.suite_limits.MAX_CLIPS`` is refused.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.api import AudioClip, Generator, Prompt
from bench.distributed import World
from bench.store import RunStore, clip_key
from bench.suite import PlannedSuite, Plugin
from bench.suite_limits import plan_size


class RunError(RuntimeError):
    """A run that cannot finish; the message names the generator, prompt, seed or metric."""


def slug(text: str) -> str:
    """A file name for ``text``: itself when it is made of ``[A-Za-z0-9._=-]``; otherwise those
    characters (runs of others as ``_``) plus 8 hex digits of the text's sha256, so that distinct
    texts (all-CJK prompt ids, labels with brackets) never share a file name."""
    safe = re.sub(r"[^A-Za-z0-9._=-]+", "_", text).strip("_")[:80]
    if safe == text and safe not in (".", ".."):
        return safe
    return f"{safe or 'id'}-{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


@dataclass
class EvalItem:
    """One (generator, prompt, seed) as it is evaluated."""

    prompt: Prompt
    seed: int
    key: str
    cached: bool
    mine: bool = True  # this rank's to generate and score (always, in a one-process run)
    clip: AudioClip | None = None
    reference: AudioClip | None = None
    row: dict[str, Any] = field(default_factory=dict)


@dataclass
class PlanEntry:
    """One generator of the plan with its items; ``load`` runs ``Generator.load`` once."""

    plugin: Plugin
    generator: Generator
    items: list[EvalItem]
    fingerprint: str
    loaded: bool = False

    def load(self, device: str) -> Generator:
        if not self.loaded:
            self.generator.load(device)
            self.loaded = True
        return self.generator

    def mine(self) -> PlanEntry:
        """The same generator with only this rank's items."""
        return PlanEntry(self.plugin, self.generator, [it for it in self.items if it.mine],
                         self.fingerprint, self.loaded)


def select_generators(planned: PlannedSuite, only: Sequence[str]) -> list[Plugin]:
    """The suite's generators, or those ``only`` names (by label or registry name)."""
    gens = planned.generators
    if not only:
        return gens
    known = {g.label for g in gens} | {g.name for g in gens}
    for want in only:
        if want not in known:
            close = difflib.get_close_matches(want, sorted(known), n=3)
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise RunError(f"--only {want!r} matches no generator of the suite{hint} "
                           f"(labels: {', '.join(g.label for g in gens)})")
    return [g for g in gens if g.label in only or g.name in only]


def load_prompts(planned: PlannedSuite,
                 limit: int | None) -> tuple[list[Prompt], dict[str, Any], list[str]]:
    """The dataset's prompts after ``dataset.limit`` and ``limit``, the dataset's protocol, and the
    ids of all its prompts (before the limits: what a generator's files may name)."""
    dataset = planned.make(planned.dataset)
    prompts = dataset.prompts()
    dataset_ids = [p.id for p in prompts]
    for n in (planned.suite.dataset.limit, limit):
        if n is not None:
            prompts = prompts[:n]
    if not prompts:
        raise RunError(f"dataset {planned.dataset.name!r} gave no prompts")
    ids = [p.id for p in prompts]
    if len(set(ids)) != len(ids):
        raise RunError(f"dataset {planned.dataset.name!r} has duplicate prompt ids")
    protocol = {**dataset.protocol(), "name": planned.dataset.name, "n_prompts": len(prompts)}
    return prompts, protocol, dataset_ids


def make_plan(planned: PlannedSuite, generators: list[Plugin], prompts: list[Prompt], world: World,
              store: RunStore, dataset_ids: Sequence[str] | None = None) -> list[PlanEntry]:
    """Every item of the run (see the module docstring); an item is ``cached`` when this rank owns
    it and its clip is in the store. Each generator plans the prompts it has clips for
    (``Generator.plan_prompts``; ``dataset_ids`` defaults to the prompts' ids), and its
    ``clip_identity`` joins each clip's key."""
    settings = planned.suite.generation
    size = plan_size(planned, len(prompts), len(generators))  # SuiteError past MAX_CLIPS
    if world.is_main:
        print(size, file=sys.stderr)
    for what, names in (("generator labels", [g.label for g in generators]),
                        ("prompt ids", [p.id for p in prompts])):
        slugs = [slug(n) for n in names]
        clash = sorted({n for n, s in zip(names, slugs) if slugs.count(s) > 1})
        if clash:
            raise RunError(f"{what} {clash} map to the same audio file name; rename them")
    plan, index = [], 0
    for plugin in generators:
        generator = planned.make(plugin)
        fp = generator.fingerprint()
        try:
            planned_prompts = generator.plan_prompts(
                prompts, settings.seeds, [p.id for p in prompts] if dataset_ids is None else dataset_ids)
        except ValueError as e:
            raise RunError(f"generator {plugin.label!r}: {e}") from None
        items = []
        for seed in settings.seeds:
            for p in planned_prompts:
                key = clip_key(fp, p, seed, settings.duration_s, generator.clip_identity(p, seed))
                mine = world.owns(index)
                cached = mine and store.has_clip(key, p.id, seed)  # checked: a damaged entry is not cached
                items.append(EvalItem(p, seed, key, cached, mine=mine))
                index += 1
        plan.append(PlanEntry(plugin, generator, items, fp))
    return plan
