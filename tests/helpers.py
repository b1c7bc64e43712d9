"""Small helpers shared by the test modules."""

from __future__ import annotations

import threading


def line_of(path: str, marker: str) -> int:
    """The number of the line of *path* that contains *marker* (not this call's own line)."""
    with open(path) as source:
        for number, text in enumerate(source, 1):
            if marker in text and "line_of(" not in text:
                return number
    raise LookupError(marker)


def threads_now() -> frozenset[threading.Thread]:
    """The live threads, by identity (see :func:`threads_left_behind`)."""
    return frozenset(threading.enumerate())


def threads_left_behind(before: frozenset[threading.Thread]) -> list[str]:
    """Names of live threads that were not in *before*: the ones the code under test
    started and did not end. Threads of earlier tests that end meanwhile (IPython's
    history saver, say) are not counted, as a count of threads would."""
    return sorted(t.name for t in threading.enumerate() if t not in before and t.is_alive())
