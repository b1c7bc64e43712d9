"""L6 line profiler: shared steps of line profiles: options, source, snapshots, the value.

Used by :mod:`memguard.lines.profile` (``@profile``, ``profile_lines``) and
:mod:`memguard.lines.target` (``memguard run --lines``).
"""

from __future__ import annotations

import inspect
import tracemalloc
from collections.abc import Callable, Iterable
from types import CodeType

from .. import _counter, _tracing
from ..values.lineprofile import NATIVE_NOTE, LineProfile, LineRow
from ._statistics import Collector, Key, attribute_traces, code_lines

__all__ = [
    "COUNTER_NATIVE_NOTE",
    "COUNTER_THREADS_NOTE",
    "THREADS_NOTE",
    "Meter",
    "build_profile",
    "check_options",
    "qualname",
    "retained",
    "snapshot",
]

THREADS_NOTE = (
    "allocations by other threads while a profiled line runs are charged to that line "
    "(tracemalloc's counters are process-wide)"
)
"""The blind spot of per-thread tracing under process-wide counters."""

COUNTER_THREADS_NOTE = (
    "allocations by other threads while a profiled line runs are in that line's allocated "
    "and peak figures (the count is process-wide), never in its retained figure (each "
    "block is tagged with the line running in its own thread)"
)
"""The same blind spot with the counter: smaller, *retained* is per thread."""

COUNTER_NATIVE_NOTE = (
    "native allocations are not seen: only memory allocated through Python's allocators "
    "is counted (memguard's allocation counter, the bytes tracemalloc would trace); memory "
    "that C extensions, numpy or mmap get from malloc directly is missing from every figure"
)
"""The native blind spot, in the counter's words."""


class Meter:
    """What one profile (a call, or a :class:`~memguard.lines.LineTarget`) measures with.

    * The counter (:mod:`memguard._counter`), where it can be used: a count
      window with line tags (:func:`memguard._counter.lines_begin`) open for
      the profile; each block is tagged with the profiled line running in its
      thread, so *retained* needs no traceback and no baseline (a tag is never
      reused, so blocks of earlier calls carry other tags).
    * Else tracemalloc: a trace of *nframes* frames (or the one running), and
      a snapshot at the end whose tracebacks name the lines.

    Args:
        counted: Measure with the counter.
        nframes: Frames per trace when memguard starts tracemalloc.
        prepare: The thread tracer's ``prepare``, called before tracemalloc
            starts (its log is then not among the traces) or once the count
            window is open (its log then measures with it).
    """

    def __init__(self, counted: bool, nframes: int, prepare: Callable[[bool], None]) -> None:
        self.counted = counted
        self.method = "counter" if counted else "tracemalloc"
        self._count: _counter.CountWindow | None = None
        self._trace: _tracing.PeakWindow | None = None
        if counted:
            self._count = _counter.begin()
            try:
                _counter.lines_begin()
            except BaseException:
                _counter.end(self._count)
                raise
            prepare(True)
            self.nframes = 0
            self.needs_baseline = False
        else:
            prepare(False)
            self._trace = _tracing.begin(nframes)
            self.nframes = tracemalloc.get_traceback_limit()
            self.needs_baseline = not self._trace.started_tracing

    def live(self) -> dict[int, int] | tracemalloc.Snapshot:
        """What is live now: bytes by line tag (counter), or a snapshot of the traces."""
        if self.counted:
            return _counter.tag_totals()
        return snapshot()

    def close(self) -> None:
        """End the measurement (once; later calls do nothing)."""
        count, self._count = self._count, None
        trace, self._trace = self._trace, None
        if count is not None:
            try:
                _counter.lines_end()
            finally:
                _counter.end(count)
        if trace is not None:
            _tracing.end(trace)


def check_options(expand: int, nframes: int) -> None:
    if isinstance(expand, bool) or not isinstance(expand, int) or expand < 0:
        raise ValueError(f"expand must be a non-negative int, got {expand!r}")
    if isinstance(nframes, bool) or not isinstance(nframes, int) or nframes < 1:
        raise ValueError(f"nframes must be a positive int, got {nframes!r}")


def _source_lines(code: CodeType) -> tuple[int, list[str]]:
    """The first line and the source lines of *code* (via linecache, so IPython cells work)."""
    try:
        lines, start = inspect.getsourcelines(code)
    except (OSError, TypeError):
        return code.co_firstlineno, []
    return max(start, 1), [line.rstrip("\r\n").rstrip() for line in lines]


def qualname(code: CodeType) -> str:
    return str(getattr(code, "co_qualname", code.co_name))


def build_profile(
    collector: Collector,
    code: CodeType,
    *,
    retained: dict[Key, int],
    nframes: int,
    duration_seconds: float,
    root: bool = True,
    counted_total: bool = True,
    method: str = "tracemalloc",
) -> LineProfile:
    """Turn a collector's figures for *code* (and its callees) into a :class:`LineProfile`."""
    start, source = _source_lines(code)
    linenos = set(range(start, start + len(source))) or set(code_lines(code))
    # Line 0 holds what a fresh frame costs before its first line: tracing overhead.
    records = {line: rec for (c, line), rec in collector.records.items() if c is code and line}
    rows = []
    for lineno in sorted(linenos | set(records)):
        rec = records.get(lineno, [0, 0, 0])
        index = lineno - start
        rows.append(LineRow(
            lineno=lineno,
            source=source[index] if 0 <= index < len(source) else "",
            allocated_bytes=rec[0],
            retained_bytes=retained.get((code, lineno), 0),
            peak_share_bytes=collector.peak_shares.get((code, lineno), 0),
            hits=rec[2],
        ))
    callees: tuple[LineProfile, ...] = ()
    if root:
        callees = tuple(
            build_profile(collector, other, retained=retained, nframes=nframes,
                          duration_seconds=0.0, root=False, counted_total=counted_total,
                          method=method)
            for other in collector.codes if other is not code
        )
    if counted_total:  # line 0 included: a frame's tracing cost, freed with it
        net = sum(rec[1] for (c, _), rec in collector.records.items() if c is code)
    else:  # no teardown reading: the rows' figure is the only one
        net = sum(row.retained_bytes for row in rows)
    peak = collector.peak if root else sum(row.peak_share_bytes for row in rows)
    native, threads = ((COUNTER_NATIVE_NOTE, COUNTER_THREADS_NOTE) if method == "counter"
                       else (NATIVE_NOTE, THREADS_NOTE))
    blind = (native, threads) if root else (native,)
    return LineProfile(
        function=qualname(code), filename=code.co_filename, first_lineno=start,
        rows=tuple(rows), calls=collector.calls if root else collector.entries.get(code, 0),
        peak_bytes=peak, retained_total_bytes=net, duration_seconds=duration_seconds,
        nframes=nframes, callees=callees, blind_spots=blind, method=method,
    )


def snapshot() -> tracemalloc.Snapshot:
    """The live traces now, leaving memguard's snapshot out of every peak."""
    with _tracing.excluded():
        return tracemalloc.take_snapshot()


def retained(snapshot: tracemalloc.Snapshot, codes: Iterable[CodeType],
              baseline: dict[Key, int] | None) -> dict[Key, int]:
    """Live bytes by profiled line in *snapshot*, less what was live at the baseline.

    Run it after tracing stopped when possible: under tracing, every object
    the walk over the traces creates is traced too, which is slow.
    """
    now = attribute_traces(snapshot, codes)
    if baseline:
        for key, size in baseline.items():
            now[key] = now.get(key, 0) - size
    return now
