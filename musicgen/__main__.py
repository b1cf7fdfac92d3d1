"""``python -m musicgen`` is the ``musicgen`` command."""

from musicgen.cli import main

raise SystemExit(main())
