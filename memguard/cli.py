"""L6 front end: the ``memguard`` command line (subcommands arrive with issue 4)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``memguard`` command line and return its exit code."""
    parser = argparse.ArgumentParser(prog="memguard", description=__doc__)
    parser.parse_args(argv)
    parser.print_help()
    return 0
