"""L9 front end: the ``memguard`` command line.

Subcommands, one module each, each with ``add_arguments(parser)`` and
``run(args) -> int``:

* ``memguard run [options] script.py [args...]`` / ``memguard run [options]
  -m module [args...]``: run a program under memguard and write a run file
  (:mod:`memguard.cli.run`).
* ``memguard report FILE``: summarise a run or snapshot file
  (:mod:`memguard.cli.report`).
* ``memguard diff A B``: what grew between two files (:mod:`memguard.cli.diff`).

Exit codes:

* ``0``: success (``run``: the program's own exit code is returned, whatever it is).
* ``1``: an input file is missing, unreadable, damaged or not a memguard
  file; writing an output failed (disk full, stdout full or closed).
* ``2``: a usage error: bad option or size, unknown format, no such script
  or module; an output that exists without ``--force``, that is not a
  regular file (a device such as ``/dev/full``, a FIFO, a directory) or
  that cannot be created there, all refused before any work is done.
* ``3``: ``run --limit``: the program succeeded but its peak went over the limit.
* ``128 + signal`` (130 for Ctrl-C, 143 for SIGTERM): stopped by a signal.
  ``run`` keeps what was measured: a program interrupted while it runs is
  measured and its run file written, and once the program has ended further
  SIGINT/SIGTERM are held until the run file is written.

Errors print one line on stderr (``memguard: ...``), never a memguard
traceback. ``memguard --help`` imports nothing heavy: each subcommand
imports what it needs inside ``run``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from .._version import __version__
from ..exceptions import CommandError, MemguardError
from . import diff as diff_command
from . import report as report_command
from . import run as run_command
from .options import (
    EXIT_ERROR,
    EXIT_LIMIT,
    EXIT_OK,
    EXIT_USAGE,
    FORMATS,
    abandon_stdout,
    add_display_options,
)

__all__ = [
    "EXIT_ERROR",
    "EXIT_LIMIT",
    "EXIT_OK",
    "EXIT_USAGE",
    "FORMATS",
    "add_display_options",
    "build_parser",
    "main",
]

_EPILOG = """\
examples:
  memguard run app.py --input data.csv     run a script, write a run file
  memguard run --rss --limit "500 MB" -m mypkg.cli serve
  memguard report memguard-app.1234.json   peak, top sites and timeline
  memguard report run.json --format html --output run.html
  memguard diff before.json after.json     what grew between two files

exit codes: 0 success (run: the program's own code), 1 unreadable or
damaged file, 2 usage error, 3 run --limit exceeded.
"""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors become :class:`CommandError`."""

    def error(self, message: str) -> NoReturn:
        raise CommandError(f"{self.prog}: {message} (see '{self.prog} --help')",
                           exit_code=EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    """The ``memguard`` argument parser, with every subcommand.

    Example:
        >>> build_parser().prog
        'memguard'
    """
    parser = _Parser(prog="memguard", description="Run a program under memguard, and report "
                     "on its memory.", epilog=_EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"memguard {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module in (("run", run_command), ("report", report_command),
                         ("diff", diff_command)):
        sub = commands.add_parser(name, help=module.HELP, description=module.DESCRIPTION,
                                  epilog=module.EPILOG, usage=module.USAGE, allow_abbrev=False,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``memguard`` command line and return its exit code.

    Args:
        argv: The arguments after ``memguard``; ``sys.argv[1:]`` when ``None``.

    Returns:
        The exit code (see the module docstring).

    Example:
        >>> main(["--version"])  # doctest: +ELLIPSIS
        memguard ...
        0
    """
    args = list(sys.argv[1:] if argv is None else argv)
    program: list[str] = []
    if args and args[0] == "run":
        args, program = run_command.split_program(args)
    try:
        try:
            namespace = build_parser().parse_args(args)
        except SystemExit as stop:  # --help and --version print, then stop
            return stop.code if isinstance(stop.code, int) else EXIT_USAGE
        if namespace.command is None:
            raise CommandError("memguard: no command given; try 'memguard --help'",
                               exit_code=EXIT_USAGE)
        namespace.program_args = program
        return int(namespace.handler(namespace))
    except CommandError as error:
        _fail(str(error))
        return error.exit_code
    except MemguardError as error:
        _fail(f"memguard: {error}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        _fail("memguard: interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (`memguard report run.json | head`): say
        # nothing more, and keep the interpreter from complaining at exit.
        abandon_stdout()
        return EXIT_ERROR


def _fail(message: str) -> None:
    if sys.stdout is not None:  # what the command printed comes before the error
        try:
            sys.stdout.flush()
        except OSError:
            abandon_stdout()
    first = message if message.startswith("memguard") else f"memguard: {message}"
    print(first.replace("\n", " "), file=sys.stderr)
