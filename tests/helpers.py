"""Small helpers shared by the test modules."""

from __future__ import annotations


def line_of(path: str, marker: str) -> int:
    """The number of the line of *path* that contains *marker* (not this call's own line)."""
    with open(path) as source:
        for number, text in enumerate(source, 1):
            if marker in text and "line_of(" not in text:
                return number
    raise LookupError(marker)
