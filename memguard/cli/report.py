"""L9 front end: ``memguard report FILE``, show a run, snapshot or other memguard file."""

from __future__ import annotations

import argparse

from .options import DEFAULT_TOP, EXIT_OK, add_display_options, check_output, emit, resolve_format

__all__ = ["DESCRIPTION", "EPILOG", "HELP", "USAGE", "add_arguments", "run"]

HELP = "summarise a run, snapshot, diff, timeline, limit or leak file"
USAGE = None
DESCRIPTION = """\
Show what a memguard file holds. For a run file (memguard run): the peak and
when it happened, the allocation sites at the peak, and a small timeline.
Text goes to stdout unless --output is given; the format comes from
--format, else from the output's suffix (.txt .md .json .html .png .svg)."""
EPILOG = """\
examples:
  memguard report memguard-app.1234.json
  memguard report run.json --top 20 --format markdown
  memguard report run.json --output run.html          # one self-contained page
  memguard report run.json --format png --output timeline.png
  memguard report snapshot.json.gz --format json --output -

exit code: 0, or 1 when the file is missing, unreadable, damaged or not a
memguard file or the output cannot be written (stdout full), 2 for a usage
error (unknown format; an --output that exists without --force, is not a
regular file or cannot be created).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``memguard report``'s arguments to *parser*.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_arguments(parser)
        >>> parser.parse_args(["run.json", "--top", "3"]).top
        3
    """
    parser.add_argument("file", metavar="FILE", help="a memguard file (.json or .json.gz)")
    add_display_options(parser.add_argument)
    parser.add_argument("-o", "--output", metavar="PATH",
                        help="write here instead of stdout ('-' is stdout)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --output")


def run(args: argparse.Namespace) -> int:
    """Render the file named in *args*; return the exit code.

    Example:
        >>> from memguard.cli import main
        >>> main(["report", "no-such-file.json"])  # doctest: +SKIP
        1
    """
    from .show import load_value, render_value

    fmt = resolve_format(args.format, args.output)
    check_output(args.output, force=args.force)
    value = load_value(args.file)
    emit(render_value(value, fmt, top=DEFAULT_TOP if args.top is None else args.top),
         args.output)
    return EXIT_OK
