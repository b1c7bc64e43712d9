"""L5 guards: shared plumbing for guards that are context managers and decorators."""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from typing import Any, TypeVar, cast

__all__ = ["add_note", "caller_label", "wrap_callable"]

F = TypeVar("F", bound=Callable[..., Any])


def caller_label(depth: int = 2) -> str:
    """``file:line`` of the code *depth* frames up, for a ``with`` block's label."""
    frame = sys._getframe(depth)
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


def wrap_callable(fn: F, make_guard: Callable[[], Any]) -> F:
    """Wrap *fn* so each call runs inside a fresh guard from *make_guard*.

    Works for plain and ``async def`` functions; the name, docstring and
    signature are kept (``functools.wraps``). A fresh guard per call keeps
    concurrent and recursive calls from sharing state.
    """
    if not callable(fn):
        raise TypeError(f"a guard decorates functions, not {type(fn).__name__} {fn!r}")
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            with make_guard():
                return await fn(*args, **kwargs)

        return cast(F, async_wrapper)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        with make_guard():
            return fn(*args, **kwargs)

    return cast(F, wrapper)


def add_note(error: BaseException, note: str) -> None:
    """Attach *note* to an exception that is propagating (PEP 678)."""
    if hasattr(error, "add_note"):
        error.add_note(note)
    else:  # Python 3.10: the attribute is set, though tracebacks do not print it
        notes = list(getattr(error, "__notes__", []))
        notes.append(note)
        error.__notes__ = notes  # type: ignore[attr-defined]
