"""L2 measurement: a background thread that samples traced and resident memory.

Sampling is for timelines and charts only; exact peaks come from
tracemalloc's counter and the kernel's high-water mark (see
:mod:`memguard._tracing` and :mod:`memguard.process`). The thread reads the
traced total and the RSS every ``interval`` seconds, allocating as little as
it can, because whatever it allocates is traced too: RSS is read with one
``pread`` of ``/proc/self/statm`` where Linux offers it.
"""

from __future__ import annotations

import os
import threading
import time
import tracemalloc
from collections.abc import Callable

from . import _tracing, process
from .exceptions import MeasurementUnavailable

__all__ = ["Sampler", "rss_reader"]

_STATM = "/proc/self/statm"

Row = tuple[float, int | None, int | None]


def rss_reader() -> tuple[Callable[[], int] | None, Callable[[], None], str | None]:
    """A cheap RSS reader for repeated use, its closer, and why RSS is absent.

    Returns:
        ``(read, close, reason)``: *read* is ``None`` and *reason* says why
        when RSS cannot be read here.

    Example:
        >>> read, close, reason = rss_reader()
        >>> (read() > 0) if read else isinstance(reason, str)
        True
        >>> close()
    """
    try:
        fd = os.open(_STATM, os.O_RDONLY)
    except OSError:
        try:
            process.rss_bytes()
        except MeasurementUnavailable as error:
            return None, lambda: None, str(error)
        return process.rss_bytes, lambda: None, None
    page = os.sysconf("SC_PAGE_SIZE")

    def read() -> int:
        return int(os.pread(fd, 128, 0).split()[1]) * page

    return read, lambda: os.close(fd), None


class Sampler:
    """Samples ``(seconds since start, traced bytes, RSS bytes)`` in a daemon thread.

    Args:
        interval: Seconds between samples; must be positive.
        rss: Sample the process's RSS too.

    Example:
        >>> sampler = Sampler(0.01)
        >>> sampler.start()
        >>> rows = sampler.stop()
        >>> len(rows) >= 2
        True
    """

    def __init__(self, interval: float = 0.01, *, rss: bool = True) -> None:
        if isinstance(interval, bool) or not isinstance(interval, int | float) or not interval > 0:
            raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
        self.interval = float(interval)
        self.rows: list[Row] = []
        self.rss_absent: str | None = "RSS sampling was switched off" if not rss else None
        self._want_rss = rss
        self._read_rss: Callable[[], int] | None = None
        self._close: Callable[[], None] = lambda: None
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self.started = 0.0

    def sample(self) -> Row:
        """Take one sample now (also from the caller's thread) and keep it."""
        # Through _tracing, which waits while memguard excludes its own work
        # (a snapshot) from the peaks: the samples leave that work out too.
        traced = _tracing.refresh()[0] if tracemalloc.is_tracing() else None
        rss = self._read_rss() if self._read_rss is not None else None
        row = (time.perf_counter() - self.started, traced, rss)
        self.rows.append(row)
        return row

    def start(self) -> None:
        """Take the first sample and start the thread."""
        if self._thread is not None:
            raise RuntimeError("this Sampler has already been started")
        if self._want_rss:
            self._read_rss, self._close, self.rss_absent = rss_reader()
        self.started = time.perf_counter()
        self.sample()
        self._thread = threading.Thread(target=self._run, name="memguard-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # Short sleeps rather than Event.wait(interval): a wait allocates a
        # lock on every call, which the traced heap would show.
        step = min(self.interval, 0.005)
        due = self.interval
        while not self._stopped.is_set():
            now = time.perf_counter() - self.started
            if now >= due:
                self.sample()
                due += self.interval * max(1, int((now - due) / self.interval) + 1)
            time.sleep(min(step, max(0.0, due - now)))

    def stop(self) -> list[Row]:
        """Stop and join the thread, take a last sample, and return every row."""
        if self._thread is None:
            raise RuntimeError("this Sampler was never started")
        self._stopped.set()
        self._thread.join()
        try:
            if self.rows[-1][0] < time.perf_counter() - self.started:
                self.sample()
        finally:
            self._close()
            self._read_rss = None
        return self.rows
