"""L9 front end: options, exit codes and output handling of the ``memguard`` subcommands.

The display options the pytest plugin shares (``--top``, ``--format``) live
in :mod:`memguard.display` and are re-exported here; every file is written
by :mod:`memguard.output`'s one writer.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..display import (
    BINARY_FORMATS,
    DEFAULT_TOP,
    FORMATS,
    SUFFIXES,
    add_display_options,
    format_of,
    top_count,
)
from ..exceptions import CommandError, OutputRefused
from ..output import check_writable, write_file
from ..units import parse_size

__all__ = [
    "DEFAULT_TOP",
    "EXIT_ERROR",
    "EXIT_LIMIT",
    "EXIT_OK",
    "EXIT_USAGE",
    "FORMATS",
    "abandon_stdout",
    "add_display_options",
    "check_output",
    "emit",
    "positive_float",
    "resolve_format",
    "size_argument",
    "top_count",
]

EXIT_OK = 0
"""Success; ``memguard run`` returns the program's own exit code instead."""
EXIT_ERROR = 1
"""An input file is missing, unreadable, damaged or foreign; writing an output failed."""
EXIT_USAGE = 2
"""A usage error: a bad option, size or format; an output that exists without ``--force``,
is not a regular file, or cannot be created (all found before any work)."""
EXIT_LIMIT = 3
"""``memguard run --limit``: the program succeeded but went over the limit."""

def positive_float(text: str) -> float:
    """Parse a positive number of seconds, such as ``--interval 0.05``.

    Example:
        >>> positive_float("0.05")
        0.05
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number of seconds")
    return value


def size_argument(text: str) -> int:
    """Parse a size such as ``"500 MB"`` or ``1GiB`` through :func:`memguard.units.parse_size`.

    Example:
        >>> size_argument("1.5 KiB")
        1536
    """
    try:
        return parse_size(text, name="size")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def resolve_format(fmt: str | None, output: str | None) -> str:
    """The format to write: *fmt*, else the output's suffix, else text.

    Raises:
        CommandError: A chart format to the terminal, or an output suffix
            memguard does not know with no ``--format`` (exit code 2).

    Example:
        >>> resolve_format(None, "run.html")
        'html'
    """
    if fmt is None and output not in (None, "-"):
        assert output is not None
        fmt = format_of(output)
        if fmt is None:
            known = ", ".join(sorted(SUFFIXES))
            raise CommandError(f"cannot tell the format of {output!r} from its suffix "
                               f"(known: {known}); pass --format", exit_code=EXIT_USAGE)
    fmt = fmt or "text"
    if fmt in BINARY_FORMATS and output is None and sys.stdout.isatty():
        raise CommandError(f"--format {fmt} writes an image: pass --output PATH "
                           f"(or --output - to pipe it)", exit_code=EXIT_USAGE)
    return fmt


def check_output(path: str | None, *, force: bool) -> None:
    """Refuse, before any work, an output that cannot or must not be written.

    Checked through :func:`memguard.output.check_writable`: symbolic links
    are followed; a device, FIFO, socket or directory is refused; an
    existing file needs *force*; and a probe file proves the folder takes
    new files (a read-only or system folder fails here, not after a run).

    Raises:
        CommandError: Naming *path* and what is wrong (exit code 2: a usage
            error, found before any work).

    Example:
        >>> check_output(None, force=False)  # stdout: nothing to check
    """
    if path is None or path == "-":
        return
    try:
        check_writable(path, overwrite=force)
    except OutputRefused as refused:
        hint = "; pass --force to overwrite it" if refused.exists else ""
        raise CommandError(f"output {path!r}: {refused.reason}{hint}",
                           exit_code=EXIT_USAGE) from None
    except OSError as error:
        raise CommandError(f"cannot write {path!r}: {error.strerror or error}",
                           exit_code=EXIT_USAGE) from None


def emit(content: str | bytes, path: str | None) -> None:
    """Write *content* to *path* (through :mod:`memguard.output`), or to stdout.

    ``None`` and ``"-"`` mean stdout, which is flushed here, so that a full
    or closed stdout is an error now, not a traceback at exit.

    Raises:
        CommandError: The file cannot be written (exit code 1).
        CommandError: Stdout cannot be written (exit code 1); what was
            buffered for it is dropped.
        BrokenPipeError: Stdout's reader went away.

    Example:
        >>> emit("hello", None)
        hello
    """
    if path is None or path == "-":
        if sys.stdout is None:  # started with its descriptor closed (`>&-`)
            raise CommandError("cannot write to stdout: it is closed", exit_code=EXIT_ERROR)
        try:
            if isinstance(content, bytes):
                sys.stdout.flush()
                sys.stdout.buffer.write(content)
                sys.stdout.buffer.flush()
            else:
                sys.stdout.write(content if content.endswith("\n") else content + "\n")
                sys.stdout.flush()
        except BrokenPipeError:
            raise  # the reader left (`| head`): main() ends quietly
        except OSError as error:  # /dev/full, a closed or failing descriptor
            abandon_stdout()
            raise CommandError(f"cannot write to stdout: {error.strerror or error}",
                               exit_code=EXIT_ERROR) from None
        return
    try:
        write_file(path, content)
    except OSError as error:  # OutputRefused included: the path changed since the check
        reason = error.reason if isinstance(error, OutputRefused) else error.strerror or error
        raise CommandError(f"cannot write {path!r}: {reason}", exit_code=EXIT_ERROR) from None


def abandon_stdout() -> None:
    """Point stdout's descriptor at ``/dev/null``, after a write to it failed.

    What is still buffered for stdout can never be written; without this the
    interpreter retries at exit and prints a traceback ("Exception ignored
    ...") and exits 120. Does nothing when stdout is not a real descriptor
    (captured by a test, or replaced by the caller).
    """
    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, descriptor)
    os.close(devnull)
