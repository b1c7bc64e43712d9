"""L5 guards: :func:`limit`, a peak-memory limit for a block or a function.

How the peak is measured (``docs/how-it-measures.md`` says more):

* ``source="python"`` (the default): the peak of the Python heap during the
  block, above its level when the block began, exact however short the
  spike. Measured by memguard's native allocation counter
  (:mod:`memguard._counter`, ``method="counter"``) where the extension is
  built, for about the price of a counter; else, or with ``sites="exact"``,
  by tracemalloc's own peak counter (``method="tracemalloc"``), shared
  through :mod:`memguard._tracing`.
* ``source="rss"``: the process's peak resident memory, native allocations
  included, from the kernel's high-water mark where Linux offers it, or
  psutil sampling elsewhere (see :mod:`memguard.process`).

How the sites at the peak are found: with the counter, allocations are
sampled by bytes (a mean interval of 256 KiB, each sampled block with its
Python stack), and the sampled live set is copied inside the allocator hook
at the moment each new peak over the limit is made (again each time it grows
10%): the sites named are estimates, and the message says so. With
``sites="exact"`` tracemalloc traces every block; the counter's hook still
says when a new peak over the limit is made, and the live traces are copied
in the main thread as soon after that moment as the interpreter allows (a
pending call, between two bytecodes). Without the extension, a task of the
watcher thread (:mod:`memguard._watcher`) polls the traced total every
millisecond instead, and a spike shorter than that may go unattributed.
Whether the sites are those of the peak is decided by
:func:`memguard.values.limit.sites_status`, the one rule.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from types import TracebackType
from typing import Any, Literal, TypeVar, overload

from .. import _counter, _tracing, _watcher, process
from ..exceptions import MemoryLimitExceeded, TracingError
from ..units import Size, format_size, size_from_keywords
from ..values._value import renamed
from ..values.limit import CAPTURE_GROWTH, KEPT_SITES, LimitReport, Source, sites_status
from ..values.site import (
    AllocationSite,
    is_internal,
    site_sort_key,
    sites_from_snapshot,
    with_source,
)
from ._catcher import TraceCatcher
from ._repr import guard_repr
from ._wrap import add_note, caller_label, wrap_callable

__all__ = ["limit"]

F = TypeVar("F", bound=Callable[..., Any])
Sites = bool | Literal["sampled", "exact"]


def sampled_sites(sampled: _counter.SampledSet) -> tuple[AllocationSite, ...]:
    """Group a sampled live set by the innermost line that is not memguard's.

    Each sampled block stands for ``estimate(size, interval)`` bytes; a site's
    size is the sum over its blocks, its count the estimated number of blocks.
    """
    sizes: dict[tuple[str, int], list[float]] = {}
    for sample in sampled.samples:
        place = next(((f, line) for f, _name, line in sample.frames if not is_internal(f)),
                     None)
        if place is None:
            continue
        weight = _counter.estimate(sample.size_bytes, sampled.interval_bytes)
        entry = sizes.setdefault(place, [0.0, 0.0])
        entry[0] += weight
        entry[1] += weight / sample.size_bytes if sample.size_bytes else 1.0
    sites = [AllocationSite(filename=f, lineno=line, size_bytes=round(size),
                            count=max(1, round(count)))
             for (f, line), (size, count) in sizes.items()]
    sites.sort(key=site_sort_key)
    return tuple(map(with_source, sites[:KEPT_SITES]))  # each with its line's text


_captures: list[_Run] = []
"""The counter-measured limits open now; the innermost one owns the counter's capture."""


class limit:
    """Fail when a block's peak memory goes over a limit.

    A context manager and a decorator (for plain and ``async def``
    functions). The limit is given once, positionally or as one keyword.

    Args:
        size: The limit: bytes as an ``int``, or a string such as
            ``"100 MB"`` or ``"1.5 GiB"`` (see :func:`memguard.units.parse_size`).
        kb, mb, gb: The limit in SI units (powers of 1000).
        kib, mib, gib: The limit in IEC units (powers of 1024).
        source: ``"python"`` for the Python heap (exact, the default) or
            ``"rss"`` for the process's resident memory, native allocations
            included.
        label: What to call the block in messages; defaults to the
            function's qualified name or the ``file:line`` of the ``with``.
        top: How many allocation sites the failure message lists.
        sites: Name the allocation sites at the peak when the limit is
            exceeded (Python heap only): ``True`` (the default) samples them
            with the native counter (estimates; exact with tracemalloc where
            the counter is unavailable), ``"exact"`` measures with
            tracemalloc and names them exactly (at tracemalloc's cost),
            ``"sampled"`` insists on sampling, ``False`` names none.
        sample_bytes: The mean sampling interval of sites, in bytes
            (256 KiB); smaller is more precise and costs more.
        interval: Sampling interval in seconds for ``source="rss"`` where
            the kernel's high-water mark is unavailable.

    Attributes:
        report: The :class:`~memguard.values.limit.LimitReport` of the last
            block or call, once one has finished. A decorated function has
            the same attribute: ``parse.report``.

    Raises:
        MemoryLimitExceeded: At the end of the block, when the peak went over
            the limit. It is an :class:`AssertionError`.
        TypeError, ValueError: The limit or an option is malformed.

    Note:
        The Python heap and the RSS are process-wide: allocations made by
        other threads (and other asyncio tasks, across an ``await``) while the
        block runs count towards its peak. The Python heap is memory
        allocated through Python's allocators; use ``source="rss"`` for
        native memory (numpy's array data is counted by tracemalloc, which
        numpy tells, and not by the counter: see ``docs/how-it-measures.md``).

    Example:
        >>> import memguard
        >>> with memguard.limit(mb=10) as guard:
        ...     data = bytearray(1_000_000)
        >>> guard.peak_above_start_bytes >= 1_000_000
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
        sites: Sites = True,
        interval: float = 0.001,
        sample_bytes: int = _counter.DEFAULT_SAMPLE_BYTES,
    ) -> None:
        balance = _watcher.Balance()  # making a guard moves no collection (issue 21)
        self.limit_bytes = size_from_keywords(size, name="limit", kb=kb, mb=mb, gb=gb,
                                              kib=kib, mib=mib, gib=gib)
        if source not in ("python", "rss"):
            raise ValueError(f"source must be 'python' or 'rss', got {source!r}")
        if isinstance(top, bool) or not isinstance(top, int) or top < 0:
            raise ValueError(f"top must be a non-negative int, got {top!r}")
        if isinstance(interval, bool) or not isinstance(interval, int | float) or not interval > 0:
            raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
        if sites not in (True, False, "exact", "sampled") or (
                not isinstance(sites, bool | str)):
            raise ValueError(f"sites must be True, False, 'exact' or 'sampled', got {sites!r}")
        if isinstance(sample_bytes, bool) or not isinstance(sample_bytes, int) or sample_bytes < 1:
            raise ValueError(f"sample_bytes must be a positive int, got {sample_bytes!r}")
        if label is not None and not isinstance(label, str):
            raise TypeError(f"label must be a string, not {type(label).__name__}")
        self.source: Source = source
        self.label = label
        self.top = top
        self.sites: Sites = sites
        self.interval = float(interval)
        self.sample_bytes = sample_bytes
        self.report: LimitReport | None = None
        self._state: _Run | None = None
        self._parent: limit | None = None
        self._wrapper: Any = None
        balance.settle()

    @property
    def peak_above_start_bytes(self) -> int:
        """The last block's peak above its starting level, in bytes."""
        if self.report is None:
            raise AttributeError("peak_above_start_bytes is known once the block has finished")
        return self.report.peak_above_start_bytes

    @property
    def peak_bytes(self) -> int:
        """Deprecated: :attr:`peak_above_start_bytes`."""
        if self.report is None:
            raise AttributeError("peak_bytes is known once the block has finished")
        renamed("limit", "peak_bytes", "peak_above_start_bytes")
        return self.report.peak_above_start_bytes

    def _copy(self, label: str, wrapper: Any) -> limit:
        clone = limit(self.limit_bytes, source=self.source, label=self.label or label,
                      top=self.top, sites=self.sites, interval=self.interval,
                      sample_bytes=self.sample_bytes)
        clone._parent = self
        clone._wrapper = wrapper
        return clone

    @overload
    def __call__(self, fn: F) -> F: ...
    @overload
    def __call__(self, fn: Any) -> Any: ...
    def __call__(self, fn: Any) -> Any:
        label = getattr(fn, "__qualname__", None) or repr(fn)
        wrapper: Any = None
        wrapper = wrap_callable(fn, lambda: self._copy(label, wrapper))
        wrapper.report = None  # the last call's LimitReport, as on the decorator
        return wrapper

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        return guard_repr("limit", f"{format_size(self.limit_bytes)}, source={self.source!r}"
                          f"{label}", running=self._state is not None, result=self.report)

    def __enter__(self) -> limit:
        if self._state is not None:
            raise RuntimeError("this limit() is already in use; a `with` block cannot be "
                               "re-entered (decorated functions get a fresh one per call)")
        # The guard's own objects must not bring the program's next
        # collection forward (issue 21): see memguard._watcher.Balance.
        # The balance lives as long as the block: freed inside it, it would
        # lower the count of an enclosing window's block below this one's
        # start, and this block's peak would read short by its size.
        balance = _watcher.Balance()
        self._state = _Run(self, self.label or caller_label(), balance)
        balance.settle()
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
        if self._wrapper is not None:
            self._wrapper.report = report
        if not report.exceeded:
            return
        message = report.message(top=self.top)
        if exc is not None:
            add_note(exc, message)
            return
        raise MemoryLimitExceeded(message, peak_above_start_bytes=report.peak_above_start_bytes,
                                  limit_bytes=report.limit_bytes, source=report.source,
                                  label=report.label, details=report)


class _Run:
    """The measurement of one block, from ``__enter__`` to ``__exit__``."""

    def __init__(self, guard: limit, label: str, balance: _watcher.Balance) -> None:
        self.balance = balance  # kept (not freed) until the block ends; see limit.__enter__
        self.guard = guard
        self.label = label
        self.catcher: TraceCatcher | None = None
        self.rss: process.RssWindow | None = None
        self.window: _tracing.PeakWindow | None = None
        self.count: _counter.CountWindow | None = None
        self.sampling = False
        self.started = time.perf_counter()
        if guard.source == "rss":
            self.rss = process.begin_rss(interval=guard.interval)
            return
        native = _counter.available()
        if guard.sites == "sampled" and not native:
            raise ValueError(f"sites='sampled' needs the native counter: "
                             f"{_counter.unavailable_reason()}")
        if native and guard.sites != "exact":
            self._begin_counter()
        else:
            self._begin_tracemalloc(native)

    def _begin_counter(self) -> None:
        guard = self.guard
        self.count = _counter.begin()
        if guard.sites:
            self.sampling = True
            with _counter.excluded():
                _counter.sample(guard.sample_bytes)
                _captures.append(self)
                _counter.capture(self.count.start_bytes + guard.limit_bytes, CAPTURE_GROWTH)

    def _begin_tracemalloc(self, native: bool) -> None:
        guard = self.guard
        baseline = None
        if guard.sites and tracemalloc.is_tracing():
            # Traces from before the block are there too: keep a baseline so
            # that the sites named are the block's own growth (the copy is
            # not traced itself).
            baseline = tracemalloc.take_snapshot()
        self.window = _tracing.begin()
        if not guard.sites:
            return

        def top_sites(snapshot: tracemalloc.Snapshot) -> tuple[AllocationSite, ...]:
            return sites_from_snapshot(snapshot, baseline=baseline, top=KEPT_SITES)

        self.catcher = TraceCatcher(self.window.start_bytes, guard.limit_bytes, top_sites)
        self.catcher.arm()
        if self.catcher.triggered_by_counter:
            _captures.append(self)

    def _release_capture(self) -> None:
        """Give the counter's one capture back to the limit this one was nested in."""
        if self not in _captures:
            return
        _captures.remove(self)
        if not _captures:
            _counter.capture(-1, CAPTURE_GROWTH)
            return
        outer = _captures[-1]
        if outer.catcher is not None:
            outer.catcher.rearm()
        else:
            assert outer.count is not None
            _counter.capture(outer.count.start_bytes + outer.guard.limit_bytes, CAPTURE_GROWTH)

    def finish(self) -> LimitReport:
        duration = time.perf_counter() - self.started
        guard = self.guard
        if self.rss is not None:
            rss = process.end_rss(self.rss)
            return LimitReport(
                label=self.label, source="rss", method=rss.method,
                limit_bytes=guard.limit_bytes, peak_above_start_bytes=rss.peak_bytes,
                start_bytes=rss.start_bytes, end_bytes=process.rss_bytes(),
                duration_seconds=duration, sites_status="unavailable",
                interval_seconds=rss.interval_seconds,
            )
        if self.window is None:
            return self._finish_counter(duration)
        return self._finish_tracemalloc(duration)

    def _finish_counter(self, duration: float) -> LimitReport:
        guard = self.guard
        count = self.count
        assert count is not None
        sites: tuple[AllocationSite, ...] = ()
        level: int | None = None
        try:
            _, peak = _counter.refresh()
            exceeded = max(peak, count.peak_total_bytes) - count.start_bytes > guard.limit_bytes
            if self.sampling:
                with _counter.excluded():  # building the sites is not the block's
                    if exceeded:
                        sampled = _counter.captured()
                        if sampled is not None:
                            level = sampled.level_bytes - count.start_bytes
                            sites = sampled_sites(sampled)
                    self._release_capture()
        finally:
            count = _counter.end(count)
        status = sites_status(wanted=self.sampling, exceeded=count.peak_bytes > guard.limit_bytes,
                              captured_above_start_bytes=level,
                              peak_above_start_bytes=count.peak_bytes,
                              named=len(sites))
        return LimitReport(
            label=self.label, source="python", method="counter",
            limit_bytes=guard.limit_bytes, peak_above_start_bytes=count.peak_bytes,
            start_bytes=count.start_bytes, end_bytes=count.end_bytes or 0,
            duration_seconds=duration, sites=sites, sites_status=status,
            sites_above_start_bytes=level,  # None unless a copy was made (exceeded, sampling)
            sample_interval_bytes=float(guard.sample_bytes) if sites else 0.0,
        )

    def _finish_tracemalloc(self, duration: float) -> LimitReport:
        guard = self.guard
        assert self.window is not None
        catcher = self.catcher
        try:
            if catcher is not None:
                catcher.disarm(final=True)  # the end of the block may be its peak
                self._release_capture()
        finally:
            window = _tracing.end(self.window)
        sites: tuple[AllocationSite, ...] = ()
        exceeded = window.peak_bytes > guard.limit_bytes
        if catcher is not None and exceeded:
            kept = catcher.result()
            sites = kept if isinstance(kept, tuple) else ()
        level = catcher.level_bytes if catcher is not None and catcher.level_bytes else None
        status = sites_status(wanted=catcher is not None, exceeded=exceeded,
                              captured_above_start_bytes=level,
                              peak_above_start_bytes=window.peak_bytes,
                              named=len(sites))
        return LimitReport(
            label=self.label, source="python", method="tracemalloc",
            limit_bytes=guard.limit_bytes, peak_above_start_bytes=window.peak_bytes,
            start_bytes=window.start_bytes, end_bytes=window.end_bytes or 0,
            duration_seconds=duration, sites=sites, sites_status=status,
            sites_above_start_bytes=level if status not in ("not-needed", "off") else None,
        )
