"""Suite files: pydantic v2 models for the YAML, matrix expansion, and whole-suite validation.

A suite (``suites/*.yaml``, loaded with safe YAML only)::

    name: ci                       # slug; the default run directory is runs/<name>
    dataset: {name: audio-folder, params: {root: data/tones, split: test}, limit: 6}
    generation:
      duration_s: 2.0
      seeds: [0]
      batch_size: 4
      loudness_lufs: -14.0         # the paper's protocol; null turns normalisation off
      normalize_reference: false   # the paper normalises generated audio only
      trim_to_reference: true      # cut generated and reference audio to their common length
    generators:
      - {name: noise, label: noise}
      - name: musicgen
        label: "mg-{pattern}-{size}"   # {param} placeholders; without them "[k=v,...]" is appended
        params: {checkpoint: "models/{size}-{pattern}"}
        matrix: {pattern: [delay, parallel], size: [small, medium]}   # ablation grid
    metrics: [{name: fad}]
    embedders: {vggish: {checkpoint: weights/vggish.pth}}   # params per embedder name
    report: {html: report.html, samples: samples}

Validation (``load_suite``) checks the whole file before anything runs: the schema (extra keys are
errors), plug-in names (with close matches), each plug-in's own ``Params``, output paths (relative,
inside the run directory), unique labels, and each plug-in's ``check()`` (data and weights present).
Every problem names the file, the line and the field. Relative ``Path`` fields of plug-in params are
resolved against the suite file's folder.
"""

from __future__ import annotations

import itertools
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bench.api import Context, Dataset, Generator, Params
from bench.registry import DATASETS, EMBEDDERS, GENERATORS, METRICS, Registry, RegistryError
from bench.suite_limits import MAX_DURATION_S, MAX_GENERATORS, MAX_SEEDS, label_fields, plan_size
from bench.yamlsource import LineMap, Loc, Problem, SuiteError, format_loc, load_yaml


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _relative_output(value: str) -> str:
    p = PurePosixPath(value.replace("\\", "/"))
    if not value or p.is_absolute() or ".." in p.parts or value.startswith("~"):
        raise ValueError(f"{value!r} must be a relative path inside the run directory "
                         f"(no absolute path, no '..', no '~')")
    return value


class PluginSpec(_Model):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class DatasetSpec(PluginSpec):
    limit: int | None = Field(default=None, ge=1)


class GenerationSpec(_Model):
    duration_s: float = Field(gt=0, le=MAX_DURATION_S)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1, max_length=MAX_SEEDS)
    batch_size: int = Field(default=8, ge=1)
    loudness_lufs: float | None = -14.0
    normalize_reference: bool = False
    trim_to_reference: bool = True

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, v: list[int]) -> list[int]:
        twice = sorted({s for s in v if v.count(s) > 1}) if len(set(v)) != len(v) else []
        if twice:
            raise ValueError(f"seed(s) {twice} listed more than once; each seed is one clip per prompt, "
                             "a repeated seed would count the same clip twice")
        return v


class GeneratorSpec(PluginSpec):
    label: str | None = None
    matrix: dict[str, list[Any]] = Field(default_factory=dict)

    @field_validator("matrix")
    @classmethod
    def _non_empty(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        size = 1
        for key, values in v.items():
            if not values:
                raise ValueError(f"matrix entry {key!r} has no values")
            size *= len(values)
        if size > MAX_GENERATORS:
            raise ValueError(f"the matrix expands to {size} generators; at most {MAX_GENERATORS}")
        return v

    @field_validator("label")
    @classmethod
    def _plain_placeholders(cls, v: str | None) -> str | None:
        if v is not None:
            label_fields(v)
        return v


class MetricSpec(PluginSpec):
    pass


class ReportSpec(_Model):
    title: str | None = None
    html: str | None = "report.html"
    samples: str = "samples"
    paper_numbers: bool = True

    @field_validator("html", "samples")
    @classmethod
    def _inside_run_dir(cls, v: str | None) -> str | None:
        return v if v is None else _relative_output(v)


class Suite(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    dataset: DatasetSpec
    generation: GenerationSpec
    generators: list[GeneratorSpec] = Field(min_length=1)
    metrics: list[MetricSpec] = Field(default_factory=list)
    embedders: dict[str, dict[str, Any]] = Field(default_factory=dict)
    report: ReportSpec = Field(default_factory=ReportSpec)


@dataclass
class Plugin:
    """A resolved plug-in: registry name, class, validated params, where it is in the file."""

    name: str
    cls: type
    params: Params
    loc: Loc
    label: str = ""
    raw_params: dict[str, Any] = field(default_factory=dict)


@dataclass
class PlannedSuite:
    """A validated suite with every plug-in resolved (nothing loaded, nothing generated)."""

    path: Path
    suite: Suite
    run_dir: Path
    context: Context
    dataset: Plugin
    generators: list[Plugin]
    metrics: list[Plugin]
    embedders: dict[str, Plugin]

    def make(self, plugin: Plugin) -> Any:
        """Instantiate a plug-in with its params (and the context, for datasets and generators)."""
        if issubclass(plugin.cls, Dataset | Generator):
            return plugin.cls(plugin.params, self.context)
        return plugin.cls(plugin.params)


def _path_fields(model: type[BaseModel]) -> list[str]:
    def has_path(tp: Any) -> bool:
        if tp is Path:
            return True
        if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
            return any(has_path(a) for a in typing.get_args(tp))
        return False
    return [name for name, f in model.model_fields.items() if has_path(f.annotation)]


def validate_params(cls: type, raw: Mapping[str, Any], base_dir: Path) -> Params:
    """``cls.Params`` from raw YAML values; relative ``Path`` fields resolved against ``base_dir``."""
    params_cls: type[Params] = getattr(cls, "Params", Params)
    params = params_cls.model_validate(dict(raw))
    update = {}
    for name in _path_fields(params_cls):
        value = getattr(params, name)
        if isinstance(value, Path) and not value.expanduser().is_absolute():
            update[name] = (base_dir / value).resolve()
        elif isinstance(value, Path):
            update[name] = value.expanduser()
    return params.model_copy(update=update) if update else params


class _Collector:
    def __init__(self, path: Path, lines: LineMap) -> None:
        self.path, self.lines, self.problems = path, lines, []

    def add(self, loc: Loc, message: str) -> None:
        self.problems.append(Problem(str(self.path), self.lines.line(loc), format_loc(loc), message))

    def pydantic(self, err: ValidationError, prefix: Loc, remap: Mapping[str, Loc] | None = None) -> None:
        for e in err.errors():
            loc = tuple(e["loc"])
            if remap and loc and loc[0] in remap:
                loc = tuple(remap[loc[0]]) + loc[1:]
            else:
                loc = prefix + loc
            shown = repr(e["input"])
            shown = shown if len(shown) <= 80 else f"{shown[:60]}... ({len(shown)} characters)"
            got = f" (got {shown})" if e["type"] not in ("missing", "extra_forbidden") else ""
            self.add(loc, f"{e['msg']}{got}")


def _resolve(reg: Registry, name: str, loc: Loc, out: _Collector) -> type | None:
    try:
        return reg.get(name)
    except RegistryError as e:
        out.add(loc, str(e))
        return None


def _expand(spec: GeneratorSpec) -> list[tuple[str, dict[str, Any]]]:
    keys = list(spec.matrix)
    combos = list(itertools.product(*(spec.matrix[k] for k in keys))) if keys else [()]
    out = []
    for combo in combos:
        params = {**spec.params, **dict(zip(keys, combo))}
        base = spec.label or spec.name
        if "{" in base or "}" in base:
            values = {"name": spec.name, **params}
            unknown = [n for n in label_fields(base) if n not in values]
            if unknown:
                raise KeyError(", ".join(unknown))
            label = base.format_map(values)
        elif keys:
            label = f"{base}[{','.join(f'{k}={v}' for k, v in zip(keys, combo))}]"
        else:
            label = base
        out.append((label, params))
    return out


def load_suite(path: str | Path, *, run_dir: str | Path | None = None, check: bool = True,
               device: str = "cpu", only: Sequence[str] = ()) -> PlannedSuite:
    """Validate a suite file completely; raises ``SuiteError`` listing every problem found.

    ``only`` (generator labels or registry names, as ``bench run --only``) limits the ``check()`` of
    generators to those selected; every generator is still validated against its ``Params``."""
    path = Path(path)
    data, lines = load_yaml(path)
    out = _Collector(path, lines)
    if not isinstance(data, dict):
        out.add((), f"the suite must be a YAML mapping at the top level, got {type(data).__name__}")
        raise SuiteError(out.problems)
    try:
        suite = Suite.model_validate(data)
    except ValidationError as e:
        out.pydantic(e, ())
        raise SuiteError(out.problems) from None
    base_dir = path.resolve().parent
    run_dir = Path(run_dir) if run_dir is not None else Path("runs") / suite.name
    cache_dir = run_dir.resolve() / "cache"

    def open_dataset(name: str, raw: Mapping[str, Any]) -> Dataset:
        cls = DATASETS.get(name)
        return cls(validate_params(cls, raw, base_dir), context)

    context = Context(cache_dir=cache_dir, device=device, open_dataset=open_dataset, base_dir=base_dir)

    def plugin(reg: Registry, name: str, raw: Mapping[str, Any], loc: Loc,
               remap: Mapping[str, Loc] | None = None, label: str = "") -> Plugin | None:
        cls = _resolve(reg, name, loc + ("name",), out)
        if cls is None:
            return None
        try:
            params = validate_params(cls, raw, base_dir)
        except ValidationError as e:
            out.pydantic(e, loc + ("params",), remap)
            return None
        return Plugin(name, cls, params, loc, label=label, raw_params=dict(raw))

    dataset = plugin(DATASETS, suite.dataset.name, suite.dataset.params, ("dataset",))
    generators: list[Plugin] = []
    seen: dict[str, Loc] = {}
    for i, spec in enumerate(suite.generators):
        loc: Loc = ("generators", i)
        clash = set(spec.matrix) & set(spec.params)
        for key in sorted(clash):
            out.add(loc + ("matrix", key), f"{key!r} is set both in params and in matrix")
        try:
            expanded = _expand(spec)
        except (KeyError, IndexError, ValueError) as e:
            out.add(loc + ("label",), f"label {spec.label!r} names an unknown parameter ({e})")
            continue
        if len(seen) + len(expanded) > MAX_GENERATORS:
            out.add(loc, f"the suite expands to more than {MAX_GENERATORS} generators")
            break
        remap = {k: loc + ("matrix", k) for k in spec.matrix}
        for label, raw in expanded:
            if label in seen:
                out.add(loc + ("label",),
                        f"label {label!r} is used twice (also at {format_loc(seen[label])})")
                continue
            seen[label] = loc
            p = plugin(GENERATORS, spec.name, raw, loc, remap, label)
            if p is not None:
                generators.append(p)
    metrics = [p for i, m in enumerate(suite.metrics)
               if (p := plugin(METRICS, m.name, m.params, ("metrics", i))) is not None]
    embedders: dict[str, Plugin] = {}
    for m in metrics:
        try:
            needed = m.cls(m.params).embedder_names()
        except Exception as e:
            out.add(m.loc + ("name",), f"metric {m.name!r} could not be constructed: {e}")
            continue
        for name in needed:
            if name not in embedders:
                loc = ("embedders", name) if name in suite.embedders else m.loc
                p = plugin(EMBEDDERS, name, suite.embedders.get(name, {}), loc)
                if p is not None:
                    embedders[name] = p
    for name in suite.embedders:
        if name not in embedders and name in EMBEDDERS:
            out.add(("embedders", name), f"embedder {name!r} is configured but no metric uses it")
        elif name not in EMBEDDERS:
            out.add(("embedders", name), EMBEDDERS.unknown_message(name))
    if out.problems or dataset is None:
        raise SuiteError(out.problems)
    planned = PlannedSuite(path, suite, run_dir, context, dataset, generators, metrics, embedders)
    if check:
        selected = [g for g in generators if not only or g.label in only or g.name in only]
        for p in [dataset, *selected, *metrics, *embedders.values()]:
            try:
                missing = planned.make(p).check()
            except Exception as e:  # a check that crashes is reported, not hidden
                missing = [f"check() failed: {type(e).__name__}: {e}"]
            where = f"{p.label} ({p.name})" if p.label else p.name
            for line in missing:
                out.add(p.loc + ("name",), f"{where}: {line}")
        if out.problems:
            raise SuiteError(out.problems)
    return planned


def validate_command(args: list[str]) -> int:
    """``bench validate SUITE [--out DIR]``: check everything without generating."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(prog="bench validate", description=validate_command.__doc__)
    ap.add_argument("suite")
    ap.add_argument("--out", default=None, help="run directory (default runs/<suite name>)")
    ns = ap.parse_args(args)
    try:
        planned = load_suite(ns.suite, run_dir=ns.out)
    except SuiteError as e:
        print(f"bench validate: {e}", file=sys.stderr)
        return 1
    try:
        size = plan_size(planned)
    except (SuiteError, OSError, ValueError) as e:
        print(f"bench validate: {e}", file=sys.stderr)
        return 1
    labels = ", ".join(g.label for g in planned.generators)
    print(f"{ns.suite}: OK (dataset {planned.dataset.name}; generators {labels}; "
          f"metrics {', '.join(m.name for m in planned.metrics) or 'none'}; {size})")
    return 0
