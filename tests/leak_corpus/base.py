"""The scenario type of the leak corpus."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Scenario:
    """One piece of code that leaks, or looks as if it might and does not."""

    name: str
    """A short identifier (used as the pytest id)."""
    category: str
    """What kind of leak, or which leak this clean case imitates."""
    expected_leak: bool
    """Whether ``run`` keeps memory, objects or resources across calls."""
    run: Callable[[], object]
    """One call of the code under test."""
    culprit: str | None = None
    """For leaks: text the leak report must contain (holder, resource or signal)."""
    reset: Callable[[], None] = field(default=_nothing)
    """Free what the scenario kept and return to its first state."""
    signal: str | None = None
    """For leaks: the memguard signal expected to fire (``python``, ``rss``, ...)."""

    def __str__(self) -> str:
        kind = "leak" if self.expected_leak else "clean"
        return f"{self.name} ({kind}: {self.category})"
