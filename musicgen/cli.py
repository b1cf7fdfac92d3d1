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
