"""What each reliability test tried, counted while it runs, for docs/reliability.md.

A test calls :func:`tried` once per input or fault it exercised (hypothesis
examples included: the call sits in the test body, so every example counts).
The count is keyed by the running test's node id, read from
``PYTEST_CURRENT_TEST``; ``page.py`` turns the counts into the page when asked.
"""

from __future__ import annotations

import os
from collections import Counter

TRIES: Counter[str] = Counter()


def current_test() -> str:
    """The node id of the test running now, without its parameters."""
    nodeid = os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" (", 1)[0]
    return nodeid.split("[", 1)[0]


def tried(count: int = 1) -> None:
    """Count *count* inputs (or faults, or uses) tried by the running test."""
    TRIES[current_test()] += count
