"""Bounds on what one suite may ask for, the plan's size, and label templates.

A mistyped exponent (``seeds: 10^6`` written out, a matrix of six 100-value axes) should fail
validation with one line, not plan for hours: ``MAX_SEEDS`` seeds, ``MAX_GENERATORS`` generators after
matrix expansion, clips of at most ``MAX_DURATION_S`` seconds, and at most ``MAX_CLIPS`` clips in all
(prompts x generators x seeds; ``plan_size`` says how big a run is, and ``bench validate`` and
``bench run`` print it before anything is generated). The size of the YAML file itself is bounded in
``bench.yamlsource``.

Labels are ``str.format`` templates over the generator's params (``"mg-{pattern}-{size}"``);
``label_fields`` allows plain names only, so formatting a label cannot reach into objects.
"""

from __future__ import annotations

import string
from typing import TYPE_CHECKING

from bench.yamlsource import Problem, SuiteError

if TYPE_CHECKING:
    from bench.suite import PlannedSuite

#: bounds on what one suite may ask for (a mistyped exponent should fail validation, not plan for hours)
MAX_SEEDS = 1000
MAX_GENERATORS = 1000  # after matrix expansion
MAX_DURATION_S = 3600.0
MAX_CLIPS = 1_000_000  # prompts x generators x seeds


def label_fields(label: str) -> list[str]:
    """The ``{param}`` placeholders of a label; only plain names are allowed (no ``{a.b}``,
    ``{a[0]}``, ``{a!r}``, ``{a:>5}``, ``{}``), so formatting a label cannot reach into objects."""
    try:
        parsed = list(string.Formatter().parse(label))
    except ValueError as e:
        raise ValueError(f"label {label!r} is not a valid template ({e}); write {{param}} placeholders "
                         "and double braces {{ }} for literal ones") from None
    names = []
    for _, name, spec, conv in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conv:
            shown = "{" + name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
            raise ValueError(f"label placeholder {shown} is not a plain parameter name; write "
                             "{param} with a name from params or matrix (or {name})")
        names.append(name)
    return names


def plan_size(planned: PlannedSuite, n_prompts: int | None = None, n_generators: int | None = None) -> str:
    """``"plan: P prompt(s) x G generator(s) x S seed(s) = N clip(s) of D s"``; raises ``SuiteError``
    past ``MAX_CLIPS``. ``n_prompts`` defaults to the dataset's ``count()`` (nothing is built; P is
    "?" when the dataset cannot say) cut to ``dataset.limit``."""
    limit, at_most = planned.suite.dataset.limit, ""
    if n_prompts is None:
        try:
            n_prompts = planned.make(planned.dataset).count()
        except Exception as e:  # the dataset's own error, on one line
            raise SuiteError([Problem(str(planned.path), None, "dataset",
                                      f"{planned.dataset.name}: {type(e).__name__}: {e}")]) from None
        if n_prompts is None and limit is not None:
            n_prompts, at_most = limit, "at most "
        elif n_prompts is not None and limit is not None:
            n_prompts = min(n_prompts, limit)
    gens = len(planned.generators) if n_generators is None else n_generators
    seeds = len(planned.suite.generation.seeds)
    total = None if n_prompts is None else n_prompts * gens * seeds
    text = (f"plan: {at_most}{'?' if n_prompts is None else n_prompts} prompt(s) x {gens} generator(s) x "
            f"{seeds} seed(s) = {at_most}{'?' if total is None else total} clip(s) of "
            f"{planned.suite.generation.duration_s:g} s")
    if total is not None and total > MAX_CLIPS:
        raise SuiteError([Problem(str(planned.path), None, "", f"{text}: more than {MAX_CLIPS} clips; "
                                  "lower dataset.limit, the seeds or the generators")])
    return text
