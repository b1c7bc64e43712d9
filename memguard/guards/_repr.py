"""L5 guards: the one-line ``repr`` every guard shares.

``<memguard.limit(95.4 MiB, source='python') not run yet>``: the guard, what
it was set up with, and its state (running, or its last result's summary).
"""

from __future__ import annotations

from typing import Any

__all__ = ["guard_repr"]


def guard_repr(name: str, settings: str, *, running: bool, result: Any = None) -> str:
    """A guard's ``repr``: its name, its settings, and what it is doing or found.

    Example:
        >>> guard_repr("watch", "2 objects", running=True)
        '<memguard.watch(2 objects) running>'
        >>> guard_repr("watch", "", running=False)
        '<memguard.watch() not run yet>'
    """
    if running:
        state = "running"
    elif result is None:
        state = "not run yet"
    else:
        state = f"last: {getattr(result, 'summary', result)}"
    return f"<memguard.{name}({settings}) {state}>"
