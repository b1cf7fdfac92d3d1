"""Safe YAML with line numbers: every problem in a suite names the file, the line and the field.

``load_yaml`` parses with ``yaml.SafeLoader`` only (no Python tags, no code) and returns the data with
a ``LineMap`` from field paths (``("generators", 0, "params", "top_k")``) to 1-based line numbers.
``Problem`` is one error; ``SuiteError`` carries all of them so a user sees one complete list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Loc = tuple[str | int, ...]


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


def load_yaml(path: Path) -> tuple[Any, LineMap]:
    """Parse ``path`` safely. Raises ``SuiteError`` for a missing file or malformed YAML."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SuiteError([Problem(str(path), None, "", "suite file not found")]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise SuiteError([Problem(str(path), None, "", f"cannot read the suite file ({e})")]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        what = " ".join(str(x) for x in (getattr(e, "context", None), getattr(e, "problem", None)) if x)
        raise SuiteError([Problem(str(path), line, "", f"malformed YAML: {what or e}")]) from None
    lines = LineMap()
    if node is not None:
        lines.walk(node)
    return data, lines
