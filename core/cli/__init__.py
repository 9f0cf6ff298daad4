"""``objdet`` (or ``python -m core``): the command lines, one module each.

This package is the composition root of the command line: it reads the model's settings from the
environment (:class:`core.settings.ModelSettings`, which the service's ``config.Settings`` extends)
and passes plain values to the rest of ``core``. Path arguments take ``~``, relative and symlinked
paths (:mod:`core.cli.paths`).
Exit codes: 0 success, 1 the work failed (a file, a download, a verification), 2 bad usage or
configuration.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from core.cli import fetch, optimize, predict, prune


def build_parser(prog: str = "objdet") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Object detection on the command line.")
    commands = parser.add_subparsers(dest="command", required=True)
    for module in (fetch, optimize, predict, prune):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "objdet") -> int:
    """The ``objdet`` command (``[project.scripts]``); ``python -m core`` runs it too."""
    args = build_parser(prog).parse_args(argv)
    return int(args.run(args))
