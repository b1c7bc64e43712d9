"""L5 guards: :func:`record`, a timeline of memory while a block runs.

``with memguard.record(interval=0.01) as timeline:`` samples the traced
Python heap and the process's RSS on memguard's one watcher thread
(:class:`memguard.sampler.Sampler`, a task of :mod:`memguard._watcher`);
``timeline.mark("label")`` notes a moment. A sample allocates a few objects
that it frees at once, with the collector off, so the program's collections
are unchanged (``tests/integration/test_undisturbed.py``). The exact peaks
are kept beside the samples: tracemalloc's peak counter through
:mod:`memguard._tracing`, and the kernel's RSS high-water mark where Linux
offers it. The task is removed (and the thread joined if it was the last)
however the block ends, and tracing is stopped only if ``record`` started it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from types import TracebackType
from typing import Any

from .. import _tracing, _watcher, process
from ..exceptions import MeasurementUnavailable, TracingError
from ..sampler import Sampler
from ..values.timeline import Mark, Sample, Timeline
from ._repr import guard_repr
from ._wrap import add_note

__all__ = ["Recording", "record", "timeline_from"]


class Recording:
    """The live side of :func:`record`: marks while the block runs, the
    :class:`~memguard.values.timeline.Timeline` once it has ended.

    After the block, every :class:`Timeline` attribute (``samples``,
    ``marks``, ``traced_peak_bytes``, ...) can be read on the recording
    itself, and :mod:`memguard.report` renders it as its timeline.

    Example:
        >>> import memguard
        >>> with memguard.record(interval=0.01) as timeline:
        ...     data = bytearray(100_000)
        ...     _ = timeline.mark("allocated")
        >>> timeline.marks[0].label
        'allocated'
    """

    def __init__(self, interval: float, label: str | None, rss: bool) -> None:
        self._sampler = Sampler(interval, rss=rss)
        self._label = label
        self._marks: list[Mark] = []
        self._lock = threading.Lock()
        self._timeline: Timeline | None = None
        self._window: _tracing.PeakWindow | None = None
        self._rss_window: process.RssWindow | None = None
        self._started_at = 0.0

    @property
    def timeline(self) -> Timeline:
        """The finished :class:`Timeline`.

        Raises:
            RuntimeError: The block has not ended yet.
        """
        if self._timeline is None:
            raise RuntimeError("the timeline is complete once the record() block has ended")
        return self._timeline

    def __memguard_value__(self) -> Timeline:
        return self.timeline

    def __getattr__(self, name: str) -> Any:
        # AttributeError (not RuntimeError) while running, so hasattr() and
        # getattr(x, name, default) keep working on a running recording.
        if name.startswith("_"):
            raise AttributeError(name)
        if self._timeline is None:
            raise AttributeError(f"{name!r} is known once the record() block has ended")
        return getattr(self._timeline, name)

    def mark(self, label: str) -> Mark:
        """Note a labelled moment (and take a sample there).

        Raises:
            RuntimeError: The block is not running.

        Example:
            >>> import memguard
            >>> with memguard.record() as timeline:
            ...     str(timeline.mark("start")).startswith("start at ")
            True
        """
        if not isinstance(label, str):
            raise TypeError(f"label must be a string, not {type(label).__name__} {label!r}")
        if self._window is None:
            raise RuntimeError("mark() works only inside the running record() block")
        when, traced, _ = self._sampler.sample()
        mark = Mark(label, when, traced)
        with self._lock:
            self._marks.append(mark)
        return mark

    def _start(self) -> None:
        self._started_at = time.time()
        if process.hwm_available():
            try:
                self._rss_window = process.begin_rss()
            except MeasurementUnavailable:
                self._rss_window = None
        try:
            self._window = _tracing.begin()
            # The sampler thread's own start-up allocations are not the block's.
            with _tracing.excluded():
                self._sampler.start()
        except BaseException:
            # Nothing half-open is left behind: no sampler thread (a Ctrl-C can
            # land after it started), no window, no RSS window.
            with contextlib.suppress(RuntimeError):  # RuntimeError: never started
                self._sampler.stop()
            if self._window is not None:
                _tracing.end(self._window)
                self._window = None
            if self._rss_window is not None:
                process.end_rss(self._rss_window)
                self._rss_window = None
            raise

    def _finish(self) -> Timeline:
        window, self._window = self._window, None
        assert window is not None
        try:
            self._sampler.stop()
        finally:
            try:
                _tracing.end(window)
            finally:
                rss_window = self._rss_window
                if rss_window is not None:
                    process.end_rss(rss_window)
        # Built after the window closed: the block's peak is not memguard's.
        return self._build(window, self._sampler.rows(), rss_window)

    def _build(self, window: _tracing.PeakWindow, rows: list[tuple[float, int | None, int | None]],
               rss_window: process.RssWindow | None) -> Timeline:
        return timeline_from(
            rows, label=self._label, started_at=self._started_at,
            interval=self._sampler.interval,
            marks=tuple(sorted(self._marks, key=lambda m: m.time_seconds)),
            traced_start=window.start_bytes, traced_end=window.end_bytes,
            traced_peak=window.peak_total_bytes,
            rss_start=None if rss_window is None else rss_window.start_bytes,
            rss_hwm=None if rss_window is None else rss_window.peak_total_bytes,
            rss_absent=self._sampler.rss_absent or "RSS could not be read")

    def __str__(self) -> str:
        return str(self._timeline) if self._timeline is not None else "timeline (recording)"

    def __repr__(self) -> str:
        state = self._timeline.summary if self._timeline is not None else "running"
        return f"<memguard.Recording {state}>"

    def _repr_html_(self) -> str:
        return self.timeline._repr_html_()

    def _repr_markdown_(self) -> str:
        return self.timeline._repr_markdown_()


def timeline_from(rows: list[tuple[float, int | None, int | None]], *, label: str | None,
                  started_at: float, interval: float, traced_start: int,
                  traced_end: int | None, traced_peak: int, rss_start: int | None,
                  rss_hwm: int | None, rss_absent: str,
                  marks: tuple[Mark, ...] = ()) -> Timeline:
    """A :class:`Timeline` of samples ``(seconds, traced, rss)``, oldest first, and exact peaks.

    The RSS peak is the kernel's high-water mark when there is one
    (*rss_hwm*, method ``kernel-hwm``), else the highest sample
    (``sampled``), from *rss_start* or else the first sample; with neither,
    RSS is absent for *rss_absent*. For :func:`record` and for ``memguard
    run``'s agent (:mod:`memguard.program.child`), one rule.

    Example:
        >>> tl = timeline_from([(0.0, 100, 5000), (0.01, 300, 7000)], label=None,
        ...                    started_at=0.0, interval=0.01, traced_start=100,
        ...                    traced_end=300, traced_peak=400, rss_start=None,
        ...                    rss_hwm=None, rss_absent="")
        >>> tl.rss_start_bytes, tl.rss_peak_bytes, tl.rss_peak_method
        (5000, 7000, 'sampled')
    """
    samples = tuple(Sample(t, traced, rss) for t, traced, rss in rows)
    absent: dict[str, str] = {}
    rss_values = [s.rss_bytes for s in samples if s.rss_bytes is not None]
    rss_peak = None
    if rss_hwm is not None:
        rss_peak, method = rss_hwm, "kernel-hwm"
    elif rss_values:
        rss_start = rss_values[0] if rss_start is None else rss_start
        rss_peak, method = max([rss_start, *rss_values]), "sampled"
    else:
        rss_start, method = None, "unavailable"
        absent["rss_bytes"] = rss_absent
    return Timeline(
        label=label, started_at=started_at, interval_seconds=interval,
        duration_seconds=samples[-1].time_seconds if samples else 0.0,
        samples=samples, marks=marks, traced_start_bytes=traced_start,
        traced_end_bytes=traced_end, traced_peak_bytes=traced_peak, rss_start_bytes=rss_start,
        rss_peak_bytes=rss_peak, rss_peak_method=method,
        absent=tuple(sorted(absent.items())),
    )


class record:
    """Record a :class:`~memguard.values.timeline.Timeline` of memory while a block runs.

    Args:
        interval: Seconds between samples (default 10 ms).
        label: What to call the timeline in reports.
        rss: Sample the process's resident memory as well as the traced
            Python heap.

    Returns:
        As a context manager, a :class:`Recording`: call ``mark(label)`` on
        it inside the block, read the timeline's attributes from it after.

    Raises:
        ValueError: *interval* is not a positive number.
        TracingError: tracemalloc was stopped by someone else during the
            block (added as a note when the block itself raised).

    Note:
        Starts tracemalloc when nobody traces, and stops it at the end; a
        trace someone else started keeps running. Samples can miss a spike
        shorter than the interval; the timeline's peaks cannot.

    Example:
        >>> import memguard
        >>> with memguard.record(interval=0.005, label="build") as timeline:
        ...     block = bytes(1_000_000)
        ...     del block
        >>> timeline.traced_peak_above_start_bytes >= 1_000_000
        True

    .. versionadded:: 0.1.0
    """

    def __init__(self, interval: float = 0.01, *, label: str | None = None,
                 rss: bool = True) -> None:
        if isinstance(interval, bool) or not isinstance(interval, int | float) or not interval > 0:
            raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
        if label is not None and not isinstance(label, str):
            raise TypeError(f"label must be a string, not {type(label).__name__}")
        self.interval = float(interval)
        self.label = label
        self.rss = rss
        self._recording: Recording | None = None

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        return guard_repr("record", f"interval={self.interval:g} s, rss={self.rss}{label}",
                          running=self._recording is not None)

    def __enter__(self) -> Recording:
        if self._recording is not None:
            raise RuntimeError("this record() is already running; use a new one per block")
        balance = _watcher.Balance()  # the program's collections come when they would have
        recording = Recording(self.interval, self.label, self.rss)
        recording._start()
        self._recording = recording
        balance.settle()
        return recording

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        recording, self._recording = self._recording, None
        assert recording is not None
        try:
            recording._timeline = recording._finish()
        except TracingError as error:
            if exc is None:
                raise
            add_note(exc, f"memguard: {error}")
