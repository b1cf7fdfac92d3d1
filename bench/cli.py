"""The ``bench`` command.

Subcommands are listed in ``COMMANDS`` as ``name -> ("module:function", help)`` and imported only when
run, so ``bench --help`` stays fast. Each target takes ``(args: list[str]) -> int``; the dispatch itself
is ``musicgen.cli.dispatch``, shared with the ``musicgen`` command.
"""

from __future__ import annotations

from bench import __version__
from musicgen.cli import dispatch

PROG = "bench"
COMMANDS: dict[str, tuple[str, str]] = {
    # name: ("module:function", one-line help)
    "run": ("bench.commands:run_command", "run a suite: generate (cached), score, write results"),
    "validate": ("bench.suite:validate_command", "check a suite completely without generating"),
    "list": ("bench.registry:list_command", "list registered generators, metrics, datasets, embedders"),
    "report": ("bench.report:main", "render RUN_DIR/results.json as one self-contained HTML file"),
    "compare": ("bench.compare:main", "check a run against a baseline JSON; non-zero exit on regression"),
    "score": ("bench.score_folder:score_command", "score a folder of clips against reference clips or stats"),
    "stats": ("bench.stats:stats_command", "reference statistics of a folder of clips (for --reference)"),
    "listen": ("bench.listening.page:listen_command", "write a blind listening test (page + audio) of a run"),
    "ratings": ("bench.listening.commands:ratings_command", "import or simulate listening-test ratings"),
}


def main(argv: list[str] | None = None) -> int:
    return dispatch(PROG, __version__, COMMANDS, argv)
