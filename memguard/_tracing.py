"""L2 measurement: the sole owner of tracemalloc's start, stop and peak reset.

memguard shares :mod:`tracemalloc` with everyone else in the process:

* It starts tracing only when nobody traces, and stops only what it started
  (the outermost memguard window closes it). A trace started by someone else
  (``-X tracemalloc``, pytest-memray, the user) is left running, with its
  frame count.
* tracemalloc has one peak counter. Every open window is a
  :class:`PeakWindow`; before memguard resets the counter it folds the peak
  so far into every open window, so nested and concurrent windows (a limit
  in a limit, a limit in another thread) each keep their own, correct peak.
* When the trace belongs to someone else, memguard remembers the highest peak
  it saw and, as its last window closes, raises the counter back to it (a
  zero-filled ``bytes`` object of the missing size is allocated and freed:
  ``calloc`` pages that are never touched, so it costs no resident memory).
  The restored peak is exact to within the few hundred bytes allocated
  between the reading and the allocation.

Only this module calls ``tracemalloc.start``, ``stop``, ``reset_peak`` or
``clear_traces``.
"""

from __future__ import annotations

import os
import sys
import threading
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from . import _counter, _watcher
from .exceptions import TracingError

__all__ = [
    "STOP_KEEPS_TRACEBACKS",
    "PeakWindow",
    "begin",
    "end",
    "excluded",
    "open_windows",
    "rebase",
    "refresh",
    "restart_peak",
    "stops_made",
]

_lock = threading.RLock()
_windows: list[PeakWindow] = []
_started_here = False
_foreign_peak = 0
_BYTES_HEADER = sys.getsizeof(b"")
_stops = 0
"""How many times memguard has stopped a trace of its own (see :func:`stops_made`)."""

STOP_KEEPS_TRACEBACKS = sys.version_info < (3, 12, 5)
"""Whether ``tracemalloc.stop()`` leaves every traceback it recorded allocated.

CPython before 3.12.5 frees its table of tracebacks but not the tracebacks
(gh-121390): each start and stop of a trace in which new code allocated
leaves a few dozen bytes per allocating line behind, in the Python heap
(malloc through the allocator that was installed when tracing started).
"""


def stops_made() -> int:
    """How many times memguard has stopped a trace it started, in this process.

    Where :data:`STOP_KEEPS_TRACEBACKS`, each such stop leaves memory behind
    that no block of the measured code holds: a leak check of code that
    opens memguard's tracing guards compares this before and after its
    calls to tell that growth from the code's.
    """
    return _stops


def _after_fork_in_child() -> None:
    # Another thread (a catcher in excluded()) may have held the lock at the
    # fork; the child has only the forking thread.
    global _lock
    _lock = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@dataclass(eq=False, slots=True)
class PeakWindow:
    """One user's view of the traced Python heap while a block runs."""

    start_bytes: int
    """Traced memory when the window opened."""
    peak_total_bytes: int
    """The highest traced total seen while the window was open."""
    started_tracing: bool = False
    """Whether opening this window started tracemalloc."""
    end_bytes: int | None = field(default=None)
    """Traced memory when the window closed, once closed."""

    @property
    def peak_bytes(self) -> int:
        """The peak above the starting level, in bytes."""
        return max(0, self.peak_total_bytes - self.start_bytes)


def _fold(peak_total: int) -> None:
    global _foreign_peak
    if not _started_here and peak_total > _foreign_peak:
        _foreign_peak = peak_total
    # No container made here (see quiet_level()): no list iterator, and no
    # max(), whose arguments are packed in a tuple on this Python.
    for index in range(len(_windows)):
        window = _windows[index]
        if peak_total > window.peak_total_bytes:  # noqa: PLR1730
            window.peak_total_bytes = peak_total


def _enter_foreign() -> None:
    """Start sharing a trace someone else owns: remember its peak as it is now."""
    global _started_here, _foreign_peak
    _started_here = False
    _foreign_peak = tracemalloc.get_traced_memory()[1]


def begin(nframes: int = 1) -> PeakWindow:
    """Open a peak window, starting tracemalloc when nobody traces.

    Args:
        nframes: Frames to store per allocation if memguard starts tracing;
            an existing trace keeps its own frame count.

    Returns:
        The open window; pass it to :func:`end`.
    """
    if nframes < 1:
        raise ValueError(f"nframes must be at least 1, got {nframes!r}")
    # The level is read with the watcher thread between two rounds of its
    # tasks, whose objects would otherwise be counted in the start and their
    # free read as the block's memory going down. Not while this thread
    # holds the lock: a task may be waiting for it. (A plain lock, no context
    # manager: its objects would be counted in the start the same way.)
    paused = not _lock._is_owned() and _watcher.pause()  # type: ignore[attr-defined]
    try:
        return _begin(nframes)
    finally:
        if paused:
            _watcher.resume()


def _begin(nframes: int) -> PeakWindow:
    global _started_here, _foreign_peak
    with _lock:
        started = False
        if not _windows:
            if tracemalloc.is_tracing():
                _enter_foreign()
            else:
                tracemalloc.start(nframes)
                _started_here = started = True
                _foreign_peak = 0
        elif not tracemalloc.is_tracing():
            raise TracingError("tracemalloc was stopped while a memguard block was open")
        current, peak = tracemalloc.get_traced_memory()
        _fold(peak)
        tracemalloc.reset_peak()
        window = PeakWindow(current, current, started_tracing=started)
        _windows.append(window)
        return window


def refresh() -> tuple[int, int]:
    """Fold the peak so far into every open window.

    Returns:
        ``(current, peak)`` traced bytes, as tracemalloc reports them.
    """
    with _lock:
        current, peak = tracemalloc.get_traced_memory()
        _fold(peak)
        return current, peak


def quiet_level() -> int:
    """The traced bytes now, peak folded into every open window, for the watcher thread.

    :func:`refresh` returns a tuple, reads tracemalloc's (another), and its
    ``with`` makes a bound method: containers, each of which counts towards
    the collector's next young collection, so a reading every interval on
    the watcher thread could start the program's collection there, one
    allocation early and on the wrong thread. This reading creates none
    (:func:`memguard._watcher.traced_level`, a lock taken by plain calls).
    It waits, as :func:`refresh` does, while memguard leaves its own work out
    of the peaks (:func:`excluded`).
    """
    _lock.acquire()
    try:
        if not tracemalloc.is_tracing():
            return 0
        level = _watcher.traced_level()
        _fold(_watcher.traced_peak())
        return level
    finally:
        _lock.release()


def rebase() -> int:
    """Restart the peak counter at the current level; return that level.

    For the line profiler, which reads the counters with :func:`refresh` at
    every traced line, does its own bookkeeping, then calls this: the peak
    of the bookkeeping is dropped (like :func:`excluded`), so the next
    reading's peak covers the profiled code alone. Only memguard's own work
    may run between the :func:`refresh` and this call.

    Returns:
        The traced bytes when the counter restarted.
    """
    # acquire()/release() rather than `with`: a `with` keeps a bound __exit__
    # method alive during the reading, 72 bytes the profiler would count.
    _lock.acquire()
    try:
        # Read first: the int the reading allocates is then the only thing
        # the restarted counter sees above the level returned.
        current = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
    finally:
        _lock.release()
    return current


def restart_peak(peak: int) -> None:
    """Fold *peak* (read a moment ago) into every open window, then restart the counter.

    The line profiler's per-line path: it reads the counters once, does its
    bookkeeping, and restarts the peak here, so its bookkeeping's own peak
    is dropped (like :func:`excluded`) while the code's peak is kept.
    """
    _lock.acquire()
    try:
        _fold(peak)
        tracemalloc.reset_peak()
    finally:
        _lock.release()


@contextmanager
def excluded() -> Iterator[None]:
    """Leave memguard's own work inside the block out of every open peak.

    Every open peak: tracemalloc's windows here and the native counter's
    (:func:`memguard._counter.excluded`), so that every caller of this one
    place keeps its work out of both measures.

    The peak so far is folded into every open window first; whatever the body
    allocates (a snapshot of the traces, say) is then dropped from the peak
    counter. The body runs holding the GIL in C for the most part, so the
    measured code cannot allocate meanwhile.
    """
    # The counter's lock first, as everywhere (limit() holds it, then may
    # rearm a catcher that comes here): one order, no deadlock.
    with _counter.excluded(), _lock:
        outermost = not _windows and tracemalloc.is_tracing()
        if outermost:
            _enter_foreign()
        _fold(tracemalloc.get_traced_memory()[1])
        try:
            yield
        finally:
            if tracemalloc.is_tracing():
                tracemalloc.reset_peak()
                if outermost:
                    _restore_foreign_peak()


def end(window: PeakWindow) -> PeakWindow:
    """Close *window*, fixing its peak; stop tracing if memguard started it.

    Returns:
        The same window, now with ``end_bytes`` set.

    Raises:
        TracingError: Someone stopped tracemalloc while the window was open,
            so its peak is unknown. The window is closed all the same.
    """
    global _started_here, _stops
    with _lock:
        tracing = tracemalloc.is_tracing()
        if tracing:
            current, peak = tracemalloc.get_traced_memory()
            _fold(peak)
            window.end_bytes = current
        if window in _windows:
            _windows.remove(window)
        if not _windows:
            if _started_here and tracing:
                tracemalloc.stop()
                _stops += 1
                _counter.rehook()  # count windows opened meanwhile keep their hooks
            elif tracing:
                _restore_foreign_peak()
            _started_here = False
        if not tracing:
            raise TracingError("tracemalloc was stopped by someone else while a memguard "
                               "block was open, so its peak is unknown")
        return window


def _restore_foreign_peak() -> None:
    """Raise tracemalloc's peak counter back to what its owner last saw."""
    current, peak = tracemalloc.get_traced_memory()
    missing = _foreign_peak - current - _BYTES_HEADER
    if peak < _foreign_peak and missing > 0:
        filler = bytes(missing)
        del filler


def open_windows() -> int:
    """How many memguard peak windows are open right now."""
    with _lock:
        return len(_windows)

