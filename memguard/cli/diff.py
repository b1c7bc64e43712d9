"""L9 front end: ``memguard diff A B``, what grew between two snapshot or run files.

A snapshot file is compared as it is; a run file by its sites at the peak
(with its exact traced peak and its RSS peak as the totals), so two runs of
the same program compare their peaks.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..exceptions import CommandError
from .options import (
    DEFAULT_TOP,
    EXIT_ERROR,
    EXIT_OK,
    add_display_options,
    check_output,
    emit,
    resolve_format,
)

__all__ = ["DESCRIPTION", "EPILOG", "HELP", "USAGE", "add_arguments", "run"]

HELP = "what grew between two snapshot or run files"
USAGE = None
DESCRIPTION = """\
Compare two memguard snapshot or run files, the earlier first: the change in
traced memory and RSS, the allocation sites that grew or shrank (biggest
change first) and, for snapshots, the object counts by type. Run files are
compared at their peaks."""
EPILOG = """\
examples:
  memguard diff before.json after.json
  memguard diff run-v1.json run-v2.json --top 20
  memguard diff a.json.gz b.json.gz --format html --output diff.html

exit code: 0, 1 when a file is missing, unreadable, damaged or neither a
snapshot nor a run or the output cannot be written, 2 for a usage error
(including an --output memguard will not or cannot write).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``memguard diff``'s arguments to *parser*.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_arguments(parser)
        >>> parser.parse_args(["a.json", "b.json"]).after
        'b.json'
    """
    parser.add_argument("before", metavar="A", help="the earlier snapshot or run file")
    parser.add_argument("after", metavar="B", help="the later snapshot or run file")
    add_display_options(parser.add_argument)
    parser.add_argument("-o", "--output", metavar="PATH",
                        help="write here instead of stdout ('-' is stdout)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --output")


def as_snapshot(value: Any, path: str) -> Any:
    """The snapshot to compare for a loaded file: itself, or a run's peak.

    Raises:
        CommandError: The file is neither a snapshot nor a run (exit code 1).

    Example:
        >>> as_snapshot(object(), "x.json")
        Traceback (most recent call last):
        ...
        memguard.exceptions.CommandError: cannot compare 'x.json': it holds a object, ...
    """
    from ..values.run import RunReport
    from ..values.snapshot import Snapshot

    if isinstance(value, Snapshot):
        return value
    if isinstance(value, RunReport):
        return value.peak_snapshot()
    to_dict = getattr(value, "to_dict", None)
    kind = to_dict().get("kind") if to_dict is not None else type(value).__name__
    raise CommandError(f"cannot compare {path!r}: it holds a {kind}, not a snapshot or a run",
                       exit_code=EXIT_ERROR)


def run(args: argparse.Namespace) -> int:
    """Compare the two files named in *args* and render the difference.

    Example:
        >>> from memguard.cli import main
        >>> main(["diff", "a.json", "b.json"])  # doctest: +SKIP
        1
    """
    from ..values.diff import compare
    from .show import load_value, render_value

    fmt = resolve_format(args.format, args.output)
    check_output(args.output, force=args.force)
    before = as_snapshot(load_value(args.before), args.before)
    after = as_snapshot(load_value(args.after), args.after)
    difference = compare(before, after)
    emit(render_value(difference, fmt, top=DEFAULT_TOP if args.top is None else args.top),
         args.output)
    return EXIT_OK
