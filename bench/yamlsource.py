"""Safe YAML with line numbers: every problem in a suite names the file, the line and the field.

``load_yaml`` parses with ``yaml.SafeLoader`` only (no Python tags, no code) and returns the data with
a ``LineMap`` from field paths (``("generators", 0, "params", "top_k")``) to 1-based line numbers.
``Problem`` is one error; ``SuiteError`` carries all of them so a user sees one complete list.

Bounds, so that a hostile or mistaken file fails at once with one line instead of eating the machine:
a suite file is at most ``MAX_SUITE_BYTES``; its node tree, counted with every alias expanded, at most
``MAX_NODES`` nodes ("billion laughs" files are refused before anything walks them); nesting at most
``MAX_DEPTH`` levels; a recursive alias is refused. A key given twice in one mapping is an error (YAML
would keep the last one silently).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Loc = tuple[str | int, ...]

#: largest suite file read (long prompt lists belong in a dataset folder, not in the suite)
MAX_SUITE_BYTES = 1 << 20
#: most YAML nodes, counted with every alias expanded
MAX_NODES = 100_000
#: deepest nesting of mappings and sequences
MAX_DEPTH = 64
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class Problem:
    """One error in a suite: where (file, line, field path) and what."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class SuiteError(ValueError):
    """A suite that cannot run. ``problems`` lists every error found, in file order."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = sorted(set(problems), key=lambda p: (p.file, p.line or 0, p.field))
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the suite:\n{lines}")


def format_loc(loc: Loc) -> str:
    """``("generators", 0, "params", "top_k")`` -> ``generators[0].params.top_k``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class LineMap:
    """Field path -> line of the YAML node (the key's line for mapping entries)."""

    def __init__(self) -> None:
        self.lines: dict[Loc, int] = {}

    def line(self, loc: Loc) -> int | None:
        """The line of ``loc`` or of its nearest ancestor that the file spells out."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get((), None)

    def walk(self, node: yaml.Node, loc: Loc = ()) -> None:
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    key: str | int = key_node.value
                    self.lines[loc + (key,)] = key_node.start_mark.line + 1
                    self.walk(value_node, loc + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.walk(item, loc + (i,))


def _shape_problems(root: yaml.Node, file: str) -> list[Problem]:
    """Size (aliases expanded), depth, recursive aliases and duplicate keys of a composed document."""
    size: dict[int, int] = {}
    problems: list[Problem] = []
    open_nodes: set[int] = set()

    def count(node: yaml.Node, loc: Loc, depth: int) -> int:
        if id(node) in size:
            return size[id(node)]
        if id(node) in open_nodes:
            raise _Refused(node, format_loc(loc), "a recursive alias (a node that contains itself)")
        if depth > MAX_DEPTH:
            raise _Refused(node, format_loc(loc[:4]) + "...", f"nested deeper than {MAX_DEPTH} levels")
        open_nodes.add(id(node))
        total = 1
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key_node, value_node in node.value:
                key: str | int = getattr(key_node, "value", "?")
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE_TAG:
                    line = key_node.start_mark.line + 1
                    if key in first:
                        problems.append(Problem(file, line, format_loc(loc + (key,)),
                                                f"key {key!r} is given twice (first at line {first[key]}); "
                                                "remove one"))
                    first.setdefault(str(key), line)
                total += count(key_node, loc, depth + 1) + count(value_node, loc + (str(key),), depth + 1)
                if total > MAX_NODES:
                    break
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                total += count(item, loc + (i,), depth + 1)
                if total > MAX_NODES:
                    break
        if total > MAX_NODES:
            raise _Refused(node, format_loc(loc), f"expands to more than {MAX_NODES} YAML nodes (aliases "
                           "counted each time they are used); a suite is a short file")
        open_nodes.discard(id(node))
        size[id(node)] = total
        return total

    try:
        count(root, (), 0)
    except _Refused as e:
        return [Problem(file, e.node.start_mark.line + 1, e.field, e.message)]
    return problems


class _Refused(Exception):
    def __init__(self, node: yaml.Node, field: str, message: str) -> None:
        self.node, self.field, self.message = node, field, message


def load_yaml(path: Path) -> tuple[Any, LineMap]:
    """Parse ``path`` safely within the bounds above. Raises ``SuiteError`` for a missing, unreadable,
    oversized or malformed file."""
    path = Path(path)
    file = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_SUITE_BYTES:
            raise SuiteError([Problem(file, None, "", f"suite file is {size / 1e6:.1f} MB; a suite may be "
                                      f"at most {MAX_SUITE_BYTES // 1024} KiB (put long prompt lists in a "
                                      "dataset folder)")])
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SuiteError([Problem(file, None, "", "suite file not found")]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise SuiteError([Problem(file, None, "", f"cannot read the suite file ({e})")]) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            problems = _shape_problems(node, file)
            if problems:
                raise SuiteError(problems)
        data = loader.construct_document(node) if node is not None else None
    except SuiteError:
        raise
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        what = " ".join(str(x) for x in (getattr(e, "context", None), getattr(e, "problem", None)) if x)
        raise SuiteError([Problem(file, line, "", f"malformed YAML: {what or e}")]) from None
    except RecursionError:
        raise SuiteError([Problem(file, None, "", f"malformed YAML: nested too deeply (a suite nests at "
                                  f"most {MAX_DEPTH} levels)")]) from None
    except (ValueError, TypeError, OverflowError) as e:  # e.g. a date like 2020-13-45
        raise SuiteError([Problem(file, None, "", f"malformed YAML: a value cannot be read ({e})")]) from None
    finally:
        loader.dispose()
    lines = LineMap()
    if node is not None:
        lines.walk(node)
    return data, lines
