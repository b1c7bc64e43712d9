"""L5 guards: the one peak-site catcher, for ``limit()`` and ``memguard run``.

tracemalloc keeps no history: to name the sites live at a peak, the live
traces must be copied while the peak is there. :class:`TraceCatcher` does
that under one policy (the rule that then judges the copy is
:func:`memguard.values.limit.sites_status`):

* **When.** A copy is made when the traced level is above the catcher's
  threshold and at least ``CAPTURE_GROWTH`` (1.10) times the level of the
  last copy; once more as the measured code ends (``final=True``), since
  the end may be the peak. Where memguard's native counter is built, its
  allocator hook sees the moment each such new peak is made and schedules the
  copy as a pending call: it runs in the main thread between the next two
  bytecodes, as soon after the peak as the interpreter allows, so a spike of
  one statement is caught. Without the counter, a task of the watcher thread
  (:mod:`memguard._watcher`) polls the traced level every millisecond (a
  spike shorter than that may go uncopied), read by
  :func:`memguard._watcher.traced_level`, which starts no collection. For ``memguard run``
  (``pending=True``) it schedules, at a new high, a pending call of its own
  (see :func:`prepare`), so the copy is still made in the main thread;
  otherwise (``limit()``, a catcher armed in another thread, or where
  :mod:`ctypes` cannot reach the interpreter) the watcher thread copies.
* **Cost.** An optional budget keeps copies to a fraction of the run's time
  (``memguard run``: each copy costs time in proportion to the live blocks),
  unless the level doubled since the last one or the copy is the final one.
* **Without disturbing the program.** ``take_snapshot()`` creates a tuple per
  live block; those count towards the collector's next collection even
  though tracemalloc does not trace them. A copy is made and reduced to its
  top sites with the collector off, and the snapshot is freed before it is
  switched back on, so that the allocation count is as it was: the copy does
  not bring the program's garbage collection forward (issue 21). The
  grouping's own traced allocations are left out of the peak
  (:func:`memguard._tracing.excluded`), but the sites kept (a few KiB)
  stay in the traced heap until the end. A copy made on the watcher thread
  is not traced at all and is kept whole until :meth:`TraceCatcher.result`;
  its tuples count towards the program's next collection meanwhile, so a
  ``limit()`` without the counter can move a collection once it has gone
  over its limit.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from .. import _counter, _tracing, _watcher
from ..exceptions import TracingError
from ..values.limit import CAPTURE_GROWTH

__all__ = ["POLL_INTERVAL", "TraceCatcher", "prepare"]

POLL_INTERVAL = 0.001
"""Seconds between two polls of the traced level, without the native counter."""

_DOUBLED = 2.0

# -- copies in the main thread without the counter: a pending call -----------

_armed: list[TraceCatcher] = []
"""Catchers whose copies the pending call makes (``pending=True``, no counter)."""
_scheduled = False
_pending: Any = None
"""``(Py_AddPendingCall, PyObject_IsTrue's address)`` once made; ``False`` where it cannot be."""


class _CopyRequest:
    """The pending call's argument: the interpreter calls ``PyObject_IsTrue`` on it.

    Its ``__bool__`` makes the copies the watcher asked for and returns
    ``False`` (0: success). An exception raised meanwhile (a signal
    handler's ``KeyboardInterrupt``) propagates into the program as a
    pending call's error does, where a :mod:`ctypes` callback would swallow it.
    """

    __slots__ = ()

    def __bool__(self) -> bool:
        global _scheduled
        _scheduled = False
        # An index, not an iterator or a copy: nothing allocated at the peak.
        index = 0
        while index < len(_armed):
            catcher = _armed[index]
            index += 1
            if catcher._wanted:
                catcher._wanted = False
                catcher._triggered(0)
        return False


_REQUEST = _CopyRequest()


def prepare() -> None:
    """Make the pending call for copies in the main thread, where the counter is not built.

    Call it before the measurement begins: importing :mod:`ctypes` and
    finding the two functions allocate about 240 KiB, which would otherwise
    be counted as the program's. Made once, and only while nothing traces.
    """
    global _pending
    if _pending is not None or tracemalloc.is_tracing() or _counter.available():
        return
    try:
        import ctypes

        # Objects of our own: argtypes set on ctypes.pythonapi's functions
        # would be the program's too.
        api = ctypes.PyDLL(None)
        add = api.Py_AddPendingCall
        add.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        add.restype = ctypes.c_int
        is_true = ctypes.cast(api.PyObject_IsTrue, ctypes.c_void_p).value
        _pending = (add, is_true) if is_true else False
    except (ImportError, AttributeError, OSError):
        _pending = False


def _schedule() -> None:
    """From the watcher thread: have the main thread make the wanted copies soon."""
    global _scheduled
    pending = _pending
    if _scheduled or not pending:
        return
    _scheduled = True
    if pending[0](pending[1], id(_REQUEST)) != 0:  # the queue is full: the next poll asks again
        _scheduled = False


def _after_fork_in_child() -> None:
    global _scheduled
    _scheduled = False
    _armed.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class TraceCatcher:
    """Copies the sites live at each new traced high over a threshold.

    Args:
        start_bytes: The traced level when the measured block began.
        above_bytes: Copy only above this many bytes over *start_bytes*.
        reduce: Turns a snapshot into what is kept (the top sites), called at
            once with the collector off.
        budget: If given, a copy is skipped while less than *budget* times
            the last copy's duration has passed since it (a fifth of the run
            for ``budget=4``), unless the level doubled.
        trigger: Let the native counter say when to copy (in the main
            thread). ``False`` polls from the watcher thread: for runs whose
            main thread is traced line by line (``memguard run --lines``),
            where a copy in that thread would be traced too.
        pending: Without the counter, have the main thread make the copies
            (a pending call, once :func:`prepare` made it) rather than the
            watcher thread. Its sites, a few KiB, then stay in the traced
            heap until the end: right for ``memguard run``, whose program's
            collections must come as without memguard, not for a
            ``limit()``, whose exact peak they would join.
    """

    def __init__(self, start_bytes: int, above_bytes: int,
                 reduce: Callable[[tracemalloc.Snapshot], object], *,
                 budget: float | None = None, trigger: bool = True,
                 pending: bool = False) -> None:
        self.start_bytes = start_bytes
        self.above_bytes = above_bytes
        self.reduce = reduce
        self.budget = budget
        self.trigger = trigger
        self.pending = pending
        self.kept: object = None
        self.level_bytes = 0
        """The level above the start at the last copy (0: none)."""
        self.seconds = 0.0
        """When the last copy was made, in seconds after :meth:`arm`."""
        self.started = time.perf_counter()
        self._next = 0.0
        self._closed = False
        self._count: _counter.CountWindow | None = None
        self._task: _watcher.Task | None = None
        self._main = threading.main_thread()
        self._wanted = False
        """Set by the watcher: a new high for the pending call to copy."""

    def arm(self) -> None:
        """Start watching: the counter's trigger where it is built, else polling."""
        self.started = time.perf_counter()
        if self.trigger and _counter.available():
            self._count = _counter.begin()
            _counter.capture(self._count.start_bytes + self.above_bytes, CAPTURE_GROWTH,
                             self._triggered)
            return
        with _tracing.excluded():
            if (self.pending and self.trigger and _pending
                    and threading.current_thread() is self._main):
                _armed.append(self)
                self._task = _watcher.watch(self._watch_level, POLL_INTERVAL)
            else:
                self._task = _watcher.watch(self._poll, POLL_INTERVAL)

    def rearm(self) -> None:
        """Give the counter's one capture back to this catcher (after a nested one ended)."""
        if self._count is not None and not self._closed:
            _counter.capture(self._count.start_bytes + self.above_bytes, CAPTURE_GROWTH,
                             self._triggered)

    def disarm(self, *, final: bool = True) -> None:
        """Stop watching; with *final*, copy once more if the end is a new high."""
        try:
            if self._task is not None:
                _watcher.unwatch(self._task)
                self._task = None
            if self in _armed:
                _armed.remove(self)
            if final and tracemalloc.is_tracing():
                self.capture(final=True)
        finally:
            self._closed = True
            count, self._count = self._count, None
            if count is not None:
                _counter.capture(-1, CAPTURE_GROWTH)
                # The counter was only the trigger: if a tracemalloc stopped
                # inside the block took its hooks along, tracemalloc's own
                # window says so (TracingError) where it matters.
                with contextlib.suppress(TracingError):
                    _counter.end(count)

    def result(self) -> object:
        """What *reduce* made of the last copy (``None`` if none); once the block is over."""
        if isinstance(self.kept, tracemalloc.Snapshot):
            snapshot, self.kept = self.kept, None
            with _tracing.excluded():  # leave the grouping out of any enclosing window
                self.kept = self.reduce(snapshot)
        return self.kept

    @property
    def triggered_by_counter(self) -> bool:
        """Whether the native counter says when to copy (else: polling)."""
        return self._count is not None

    def _triggered(self, _level: int) -> None:
        if not self._closed and tracemalloc.is_tracing():
            self.capture()

    def _worth_copying(self, level: int, *, final: bool = False) -> bool:
        """Whether *level* (above the start) is a new high to copy: over the
        threshold and ``CAPTURE_GROWTH`` times the last copy's (the end: any new high)."""
        if level <= self.above_bytes or level <= self.level_bytes:
            return False
        return final or level >= self.level_bytes * CAPTURE_GROWTH

    def _watch_level(self) -> None:
        """A watcher task: at a new high worth a copy, ask the main thread for one."""
        if self._closed or self._wanted or not tracemalloc.is_tracing():
            return
        if self._worth_copying(_watcher.traced_level() - self.start_bytes):
            self._wanted = True
            _schedule()

    def _poll(self) -> None:
        """A watcher task: copy at a new high worth a copy (read without moving a collection)."""
        if (not self._closed and tracemalloc.is_tracing()
                and self._worth_copying(_watcher.traced_level() - self.start_bytes)):
            self.capture()

    def capture(self, *, final: bool = False) -> bool:
        """Copy now if the level is a new high over the threshold; return whether it did."""
        level = _tracing.refresh()[0] - self.start_bytes
        if not self._worth_copying(level, final=final):
            return False
        now = time.perf_counter() - self.started
        if (self.budget is not None and not final and now < self._next
                and level < self.level_bytes * _DOUBLED):
            return False
        began = time.perf_counter()
        if threading.current_thread() is self._main:
            # The program is stopped between two bytecodes: reduce the copy at
            # once, with the grouping's traced allocations left out of the
            # peak, and the collector off until the snapshot's tuples are gone.
            enabled = gc.isenabled()
            gc.disable()
            balance = _watcher.Balance()  # what is kept (the sites) moves no collection
            try:
                with _tracing.excluded():
                    self.kept = self.reduce(tracemalloc.take_snapshot())
            finally:
                balance.settle()
                if enabled:
                    gc.enable()
        else:
            # On the watcher thread the program keeps running (the GIL
            # switches): grouping now would add to its traced peak, and
            # resetting the peak would lose what it reached meanwhile. The
            # snapshot is kept and reduced by result(), once the block is over.
            self.kept = tracemalloc.take_snapshot()
        self.level_bytes, self.seconds = level, now
        if self.budget is not None:
            self._next = now + self.budget * (time.perf_counter() - began)
        return True
