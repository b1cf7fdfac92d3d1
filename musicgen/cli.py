"""The ``musicgen`` command.

Subcommands are listed in ``COMMANDS`` as ``name -> ("module:function", help)`` and imported only when
run, so ``musicgen --help`` stays fast. Each target takes ``(args: list[str]) -> int``.
"""

from __future__ import annotations

import difflib
import importlib
import sys

from musicgen import __version__

PROG = "musicgen"
COMMANDS: dict[str, tuple[str, str]] = {
    # name: ("module:function", one-line help)
    "generate": ("musicgen.generate_cli:main", "generate music from text with a MusicGen checkpoint"),
    "train": ("musicgen.train.run:main", "train a codec or an LM from a recipe YAML (musicgen/recipes/)"),
}


def dispatch(prog: str, version: str, commands: dict[str, tuple[str, str]], argv: list[str] | None = None
             ) -> int:
    """Run ``prog COMMAND ARGS``: ``--version``, ``--help`` (the commands and their one-line help), an
    unknown command (exit 2, with close matches), else ``commands[COMMAND]``'s ``"module:function"``
    imported now and called with the remaining arguments. The ``musicgen`` and ``bench`` commands both
    use it (bench sits above musicgen, so the one copy lives here)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--version"]:
        print(f"{prog} {version}")
        return 0
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: {prog} COMMAND [ARGS]\n\ncommands:")
        for name, (_, help_text) in sorted(commands.items()):
            print(f"  {name:<12} {help_text}")
        return 0
    if argv[0] not in commands:
        close = difflib.get_close_matches(argv[0], list(commands), n=3)
        hint = f" (did you mean: {', '.join(close)}?)" if close else ""
        print(f"{prog}: unknown command {argv[0]!r}{hint}; known: {', '.join(sorted(commands))}",
              file=sys.stderr)
        return 2
    module, func = commands[argv[0]][0].split(":")
    return int(getattr(importlib.import_module(module), func)(argv[1:]) or 0)


def main(argv: list[str] | None = None) -> int:
    return dispatch(PROG, __version__, COMMANDS, argv)
