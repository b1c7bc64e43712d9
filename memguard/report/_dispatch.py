"""L8 presentation: turn what a user holds into the value to render."""

from __future__ import annotations

from typing import Any

__all__ = ["unwrap"]


def unwrap(value: Any) -> Any:
    """The value behind *value*: a live wrapper (the recording ``record()``
    yields) offers it through ``__memguard_value__()``; an exception that
    carries a report (``MemoryLimitExceeded``, ``LeakDetected``) through
    ``details``."""
    hook = getattr(type(value), "__memguard_value__", None)
    if hook is not None:
        return hook(value)
    if isinstance(value, BaseException) and getattr(value, "details", None) is not None:
        return value.details  # type: ignore[attr-defined]
    return value
