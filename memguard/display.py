"""L1 foundation: the display options every front end shares, defined once.

``--top`` and ``--format`` (``--memguard-top`` and ``--memguard-format`` in
the pytest plugin), the formats memguard writes and how a file's suffix
names one. The command line (:mod:`memguard.cli`) and the pytest plugin
(:mod:`memguard._pytest`) both import this module; it imports only the
standard library, so loading the plugin does not load the command line.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "BINARY_FORMATS",
    "DEFAULT_TOP",
    "FORMATS",
    "SUFFIXES",
    "add_display_options",
    "format_of",
    "top_count",
]

FORMATS: tuple[str, ...] = ("text", "markdown", "json", "html", "png", "svg")
"""Every output format, text first."""
BINARY_FORMATS = frozenset({"png"})
"""Formats written as bytes."""
DEFAULT_TOP = 10
"""How many sites or types a report lists unless told otherwise."""
SUFFIXES: dict[str, str] = {".txt": "text", ".md": "markdown", ".json": "json",
                            ".html": "html", ".htm": "html", ".png": "png", ".svg": "svg"}
"""The format each known file suffix names."""


def format_of(path: str | os.PathLike[str]) -> str | None:
    """The format *path*'s suffix names, or ``None`` for a suffix memguard does not know.

    Example:
        >>> format_of("run.HTML"), format_of("run.pdf")
        ('html', None)
    """
    return SUFFIXES.get(os.path.splitext(os.fspath(path))[1].lower())


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
