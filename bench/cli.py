"""The ``bench`` command.

Subcommands are listed in ``COMMANDS`` as ``name -> ("module:function", help)`` and imported only when
run, so ``bench --help`` stays fast. Each target takes ``(args: list[str]) -> int``.
"""

from __future__ import annotations

import difflib
import importlib
import sys

from bench import __version__

PROG = "bench"
COMMANDS: dict[str, tuple[str, str]] = {
    # name: ("module:function", one-line help); filled in as subcommands land
    "run": ("bench.commands:run_command", "run a suite: generate (cached), score, write results"),
    "validate": ("bench.suite:validate_command", "check a suite completely without generating"),
    "list": ("bench.registry:list_command", "list registered generators, metrics, datasets, embedders"),
    "report": ("bench.report:main", "render RUN_DIR/results.json as one self-contained HTML file"),
    "compare": ("bench.compare:main", "check a run against a baseline JSON; non-zero exit on regression"),
    "listen": ("bench.listening.page:listen_command", "write a blind listening test (page + audio) of a run"),
    "ratings": ("bench.listening.commands:ratings_command", "import or simulate listening-test ratings"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--version"]:
        print(f"{PROG} {__version__}")
        return 0
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: {PROG} COMMAND [ARGS]\n\ncommands:")
        for name, (_, help_text) in sorted(COMMANDS.items()):
            print(f"  {name:<12} {help_text}")
        return 0
    if argv[0] not in COMMANDS:
        close = difflib.get_close_matches(argv[0], list(COMMANDS), n=3)
        hint = f" (did you mean: {', '.join(close)}?)" if close else ""
        print(f"{PROG}: unknown command {argv[0]!r}{hint}; known: {', '.join(sorted(COMMANDS))}",
              file=sys.stderr)
        return 2
    module, func = COMMANDS[argv[0]][0].split(":")
    return int(getattr(importlib.import_module(module), func)(argv[1:]) or 0)
