"""L6 front end: options and file handling shared by the ``memguard`` subcommands.

:func:`add_display_options` is also what the pytest plugin calls (with
``prefix="memguard-"``), so ``--top`` and ``--format`` are defined once.
This module imports only the standard library and memguard's foundation, so
the plugin can import it at load time.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ..exceptions import CommandError
from ..units import parse_size

__all__ = [
    "DEFAULT_TOP",
    "EXIT_ERROR",
    "EXIT_LIMIT",
    "EXIT_OK",
    "EXIT_USAGE",
    "FORMATS",
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
"""An input file is missing, unreadable, damaged or foreign; an output cannot be written."""
EXIT_USAGE = 2
"""A usage error: a bad option, size or format, an existing output without ``--force``."""
EXIT_LIMIT = 3
"""``memguard run --limit``: the program succeeded but went over the limit."""

FORMATS: tuple[str, ...] = ("text", "markdown", "json", "html", "png", "svg")
"""Every output format, text first."""
BINARY_FORMATS = frozenset({"png"})
"""Formats written as bytes."""
DEFAULT_TOP = 10
"""How many sites or types a report lists unless told otherwise."""

_SUFFIXES = {".txt": "text", ".md": "markdown", ".json": "json", ".html": "html",
             ".htm": "html", ".png": "png", ".svg": "svg"}


def top_count(text: str) -> int:
    """Parse ``--top``: a whole number, at least 1.

    Example:
        >>> top_count("5")
        5
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


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


def add_display_options(
    add_option: Callable[..., Any], prefix: str = "", *, formats: Sequence[str] = FORMATS
) -> None:
    """Add ``--top`` and ``--format`` through *add_option*, names prefixed with *prefix*.

    The command line passes ``parser.add_argument``; the pytest plugin passes
    its group's ``addoption`` with ``prefix="memguard-"``, giving
    ``--memguard-top`` and ``--memguard-format`` (dests ``memguard_top``,
    ``memguard_format``). Both default to ``None``: :data:`DEFAULT_TOP`, and
    the format from the output's suffix (else text), apply then.

    Args:
        add_option: ``argparse.ArgumentParser.add_argument`` or pytest's ``addoption``.
        prefix: Put before each option name, after the ``--``.
        formats: The formats to offer.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_display_options(parser.add_argument)
        >>> parser.parse_args(["--top", "3", "--format", "json"])
        Namespace(top=3, format='json')
    """
    add_option(f"--{prefix}top", type=top_count, default=None, metavar="N",
               help=f"how many allocation sites or types to list (default {DEFAULT_TOP})")
    add_option(f"--{prefix}format", choices=list(formats), default=None,
               help=f"output format, one of {', '.join(formats)} (default: from the "
                    f"output file's suffix, else text)")


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
        suffix = os.path.splitext(output)[1].lower()
        fmt = _SUFFIXES.get(suffix)
        if fmt is None:
            known = ", ".join(sorted(_SUFFIXES))
            raise CommandError(f"cannot tell the format of {output!r} from its suffix "
                               f"(known: {known}); pass --format", exit_code=EXIT_USAGE)
    fmt = fmt or "text"
    if fmt in BINARY_FORMATS and output is None and sys.stdout.isatty():
        raise CommandError(f"--format {fmt} writes an image: pass --output PATH "
                           f"(or --output - to pipe it)", exit_code=EXIT_USAGE)
    return fmt


def check_output(path: str | None, *, force: bool) -> None:
    """Refuse an output file that exists unless *force* is set.

    Raises:
        CommandError: *path* exists and *force* is false (exit code 2).

    Example:
        >>> check_output(None, force=False)  # stdout: nothing to check
    """
    if path is None or path == "-":
        return
    if os.path.isdir(path):
        raise CommandError(f"output {path!r} is a directory", exit_code=EXIT_USAGE)
    if os.path.lexists(path) and not force:
        raise CommandError(f"output {path!r} exists; pass --force to overwrite it",
                           exit_code=EXIT_USAGE)


def emit(content: str | bytes, path: str | None) -> None:
    """Write *content* to *path*, or to stdout for ``None`` or ``"-"``.

    Raises:
        CommandError: The file cannot be written (exit code 1).

    Example:
        >>> emit("hello", None)
        hello
    """
    if path is None or path == "-":
        if isinstance(content, bytes):
            sys.stdout.flush()
            sys.stdout.buffer.write(content)
            sys.stdout.buffer.flush()
        else:
            sys.stdout.write(content if content.endswith("\n") else content + "\n")
        return
    try:
        if isinstance(content, bytes):
            with open(path, "wb") as stream:
                stream.write(content)
        else:
            with open(path, "w", encoding="utf-8") as stream:
                stream.write(content)
    except OSError as error:
        raise CommandError(f"cannot write {path!r}: {error.strerror or error}",
                           exit_code=EXIT_ERROR) from None
