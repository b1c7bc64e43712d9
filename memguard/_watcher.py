"""L1 foundation: memguard's one watcher thread, which runs the periodic tasks guards ask for.

The timeline sampler (:mod:`memguard.sampler`), the RSS sampling of
:mod:`memguard.process` where the kernel has no high-water mark, the
peak-site catcher of ``limit()`` when it measures with tracemalloc and has no
native counter to tell it when the peak moved, and ``memguard run``'s watcher
are all tasks of this one thread (named ``memguard-watcher``). It starts with
the first task and is joined when the last one is removed, so it never
outlives the guards. A task must allocate as little as it can, and free
what it allocates before it returns, so that the allocation count the
collector keeps is back where it was when the task ends and the program's
collections come as they would without memguard (issue 21).

:class:`Balance` does the same for a guard's own work in the program's
thread as a block begins and ends: it frees as many spare objects, made
beforehand, as the guard allocated, so the program's next collection comes
exactly when it would have without memguard.
"""

from __future__ import annotations

import gc
import operator
import os
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from itertools import repeat

__all__ = ["Balance", "Task", "add", "pause", "resume", "traced_level", "traced_peak", "unwatch",
           "watch", "watcher_running"]


class Task:
    """A periodic task of the watcher thread (see :func:`watch`)."""

    __slots__ = ("due", "fn", "interval")

    def __init__(self, fn: Callable[[], object], interval: float) -> None:
        self.fn = fn
        self.interval = interval
        self.due = 0.0


_tasks: list[Task] = []
_current: tuple[Task, ...] = ()
"""The tasks as the thread reads them: a new tuple made by add() and unwatch()."""
_tasks_lock = threading.Lock()
_round_lock = threading.Lock()
"""Held by the watcher thread while it runs a round of tasks (see :func:`pause`)."""
_thread: threading.Thread | None = None
_STEP = 0.005


def _watcher_loop() -> None:
    # Short sleeps rather than Event.wait(): a wait allocates a lock on every
    # call, which the measured heap (and its collector) would see. The loop
    # itself allocates no container (no iterator, no bound method, no
    # min(), whose arguments are a tuple on this Python: one made when the
    # program's young count was at its threshold started the program's
    # collection here), and a task frees what it allocates.
    # The collector is never switched off here: that would hold back the
    # program's own collections while a task runs.
    while True:
        _tasks_lock.acquire()
        tasks = _current
        _tasks_lock.release()
        if not tasks:
            return
        now = time.perf_counter()
        step = _STEP
        _round_lock.acquire()
        try:
            for index in range(len(tasks)):
                task = tasks[index]
                if now >= task.due:
                    task.fn()
                    task.due = now + task.interval
                if task.interval < step:  # noqa: PLR1730  (min() packs its arguments in a tuple)
                    step = task.interval
        finally:
            _round_lock.release()
        time.sleep(step)


def pause() -> bool:
    """Hold the watcher thread between two rounds of its tasks, until :func:`resume`.

    A task's objects live only while it runs; a level read (the start of a
    peak window) while one runs would count them, and their free, moments
    later, would then read as the program's memory going down. Read levels
    between ``pause()`` and ``resume()``: the watcher's objects are all freed
    then. Returns whether it paused (not on the watcher thread itself, which
    is between rounds already when it asks).
    """
    if threading.current_thread() is _thread:
        return False
    _round_lock.acquire()
    return True


def resume() -> None:
    """Let the watcher thread run its tasks again (after :func:`pause` returned True)."""
    _round_lock.release()


def watch(fn: Callable[[], object], interval: float) -> Task:
    """Run *fn* on the watcher thread every *interval* seconds.

    The first run is at once. *fn* must not raise. Returns the task, for
    :func:`unwatch`.
    """
    if not interval > 0:
        raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
    task = Task(fn, float(interval))
    add(task)
    return task


def add(task: Task) -> None:
    """Start running *task* (its ``due`` time may be set first)."""
    global _thread, _current
    with _tasks_lock:
        _tasks.append(task)
        _current = tuple(_tasks)
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_watcher_loop, name="memguard-watcher",
                                       daemon=True)
            _thread.start()


def unwatch(task: Task) -> None:
    """Stop running *task*; joins the thread when it was the last task.

    When called from a task itself, it only removes the task.
    """
    global _thread, _current
    with _tasks_lock:
        if task in _tasks:
            _tasks.remove(task)
        _current = tuple(_tasks)
        thread = _thread if not _tasks else None
        if thread is not None:
            _thread = None
    if thread is not None and thread is not threading.current_thread():
        thread.join()


def _after_fork_in_child() -> None:
    """A forked child has only the forking thread: start it with no watcher and no tasks.

    The tasks belong to the parent's blocks (the child's copies of those
    blocks go unsampled; a block the child opens starts a watcher of its
    own), and the lock may have been held by the parent's watcher at the
    fork.
    """
    global _thread, _current, _tasks_lock, _round_lock
    _tasks_lock = threading.Lock()
    _round_lock = threading.Lock()
    _tasks.clear()
    _current = ()
    _thread = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def watcher_running() -> bool:
    """Whether the watcher thread is running."""
    with _tasks_lock:
        return _thread is not None and _thread.is_alive()


def _quiet_levels(index: int = 0) -> Iterator[tuple[object, object, int, object]]:
    # Each next() runs in C from start to end, so no other thread runs
    # between its steps (the interpreter hands the GIL over only between
    # bytecodes), and allocates nothing the collector counts before the
    # collector is off: zip reuses its result tuple while nobody else holds
    # it; map, iter(callable, sentinel) and operator's functions pass their
    # arguments on the C stack. Steps: remember whether the collector is on,
    # switch it off, read the traced level (tracemalloc's tuple is made and
    # freed while the collector is off), switch it back on if it was on.
    stop = object()
    state = [True]
    remember = map(operator.setitem, repeat(state), repeat(0), iter(gc.isenabled, stop))
    switch_off = iter(gc.disable, stop)
    level = map(operator.getitem, iter(tracemalloc.get_traced_memory, stop), repeat(index))
    back = {True: iter(gc.enable, stop), False: iter(gc.isenabled, stop)}
    restore = map(next, map(operator.getitem, repeat(back),
                            map(operator.getitem, repeat(state), repeat(0))))
    return zip(remember, switch_off, level, restore, strict=False)  # all endless


_levels = _quiet_levels()
_peaks = _quiet_levels(1)
_FREE_THREADED = not getattr(sys, "_is_gil_enabled", lambda: True)()


def traced_level() -> int:
    """tracemalloc's traced bytes now, read without moving the program's collections.

    ``tracemalloc.get_traced_memory()`` returns a new tuple, and every new
    container counts towards the collector's next young collection: read
    on the watcher thread when the program's count is at its threshold, it
    runs the program's collection there, one allocation early and on the
    wrong thread (its finalizers too). Here the tuple is made and freed with
    the collector off, in one call into C that no other thread can
    interrupt, so the count and the collector's state are as they were.
    For the tasks of the watcher thread that poll the level (the peak
    catcher without the native counter, issue 21).

    Example:
        >>> import gc, tracemalloc
        >>> tracemalloc.start()
        >>> data = bytearray(1_000_000)
        >>> traced_level() >= 1_000_000, gc.isenabled()
        (True, True)
        >>> tracemalloc.stop()
    """
    if _FREE_THREADED:  # no GIL: the steps are not one uninterrupted call there
        return tracemalloc.get_traced_memory()[0]
    return next(_levels)[2]


def traced_peak() -> int:
    """tracemalloc's peak so far, read as quietly as :func:`traced_level`."""
    if _FREE_THREADED:
        return tracemalloc.get_traced_memory()[1]
    return next(_peaks)[2]


counting = False
"""Whether memguard's allocation counter is counting (set by :mod:`memguard._counter`)."""


def _measured() -> bool:
    """Whether an allocation made now would be counted by a measure of the Python heap."""
    return counting or tracemalloc.is_tracing()


class _Spare:
    """A container with no free list: its deallocation lowers the collector's count."""

    __slots__ = ("ref",)


_SPARES = 1024
_LOW = 256
_REFILL = 64
# Made as memguard is imported, before any measured block: making them later
# would itself move the program's collections.
_spares: list[_Spare] = [_Spare() for _ in range(_SPARES)]


class Balance:
    """Cancels, in the collector's count, the objects a guard allocates as a block begins or ends.

    CPython starts a young collection when the allocations of container
    objects minus their deallocations reach a threshold (700). A guard that
    keeps a dozen objects alive through a block would start the program's
    collections a dozen allocations early, so cycles die at other moments and
    the peak moves. Make a :class:`Balance` before the guard's work and call
    :meth:`settle` after it: as many spare objects as the count rose are
    freed, which brings it back. The spares (1024) are made as memguard is
    imported; when fewer than 256 are left, the next balance made while
    nothing measures the Python heap makes 64 more (2.5 KiB), which moves
    the count once. A small refill, often, rather than a large one, rarely:
    the collector's count moves as much in all, but no block sees a 30 KiB
    refill in its peak. Never while tracemalloc or the counter runs: spares
    made then are counted, and their free in a later block would read as
    that block's memory going down (a nested limit read 2 KB short of its
    10 MB). Under a trace that lasts as long as the program (``memguard
    run``), the spares made at import are all there are; once they are used
    up, a guard's own objects move the count again (a handful per block).

    Example:
        >>> import gc
        >>> balance = Balance()
        >>> before = gc.get_count()[0]
        >>> kept = [[] for _ in range(10)]
        >>> balance.settle()
        >>> gc.get_count()[0] == before
        True
    """

    __slots__ = ("_start",)

    def __init__(self) -> None:
        if len(_spares) < _LOW and not _measured():
            _spares.extend([_Spare() for _ in range(_REFILL)])
        self._start = gc.get_count()[0]

    def settle(self) -> None:
        """Free spares for every container allocated since the balance was made."""
        grown = gc.get_count()[0] - self._start
        if 0 < grown <= len(_spares):  # a collection meanwhile resets the count: leave it
            del _spares[-grown:]
