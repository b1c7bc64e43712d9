"""L3 sampler: samples of traced and resident memory for timelines.

Sampling is for timelines and charts only; exact peaks come from
tracemalloc's counter and the kernel's high-water mark (see
:mod:`memguard._tracing` and :mod:`memguard.process`). A :class:`Sampler` is
a task of memguard's one watcher thread (:mod:`memguard._watcher`, re-exported
here) that reads the traced total and the RSS every ``interval`` seconds,
allocating as little as it can, because whatever it allocates is traced too:
RSS is read with one ``pread`` of ``/proc/self/statm`` where Linux offers it,
and samples go into flat arrays reserved up front.
"""

from __future__ import annotations

import threading
import time
import tracemalloc
from array import array
from collections.abc import Callable

from . import _tracing
from ._watcher import Task, add, unwatch, watch, watcher_running
from .process import rss_reader

__all__ = ["Sampler", "Task", "add", "rss_reader", "unwatch", "watch", "watcher_running"]

Row = tuple[float, int | None, int | None]


class Sampler:
    """Samples ``(seconds since start, traced bytes, RSS bytes)`` on the watcher thread.

    Samples are kept in flat arrays, 24 bytes each, and room for the first
    *reserve* of them is allocated when the sampler is made, before the
    measured block starts, so that a long recording adds little to the traced
    heap it is recording.

    Args:
        interval: Seconds between samples; must be positive.
        rss: Sample the process's RSS too.
        reserve: Samples to make room for up front (4096: 41 s at 10 ms).

    Example:
        >>> sampler = Sampler(0.01)
        >>> sampler.start()
        >>> sampler.stop()
        >>> len(sampler.rows()) >= 2
        True
    """

    def __init__(self, interval: float = 0.01, *, rss: bool = True, reserve: int = 4096) -> None:
        if isinstance(interval, bool) or not isinstance(interval, int | float) or not interval > 0:
            raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
        if isinstance(reserve, bool) or not isinstance(reserve, int) or reserve < 1:
            raise ValueError(f"reserve must be a positive int, got {reserve!r}")
        self.interval = float(interval)
        self.rss_absent: str | None = "RSS sampling was switched off" if not rss else None
        self._want_rss = rss
        self._read_rss: Callable[[], int] | None = None
        self._close: Callable[[], None] = lambda: None
        self._task: Task | None = None
        self._ended = False
        self._lock = threading.Lock()
        self._times = array("d", bytes(8 * reserve))
        self._traced = array("q", bytes(8 * reserve))
        self._rss = array("q", bytes(8 * reserve))
        self._count = 0
        self.started = 0.0

    def sample(self) -> Row:
        """Take one sample now (also from the caller's thread) and keep it."""
        index = self._take()
        traced, rss = self._traced[index], self._rss[index]
        return self._times[index], None if traced < 0 else traced, None if rss < 0 else rss

    def _take(self) -> int:
        """Take a sample; return its index. The watcher thread's task.

        It makes no container (no tuple, no ``with``'s bound method) unless
        RSS is read, so that a sample taken when the program's young count is
        at its threshold does not start the program's collection on the
        watcher thread (see :func:`memguard._tracing.quiet_level`).
        """
        # Through _tracing, which waits while memguard excludes its own work
        # (a snapshot) from the peaks: the samples leave that work out too.
        traced = _tracing.quiet_level() if tracemalloc.is_tracing() else -1
        rss = self._read_rss() if self._read_rss is not None else -1
        when = time.perf_counter() - self.started
        self._lock.acquire()
        try:
            index = self._count
            if index == len(self._times):
                self._times.extend(self._times)
                self._traced.extend(self._traced)
                self._rss.extend(self._rss)
            self._times[index] = when
            self._traced[index] = traced
            self._rss[index] = rss
            self._count = index + 1
        finally:
            self._lock.release()
        return index

    def rows(self) -> list[Row]:
        """Every sample so far, oldest first, as ``(seconds, traced, rss)``."""
        with self._lock:
            count = self._count
        found = zip(self._times[:count], self._traced[:count], self._rss[:count], strict=True)
        rows = [(t, None if tr < 0 else tr, None if rss < 0 else rss) for t, tr, rss in found]
        rows.sort()
        return rows

    def start(self) -> None:
        """Take the first sample and start the thread."""
        if self._task is not None or self._ended:
            raise RuntimeError("this Sampler has already been started")
        if self._want_rss:
            self._read_rss, self._close, self.rss_absent = rss_reader()
        self.started = time.perf_counter()
        self.sample()
        task = Task(self._take, self.interval)
        task.due = time.perf_counter() + self.interval  # the first sample is taken
        self._task = task
        add(task)

    def stop(self) -> None:
        """Stop and join the thread, and take a last sample; :meth:`rows` has them all."""
        if self._task is None:
            raise RuntimeError("this Sampler was never started")
        unwatch(self._task)
        self._task, self._ended = None, True
        try:
            self.sample()
        finally:
            self._close()
            self._read_rss = None
