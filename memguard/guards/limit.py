"""L4 guards: :func:`limit`, a peak-memory limit for a block or a function.

How the peak is measured:

* ``source="python"`` (the default): the peak of the traced Python heap
  during the block, above what was traced when it began, from tracemalloc's
  own peak counter, so it is exact however short the spike. tracemalloc is
  shared through :mod:`memguard._tracing`.
* ``source="rss"``: the process's peak resident memory, native allocations
  included, from the kernel's high-water mark where Linux offers it, or
  psutil sampling elsewhere (see :mod:`memguard.process`).

How the sites at the peak are found: tracemalloc keeps no history, so when
a block ends its short-lived spike is gone. While a Python-heap limit is
open, a small thread (the *peak-site catcher*) reads the traced total every
millisecond; only when the block is over its limit does it snapshot the live
traces, again each time the total grows 10% past the last capture, keeping
the top sites of the highest capture (memguard's own snapshot work is left
out of the peak). A spike is attributed when it lasts long enough for the
catcher to run: about one interpreter switch interval (5 ms, see
:func:`sys.getswitchinterval`) of pure-Python work, or any release of the
GIL (I/O, ``time.sleep``, most C extensions). When the highest capture is
below 90% of the peak, the report says so rather than naming lines that did
not make the peak. The catcher costs nothing measurable while the block
stays under its limit.
"""

from __future__ import annotations

import threading
import time
import tracemalloc
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, overload

from .. import _tracing, process
from ..exceptions import MemoryLimitExceeded, TracingError
from ..units import Size, format_size, size_from_keywords
from ..values.limit import LimitReport, SitesStatus, Source
from ..values.site import AllocationSite, sites_from_snapshot
from ._repr import guard_repr
from ._wrap import add_note, caller_label, wrap_callable

__all__ = ["limit"]

F = TypeVar("F", bound=Callable[..., Any])

_CATCH_INTERVAL = 0.001
_CAPTURE_GROWTH = 1.10
_ATTRIBUTED = 0.90
_KEPT_SITES = 10


class _PeakSiteCatcher:
    """Snapshots the live traces when a block is over its limit.

    ``tracemalloc.take_snapshot()`` copies the traces without tracing its own
    copy, so a capture neither moves the peak nor stops the measured code
    for longer than the copy. The grouping into sites, which does allocate,
    waits until the block's window has closed (:meth:`sites`).
    """

    def __init__(self, limit_bytes: int, baseline: tracemalloc.Snapshot | None) -> None:
        self.start_bytes: int | None = None
        self.limit_bytes = limit_bytes
        self.baseline = baseline
        self.level_bytes = 0
        self.snapshot: tracemalloc.Snapshot | None = None
        self._stopped = False
        # Started before the window opens, so that starting a thread is not
        # part of the block's peak; it polls with sleep() for the same reason
        # (an Event.wait allocates a lock on every call).
        self._thread = threading.Thread(target=self._run, name="memguard-peak-sites", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped = True
        self._thread.join()

    def capture(self) -> None:
        """Snapshot now if the block is over its limit and above the last capture."""
        if self.start_bytes is None:
            return
        level = _tracing.refresh()[0] - self.start_bytes
        if level <= self.limit_bytes or level < self.level_bytes * _CAPTURE_GROWTH:
            return
        self.snapshot = tracemalloc.take_snapshot()
        self.level_bytes = level

    def sites(self) -> tuple[AllocationSite, ...]:
        """The top sites of the highest capture; call once the window is closed."""
        snapshot, self.snapshot, baseline, self.baseline = self.snapshot, None, self.baseline, None
        if snapshot is None:
            return ()
        with _tracing.excluded():  # leave the grouping out of any enclosing window
            return sites_from_snapshot(snapshot, baseline=baseline, top=_KEPT_SITES)

    def _run(self) -> None:
        while not self._stopped:
            time.sleep(_CATCH_INTERVAL)
            if tracemalloc.is_tracing():
                self.capture()


class limit:
    """Fail when a block's peak memory goes over a limit.

    A context manager and a decorator (for plain and ``async def``
    functions). The limit is given once, positionally or as one keyword.

    Args:
        size: The limit: bytes as an ``int``, or a string such as
            ``"100 MB"`` or ``"1.5 GiB"`` (see :func:`memguard.units.parse_size`).
        kb, mb, gb: The limit in SI units (powers of 1000).
        kib, mib, gib: The limit in IEC units (powers of 1024).
        source: ``"python"`` for the traced Python heap (exact, the
            default) or ``"rss"`` for the process's resident memory,
            native allocations included.
        label: What to call the block in messages; defaults to the
            function's qualified name or the ``file:line`` of the ``with``.
        top: How many allocation sites the failure message lists.
        sites: Capture the allocation sites at the peak when the limit is
            exceeded (Python heap only).
        interval: Sampling interval in seconds for ``source="rss"`` where
            the kernel's high-water mark is unavailable.

    Attributes:
        report: The :class:`~memguard.values.limit.LimitReport` of the last
            block or call, once one has finished.

    Raises:
        MemoryLimitExceeded: At the end of the block, when the peak went over
            the limit. It is an :class:`AssertionError`.
        TypeError, ValueError: The limit or an option is malformed.

    Note:
        tracemalloc and the RSS are process-wide: allocations made by other
        threads (and other asyncio tasks, across an ``await``) while the
        block runs count towards its peak. tracemalloc sees only memory
        allocated through Python's allocators; use ``source="rss"`` for
        native memory.

    Example:
        >>> import memguard
        >>> with memguard.limit(mb=10) as guard:
        ...     data = bytearray(1_000_000)
        >>> guard.peak_bytes >= 1_000_000
        True

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        size: Size | None = None,
        /,
        *,
        kb: float | None = None,
        mb: float | None = None,
        gb: float | None = None,
        kib: float | None = None,
        mib: float | None = None,
        gib: float | None = None,
        source: Source = "python",
        label: str | None = None,
        top: int = 5,
        sites: bool = True,
        interval: float = 0.001,
    ) -> None:
        self.limit_bytes = size_from_keywords(size, name="limit", kb=kb, mb=mb, gb=gb,
                                              kib=kib, mib=mib, gib=gib)
        if source not in ("python", "rss"):
            raise ValueError(f"source must be 'python' or 'rss', got {source!r}")
        if isinstance(top, bool) or not isinstance(top, int) or top < 0:
            raise ValueError(f"top must be a non-negative int, got {top!r}")
        if isinstance(interval, bool) or not isinstance(interval, int | float) or not interval > 0:
            raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
        if label is not None and not isinstance(label, str):
            raise TypeError(f"label must be a string, not {type(label).__name__}")
        self.source: Source = source
        self.label = label
        self.top = top
        self.sites = sites
        self.interval = float(interval)
        self.report: LimitReport | None = None
        self._state: _Run | None = None
        self._parent: limit | None = None

    @property
    def peak_bytes(self) -> int:
        """The last block's peak above its starting level, in bytes."""
        if self.report is None:
            raise AttributeError("peak_bytes is known once the block has finished")
        return self.report.peak_bytes

    def _copy(self, label: str) -> limit:
        clone = limit(self.limit_bytes, source=self.source, label=self.label or label,
                      top=self.top, sites=self.sites, interval=self.interval)
        clone._parent = self
        return clone

    @overload
    def __call__(self, fn: F) -> F: ...
    @overload
    def __call__(self, fn: Any) -> Any: ...
    def __call__(self, fn: Any) -> Any:
        label = getattr(fn, "__qualname__", None) or repr(fn)
        return wrap_callable(fn, lambda: self._copy(label))

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        return guard_repr("limit", f"{format_size(self.limit_bytes)}, source={self.source!r}"
                          f"{label}", running=self._state is not None, result=self.report)

    def __enter__(self) -> limit:
        if self._state is not None:
            raise RuntimeError("this limit() is already in use; a `with` block cannot be "
                               "re-entered (decorated functions get a fresh one per call)")
        self._state = _Run(self, self.label or caller_label())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        __tracebackhide__ = True
        state, self._state = self._state, None
        assert state is not None
        try:
            report = state.finish()
        except TracingError as error:
            if exc is not None:
                add_note(exc, f"memguard: {error}")
                return
            raise
        self.report = report
        if self._parent is not None:
            self._parent.report = report
        if not report.exceeded:
            return
        message = report.message(top=self.top)
        if exc is not None:
            add_note(exc, message)
            return
        raise MemoryLimitExceeded(message, peak_bytes=report.peak_bytes,
                                  limit_bytes=report.limit_bytes, source=report.source,
                                  label=report.label, details=report)


class _Run:
    """The measurement of one block, from ``__enter__`` to ``__exit__``."""

    def __init__(self, guard: limit, label: str) -> None:
        self.guard = guard
        self.label = label
        self.catcher: _PeakSiteCatcher | None = None
        self.rss: process.RssWindow | None = None
        self.window: _tracing.PeakWindow | None = None
        self.started = time.perf_counter()
        if guard.source == "rss":
            self.rss = process.begin_rss(interval=guard.interval)
            return
        baseline = None
        if guard.sites and tracemalloc.is_tracing():
            # Traces from before the block are there too: keep a baseline so
            # that the sites named are the block's own growth (the copy is
            # not traced itself).
            baseline = tracemalloc.take_snapshot()
        if guard.sites:
            self.catcher = _PeakSiteCatcher(guard.limit_bytes, baseline)
            self.catcher.start()
        self.window = _tracing.begin()
        if self.catcher is not None:
            self.catcher.start_bytes = self.window.start_bytes

    def finish(self) -> LimitReport:
        duration = time.perf_counter() - self.started
        guard = self.guard
        if self.rss is not None:
            rss = process.end_rss(self.rss)
            return LimitReport(
                label=self.label, source="rss", method=rss.method,
                limit_bytes=guard.limit_bytes, peak_bytes=rss.peak_bytes,
                start_bytes=rss.start_bytes, end_bytes=process.rss_bytes(),
                duration_seconds=duration, sites_status="unavailable",
                interval_seconds=rss.interval_seconds,
            )
        assert self.window is not None
        status: SitesStatus = "off"
        sites: tuple[AllocationSite, ...] = ()
        level = 0
        try:
            if self.catcher is not None:
                self.catcher.stop()
                if tracemalloc.is_tracing():
                    self.catcher.capture()  # the end of the block may be its peak
        finally:
            window = _tracing.end(self.window)
        if self.catcher is not None:
            level = self.catcher.level_bytes
            if window.peak_bytes <= guard.limit_bytes:
                status, level = "not-needed", 0
            else:
                sites = self.catcher.sites()
                if not sites:
                    status = "unattributed"
                elif level < _ATTRIBUTED * window.peak_bytes:
                    status = "partial"
                else:
                    status = "peak"
        return LimitReport(
            label=self.label, source="python", method="tracemalloc",
            limit_bytes=guard.limit_bytes, peak_bytes=window.peak_bytes,
            start_bytes=window.start_bytes, end_bytes=window.end_bytes or 0,
            duration_seconds=duration, sites=sites, sites_status=status,
            sites_level_bytes=level,
        )
