"""L5 guards: :class:`watch` and :func:`expect_collected` — objects that must be freed.

A watched object is held only through a weak reference. The check runs a
full :func:`gc.collect` (even when the collector is disabled, which it
leaves disabled) and every watched object still alive is a *survivor*:
memguard looks for the chain of references that holds it
(:mod:`memguard.holders`) and raises :class:`~memguard.exceptions.LeakDetected`
naming it, e.g.::

    1 of 1 watched object survived gc.collect() in tests/test_app.py:12:
      session: app.Session <app.Session object at 0x7f3a5c1d2e10>
        held by app.registry.HANDLERS['click'][3] -> <bound method Session.on_click> -> Session

The caller's own variable is not a leak: a ``with watch()`` block's
variables and the arguments of ``expect_collected`` are still bound when the
check runs, so an object held *only* by a local variable of that frame
passes (it is freed as soon as the frame lets go of it). Locals holding it
indirectly (a local list of sessions) do count.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import time
import types
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

from ..exceptions import LeakDetected
from ..holders import describe, safe_repr, search_holders
from ..values.watch import Survivor, WatchReport
from ._repr import guard_repr

__all__ = ["expect_collected", "watch"]

T = TypeVar("T")

_REPR_LIMIT = 80
# A survivor held only through a finalizer or a weakref callback can need a
# second pass; a third changes nothing in practice.
_COLLECT_PASSES = 2


class watch:
    """Objects that must be freed by the end of a block.

    Add objects with :meth:`add`; at the end of the ``with`` block (or at
    :meth:`check`) a full collection runs and any object still alive raises
    :class:`~memguard.exceptions.LeakDetected` with the chain of references
    that holds it. Only weak references are kept.

    Args:
        label: What to call the check in messages; defaults to the
            ``file:line`` of the ``with``.
        top: How many survivors the failure message lists.
        max_depth: The longest holder chain to look for, in references.
        max_seconds: The time budget of each holder search; ``None`` for
            none (each search ends on *max_depth* alone, whatever the load).

    Attributes:
        report: The :class:`~memguard.values.watch.WatchReport` of the last
            check, once one has run.

    Raises:
        LeakDetected: At the end of the block, when a watched object
            survived. It is an :class:`AssertionError`. When the block itself
            raised, no check is made (its traceback keeps the block's
            objects alive).

    Example:
        >>> import memguard
        >>> class Session: ...
        >>> with memguard.watch() as w:
        ...     session = w.add(Session(), name="session")
        ...     del session
        >>> w.report.collected
        1

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        *,
        label: str | None = None,
        top: int = 5,
        max_depth: int = 15,
        max_seconds: float | None = 1.0,
    ) -> None:
        if label is not None and not isinstance(label, str):
            raise TypeError(f"label must be a string, not {type(label).__name__}")
        if isinstance(top, bool) or not isinstance(top, int) or top < 0:
            raise ValueError(f"top must be a non-negative int, got {top!r}")
        if isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 1:
            raise ValueError(f"max_depth must be a positive int, got {max_depth!r}")
        if max_seconds is not None and (
            isinstance(max_seconds, bool) or not isinstance(max_seconds, int | float)
            or not max_seconds > 0
        ):
            raise ValueError(f"max_seconds must be a positive number, got {max_seconds!r}")
        self.label = label
        self.top = top
        self.max_depth = max_depth
        self.max_seconds = None if max_seconds is None else float(max_seconds)
        self.report: WatchReport | None = None
        self._refs: list[tuple[str, Callable[[], object], bool]] = []
        self._entered = False

    def add(self, obj: T, *, name: str | None = None) -> T:
        """Watch *obj*; returns it, so ``x = w.add(make())`` reads naturally.

        Args:
            obj: The object that must be freed, or a :class:`weakref.ref`
                to it. A bound method is watched through
                :class:`weakref.WeakMethod` (its object and function).
            name: What to call it in messages; defaults to ``#1``, ``#2``, ...

        Raises:
            TypeError: *obj* cannot be weakly referenced (``list``, ``dict``,
                ``int``, ``str``, ``tuple``, instances of classes with
                ``__slots__`` but no ``__weakref__``).

        Example:
            >>> import memguard
            >>> class Session: ...
            >>> w = memguard.watch()
            >>> session = w.add(Session())
            >>> len(w)
            1
        """
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string, not {type(name).__name__}")
        ref = obj if isinstance(obj, weakref.ref) else _weak(obj)
        self._refs.append((name or f"#{len(self._refs) + 1}", ref, False))
        return obj

    def __len__(self) -> int:
        return len(self._refs)

    def check(self) -> WatchReport:
        """Collect garbage now and raise if a watched object survived.

        Returns:
            The :class:`~memguard.values.watch.WatchReport` (no survivors).

        Raises:
            LeakDetected: A watched object survived; the message names the
                chain of references that holds it.

        Example:
            >>> import memguard
            >>> class Node: ...
            >>> w = memguard.watch()
            >>> a, b = w.add(Node()), w.add(Node())
            >>> a.other, b.other = b, a      # a cycle: freed by the collector
            >>> del a, b
            >>> w.check().collected
            2
        """
        __tracebackhide__ = True
        frame = _user_frame()
        report = self._inspect(frame, self.label or _label_of(frame))
        del frame
        _raise_if_leaked(report, self.top)
        return report

    def _inspect(self, frame: types.FrameType, label: str) -> WatchReport:
        try:
            report = _inspect(self._refs, frame, label, self.max_depth, self.max_seconds)
        finally:
            del frame
        self.report = report
        return report

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        count = len(self._refs)
        return guard_repr("watch", f"{count} object{'' if count == 1 else 's'}{label}",
                          running=self._entered, result=self.report)

    def __enter__(self) -> watch:
        if self._entered:
            raise RuntimeError("this watch() is already in use; a `with` block cannot be "
                               "re-entered")
        self._entered = True
        self._label = self.label or _label_of(_user_frame())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        __tracebackhide__ = True
        self._entered = False
        if exc is not None:
            return  # the traceback holds the block's frame and so its objects
        report = self._inspect(_user_frame(), self._label)
        _raise_if_leaked(report, self.top)


def expect_collected(
    *objs: object,
    label: str | None = None,
    top: int = 5,
    max_depth: int = 15,
    max_seconds: float | None = 1.0,
) -> WatchReport:
    """Check now, after a full collection, that nothing still holds *objs*.

    Each argument is an object or a :class:`weakref.ref` to one. A weak
    reference must be dead after the collection. An object passed directly
    is necessarily still held by the caller (its variable, the call's
    arguments): it passes when nothing *else* holds it, that is when no
    chain of references from a module global, a class attribute, another
    frame's local or any object gc can see leads to it.

    Args:
        objs: The objects (or weak references to them) that must be freed.
        label: What to call the check in messages; defaults to the caller's
            ``file:line``.
        top: How many survivors the failure message lists.
        max_depth: The longest holder chain to look for, in references.
        max_seconds: The time budget of each holder search; ``None`` for
            none (each search ends on *max_depth* alone, whatever the load).

    Returns:
        The :class:`~memguard.values.watch.WatchReport` (no survivors).

    Raises:
        LeakDetected: An object is still held; the message names the chain.
        TypeError: An object cannot be weakly referenced.

    Note:
        A reference that gc cannot see (kept by C code) is not found for an
        object passed directly; pass a :class:`weakref.ref` after dropping
        your own references for a check that sees every holder.

    Example:
        >>> import memguard
        >>> class Session: ...
        >>> session = Session()
        >>> memguard.expect_collected(session).collected
        1

    .. versionadded:: 0.1.0
    """
    __tracebackhide__ = True
    if not objs:
        raise TypeError("expect_collected() needs at least one object or weak reference")
    guard = watch(label=label, top=top, max_depth=max_depth, max_seconds=max_seconds)
    for position, obj in enumerate(objs, start=1):
        name = f"#{position}"
        if isinstance(obj, weakref.ref):
            guard._refs.append((name, obj, False))
        else:
            guard._refs.append((name, _weak(obj), True))
    # The caller's own argument references stay on its stack; ours must go.
    del objs, obj
    frame = _user_frame()
    report = guard._inspect(frame, label or _label_of(frame))
    del frame
    _raise_if_leaked(report, top)
    return report


def _user_frame() -> types.FrameType:
    """The frame that called the check (a ``with`` block's frame for ``__exit__``),
    past :mod:`contextlib` (an ``ExitStack``, a ``@contextmanager`` wrapping a watch)."""
    frame = sys._getframe(2)
    while frame.f_code.co_filename == contextlib.__file__ and frame.f_back is not None:
        frame = frame.f_back
    return frame


def _label_of(frame: types.FrameType) -> str:
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


def _weak(obj: object) -> Callable[[], object]:
    try:
        if isinstance(obj, types.MethodType):
            return weakref.WeakMethod(obj)
        return weakref.ref(obj)
    except TypeError:
        kind = type(obj)
        hint = (
            "add '__weakref__' to its __slots__" if hasattr(kind, "__slots__")
            else "watch the object that owns it (the instance or container it lives in), "
            "or keep it in an instance of a class of your own"
        )
        raise TypeError(
            f"cannot watch a {describe(kind)} object: {describe(kind)} does not support weak "
            f"references, so memguard cannot tell when it is freed; {hint}"
        ) from None


def _inspect(
    refs: list[tuple[str, Callable[[], object], bool]],
    frame: types.FrameType,
    label: str,
    max_depth: int,
    max_seconds: float | None,
) -> WatchReport:
    """Collect, then describe every watched object still alive."""
    for _ in range(_COLLECT_PASSES):
        gc.collect()
        if not any(ref() is not None for _, ref, _ in refs):
            break
    survivors: list[Survivor] = []
    search_seconds = 0.0
    for name, ref, direct in refs:
        obj = ref()
        if obj is None:
            continue
        started = time.perf_counter()
        try:
            survivor = _describe_survivor(name, obj, frame, direct=direct, max_depth=max_depth,
                                          max_seconds=max_seconds)
        finally:
            del obj
        search_seconds += time.perf_counter() - started
        if survivor is not None:
            survivors.append(survivor)
    return WatchReport(label=label, watched=len(refs), survivors=tuple(survivors),
                       search_seconds=search_seconds)


def _describe_survivor(
    name: str,
    obj: object,
    frame: types.FrameType,
    *,
    direct: bool,
    max_depth: int,
    max_seconds: float | None,
) -> Survivor | None:
    """A :class:`Survivor`, or ``None`` when only the caller's own variable holds *obj*."""
    search = search_holders(obj, max_depth=max_depth, max_seconds=max_seconds,
                            excused_frames=(frame,))
    if search.steps is None and search.status == "exhausted" and (
        direct or search.held_by_excused
    ):
        return None
    note = ""
    if search.steps is None:
        note = search.text
        if search.status == "exhausted":
            note = ("no holder gc can see: kept by C code, by a reference count leak, or "
                    "by a running frame's value stack")
    kind = type(obj)
    return Survivor(
        name=name,
        type_name=f"{kind.__module__}.{kind.__qualname__}"
        if kind.__module__ not in ("builtins", None) else kind.__qualname__,
        object_repr=safe_repr(obj, _REPR_LIMIT),
        chain=search.steps or (),
        note=note,
    )


def _raise_if_leaked(report: WatchReport, top: int) -> None:
    __tracebackhide__ = True
    if report.leaked:
        raise LeakDetected(report.message(top=top), report=report, label=report.label)

