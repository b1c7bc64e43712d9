"""L6 leak checks: the measurement of one leak check, repeated or single-run.

Repeated mode (:class:`RepeatedRun`) is a generator of *how many calls to
make next*; a driver (sync or async, :mod:`memguard.leaks.api`) makes them::

    steps = RepeatedRun(options, label).steps()
    count = next(steps)
    while True:
        <count calls>
        count = steps.send(None)       # StopIteration.value is the report

The phases:

1. **Warm-up** (``options.warmup`` calls, timed: the cost of one call).
2. **Screening, untraced.** The heap is frozen (``gc.freeze()``), so a
   ``gc.collect()`` walks only what the calls created and the live-object
   count costs nothing per old object. Readings, each after a
   ``gc.collect()``: allocator blocks (``sys.getallocatedblocks()``), live
   objects (tracked ones, the permanent generation included), malloc's
   bytes (``mallinfo2``; RSS pages where it is missing), descriptors and
   threads, and traced bytes only when the caller already traces. A
   reading is taken every ``per`` calls, ``per`` chosen so that readings
   cost at most a fifth of the calls' time (a 10 µs function is called
   hundreds of times between readings). At most :data:`MAX_POINTS`
   readings are kept; past that every other one is dropped and ``per``
   doubles.
3. **Deciding how long.** The check stops clean once nothing grows in the
   recent half of any series and it has called for ``min_seconds`` or
   ``2 * cache_bound`` calls (so a leak on one call in 1,000 is seen). While
   something grows it goes on, until the growth stops (a bounded cache that
   filled: clean) or ``2 * cache_bound`` calls have been made (then a
   growth that persists over the last third is a leak), or the time budget
   runs out (then the verdict is given on what was measured, and the
   report says the growth had not stopped).
4. **Naming, traced** (only when a signal fired): tracemalloc is started
   (or the caller's trace shared), and more calls are made while
   :class:`memguard.leaks.naming.Naming` watches sites, types and
   containers; as many calls as it takes to see the leak grow a few times,
   within what is left of the budget.

The time budget (``max_seconds``) is kept within :data:`MARGIN_SECONDS`
plus one pass over the heap (the naming phase's container scan, about
0.5 s per million live objects) plus the last call made.
"""

from __future__ import annotations

import gc
import itertools
import math
import sys
import threading
import time
import tracemalloc
from array import array
from collections.abc import Callable, Generator
from dataclasses import dataclass

from .. import _counter, _tracing, process
from ..exceptions import MeasurementUnavailable
from ..holders.containers import pick_by_type
from ..objects import count_types, type_name
from ..values.leak import SIGNALS, LeakReport, SignalVerdict, format_amount
from ..values.site import AllocationSite
from .naming import Naming, TraceSummary, site_growth, summarize_traces, type_growth, user_first
from .options import LeakOptions
from .statistics import fit_line, judge, still_growing, unsettled

__all__ = ["MARGIN_SECONDS", "MAX_POINTS", "RepeatedRun", "SingleRun"]


@dataclass(frozen=True, slots=True)
class Source:
    """How one series is read, its unit, and the growth that counts for it."""

    unit: str
    floor: float
    """The smallest growth per call that counts: the source's precision."""
    min_total: float
    """The smallest growth over the last third of the calls that counts."""
    what: str


#: Per series: floors set by each source's precision. Counters that are exact
#: (objects, blocks, descriptors, threads, malloc's bytes) count any steady
#: growth of a few units; RSS moves by whole pages, so it needs several.
SOURCES: dict[str, Source] = {
    "python": Source("bytes", 2.0, 512.0, "traced Python memory (tracemalloc)"),
    "blocks": Source("blocks", 0.0005, 4.0, "Python allocator blocks"),
    "objects": Source("objects", 0.0005, 3.0, "live objects"),
    "malloc": Source("bytes", 2.0, 1024.0, "malloc in use (mallinfo2)"),
    "rss": Source("bytes", 64.0, 16 * 4096.0, "resident memory (pages)"),
    "fds": Source("fds", 0.0005, 1.0, "open descriptors"),
    "threads": Source("threads", 0.0005, 1.0, "threads"),
}
#: Readings kept at most; past that, every other one is dropped.
MAX_POINTS = 1024
#: Indices of :class:`RepeatedRun`'s counters (readings, calls, calls per
#: reading, calls made, the next decision), and how many there are.
_COUNTERS = 5
_POINTS, _CALLS, _PER, _MADE, _NEXT = range(_COUNTERS)
#: Readings before any decision.
MIN_POINTS = 40
#: Readings may cost at most this share of the calls' time.
READING_SHARE = 0.2
#: How far past ``max_seconds`` a check may end, besides one heap pass.
MARGIN_SECONDS = 0.5
#: Naming calls: enough to see the leak grow this many times.
NAMING_EVENTS = 4
MIN_NAMING_CALLS = 20
MAX_NAMING_CALLS = 8192
#: Growth of descriptors or threads is judged after this many calls:
#: pools of them are small, and each leaked thread or file costs the process.
RESOURCE_CALLS = 256
#: Calls made under sys.setprofile to see which C functions the code calls.
PROFILE_CALLS = 3
_NFRAMES = 8


#: Whether the screening reads the Python heap's bytes from memguard's allocation
#: counter (exact, untraced), beside the allocator's blocks: growth inside
#: blocks (a buffer or list extended in place) that no new block shows. Its
#: records live in memory mapped from the kernel, so malloc's figures leave
#: them out. Checks of code that opens and closes memguard's tracing guards
#: (record(), the line profiler, a nested check) read counted bytes growing
#: by 1.5-110 KiB per call there before Python 3.12.5: tracemalloc's stop
#: leaves its tracebacks behind (gh-121390, pinned in
#: tests/integration/test_counter.py). Those checks leave the counted series
#: out of the verdict and say why (RepeatedRun._left_out).
USE_COUNTER = True


def _readers(options: LeakOptions, *,
             counter: bool = USE_COUNTER) -> dict[str, Callable[[], int]]:
    """The series to read for the chosen groups; unreadable ones are left out (or an error).

    The Python heap's bytes come from memguard's allocation counter where it
    is built (exact, untraced), else from tracemalloc when it already traces;
    the allocator's blocks are read in any case.
    """
    groups = set(options.signals)
    wanted: list[tuple[str, Callable[[], Callable[[], int]]]] = []
    if "python" in groups:
        wanted.append(("blocks", lambda: sys.getallocatedblocks))
        if counter and _counter.available():
            wanted.append(("python", _counted))
        elif tracemalloc.is_tracing():
            wanted.append(("python", lambda: lambda: tracemalloc.get_traced_memory()[0]))
    if "objects" in groups:
        wanted.append(("objects", lambda: _objects))
    if "native" in groups:
        wanted.append(("native", _native))
    if "fds" in groups:
        wanted.append(("fds", lambda: process.fd_count))
    if "threads" in groups:
        wanted.append(("threads", lambda: threading.active_count))
    return _open(wanted, explicit=options.explicit)


def _open(wanted: list[tuple[str, Callable[[], Callable[[], int]]]], *,
          explicit: bool) -> dict[str, Callable[[], int]]:
    """Make and try each reader; the ones that cannot read are left out (or, *explicit*, raise)."""
    chosen: dict[str, Callable[[], int]] = {}
    made: list[Callable[[], int]] = []
    try:
        for name, make in wanted:
            count = len(made)
            try:
                made.append(make())
                made[-1]()
            except MeasurementUnavailable:
                if len(made) > count:
                    _close(made.pop())
                if explicit:
                    raise
                continue
            read = made[-1]
            series = name
            if name == "native":
                series = "malloc" if getattr(read, "source", "") == "malloc" else "rss"
            chosen[series] = read
    except BaseException:
        # An error, or a Ctrl-C landing here: the readers made so far are
        # nobody's yet, and the counter's would keep counting.
        for read in made:
            _close(read)
        raise
    return chosen


def _close(read: Callable[[], int]) -> None:
    """Close what a reader holds open (the counter's window), if anything."""
    closer = getattr(read, "close", None)
    if closer is not None:
        closer()


def _counted() -> Callable[[], int]:
    """Python-heap bytes from the allocation counter; its window closes with the reader."""
    window = _counter.begin()

    def read() -> int:
        return _counter.current()

    read.close = lambda: _counter.end(window)  # type: ignore[attr-defined]
    read.what = "Python heap bytes (memguard's allocation counter)"  # type: ignore[attr-defined]
    read.counted = True  # type: ignore[attr-defined]
    return read


def _objects() -> int:
    """Live objects the collector tracks outside the permanent generation.

    The permanent generation's size is read once, when the check freezes
    the heap (``gc.get_freeze_count()`` walks the whole generation, so it is
    not read per reading), and added in :meth:`RepeatedRun._judge`'s report
    as a constant: it cannot change while the check holds the freeze.
    """
    return len(gc.get_objects())


def _native() -> Callable[[], int]:
    try:
        read_malloc = process.malloc_reader()
    except MeasurementUnavailable:
        read_rss, _close, reason = process.rss_reader()
        if read_rss is None:
            raise MeasurementUnavailable(reason or "RSS is not available") from None
        rss = read_rss

        def read_pages() -> int:
            return rss()

        read_pages.source = "rss"  # type: ignore[attr-defined]
        read_pages.what = ("resident memory, whole pages (psutil)"  # type: ignore[attr-defined]
                           if read_rss is process.rss_bytes else
                           "resident memory, whole pages (/proc/self/statm)")
        read_pages.close = _close  # type: ignore[attr-defined]
        return read_pages

    def read_bytes() -> int:
        return read_malloc()

    read_bytes.source = "malloc"  # type: ignore[attr-defined]
    return read_bytes


class _Counter:
    """An ``int`` attribute kept in its instance's ``_counters`` array (see RepeatedRun)."""

    def __init__(self, index: int, doc: str) -> None:
        self.index = index
        self.__doc__ = doc

    def __get__(self, instance: RepeatedRun, owner: type | None = None) -> int:
        return instance._counters[self.index]

    def __set__(self, instance: RepeatedRun, value: int) -> None:
        instance._counters[self.index] = value


class RepeatedRun:
    """Measures a function over many calls; see the module docstring."""

    def __init__(self, options: LeakOptions, label: str) -> None:
        self.options = options
        self.label = label
        self.readers: dict[str, Callable[[], int]] = {}
        # Room for every reading up front: growing an array while measuring
        # would show as growth of the blocks and malloc series.
        self.values: dict[str, array[int]] = {}
        # The counters live in an array, not in int attributes: an int past
        # 256 is an object of its own, and a counter that crossed 256 between
        # two readings would read as a block (and, in the loop, an object)
        # the function kept: a one-off rise that kept a clean check calling.
        self._counters = array("q", bytes(8 * _COUNTERS))
        self._since = array("d", bytes(8))
        self.per = 1
        self._reads: tuple[Callable[[], int], ...] = ()
        self._series: tuple[array[int], ...] = ()
        self._scratch: array[int] = array("q")
        self.frozen = False
        self.verdicts: tuple[SignalVerdict, ...] = ()
        self.verdicts_by_name: dict[str, SignalVerdict] = {}
        self.spreads: dict[str, float] = {}
        self.naming = Naming()
        self.naming_calls = 0
        self.window: _tracing.PeakWindow | None = None
        self.notes: list[str] = []
        self.fds: dict[int, str] = {}
        self.threads: dict[int, str] = {}
        self.started = time.perf_counter()
        self.deadline = self.started + options.max_seconds
        self.stops_before = 0
        """memguard's own trace stops before the first reading (see :meth:`_left_out`)."""

    points = _Counter(_POINTS, "Readings kept so far.")
    calls = _Counter(_CALLS, "Calls measured so far.")
    per = _Counter(_PER, "Calls between two readings.")

    # -- the plan -----------------------------------------------------------
    def steps(self) -> Generator[int, None, LeakReport]:
        """Yield how many calls to make next; return the report. Always closes what it opened."""
        try:
            self.readers = _readers(self.options)
            self.values = {name: array("q", bytes(8 * (MAX_POINTS + 1)))
                           for name in self.readers}
            self._reads = tuple(self.readers.values())
            self._series = tuple(self.values[name] for name in self.readers)
            self._scratch = array("q", bytes(8 * len(self.readers)))
            warmup = self.options.warmup
            call_seconds = 0.0
            if warmup:
                begun = time.perf_counter()
                yield warmup
                call_seconds = (time.perf_counter() - begun) / warmup
            self._begin()
            if self.options.repeat is not None:
                yield from self._fixed(self.options.repeat)
            else:
                yield from self._adaptive(call_seconds)
            self._judge()
            if any(v.leaked for v in self.verdicts):
                yield from self._name()
            return self._report()
        finally:
            self.close()

    def _begin(self) -> None:
        self.fds = process.open_fds() if "fds" in self.readers else {}
        self.threads = process.thread_names() if "threads" in self.readers else {}
        if gc.get_freeze_count() == 0:
            # No full collection first: on a heap of a million objects it
            # would cost a second; garbage frozen now is freed at unfreeze.
            gc.freeze()
            self.frozen = True
        # Set now, before the first reading, though _baseline() sets it again.
        # Kept in an array, not a float attribute: an attribute's float made
        # after the first reading stays alive while the one it replaced joins
        # the floats' free list, +24 counted bytes from then on.
        self._since[0] = time.perf_counter()
        self.stops_before = _tracing.stops_made()

    def _baseline(self) -> None:
        """The first reading, once the generator that asks for the calls exists.

        Read before it (in :meth:`_begin`), the generator's own frame and
        locals read as +1 object and +5 allocator blocks after the first
        batch: a rise, then flat, which kept a clean 1 ms function's check
        calling for 531 calls where 250 were planned.
        """
        self._record()
        self._since[0] = time.perf_counter()

    def _fixed(self, calls: int) -> Generator[int, None, None]:
        self.per = max(1, math.ceil(calls / MAX_POINTS))
        counters = self._counters
        self._baseline()
        while counters[_MADE] < calls:
            # The batch is worked out again rather than kept in a local: an int
            # past 256 alive across the reading would be read as the function's.
            yield min(self.per, calls - counters[_MADE])
            counters[_MADE] += min(self.per, calls - counters[_MADE])
            self._record()
        self.calls = counters[_MADE]

    def _adaptive(self, call_seconds: float) -> Generator[int, None, None]:
        options = self.options
        # The cost of a reading, against the cost of a call: readings take at
        # most READING_SHARE of the time.
        begun = time.perf_counter()
        self._read_only()
        reading = time.perf_counter() - begun
        screen_calls = 2 * options.cache_bound
        if call_seconds > 0:
            # Never so many calls per reading that the first decision comes
            # after the screening: every call a leak makes is kept alive, and
            # a reading's gc.collect() walks them all.
            self.per = max(1, min(math.ceil(screen_calls / MIN_POINTS),
                                  math.ceil(reading / READING_SHARE / call_seconds)))
        if call_seconds > 0:
            # A clean function is called 2 * cache_bound times, or for about
            # min_seconds where that is fewer calls: a count fixed once, from
            # the warm-up's timing, so the verdict does not depend on how busy
            # the machine is later.
            screen_calls = max(MIN_POINTS * self.per,
                               min(screen_calls, math.ceil(options.min_seconds / call_seconds)))
        counters = self._counters
        counters[_NEXT] = MIN_POINTS * self.per  # in calls: thinning renumbers the readings
        # The last third of 2 * cache_bound calls starts past cache_bound: a cache
        # that filled is flat there, and its table resizes are behind it.
        settle_calls = 2 * options.cache_bound
        reserve = 0.0
        # Whatever lives on between two readings exists before the first one
        # (a later value replaces an earlier one of the same kind); counts are
        # in the counters (see __init__).
        now = time.perf_counter()
        growing: set[str] = set()
        self._baseline()
        while True:
            yield self.per
            counters[_MADE] += self.per
            self._record()
            self.calls = counters[_MADE]
            now = time.perf_counter()
            if counters[_MADE] >= options.max_calls:
                self.notes.append(f"stopped at max_calls={options.max_calls}")
                return
            if now + reserve + self._batch_seconds(now) > self.deadline - self._naming_share():
                self._out_of_time(counters[_MADE])
                return
            if counters[_MADE] < counters[_NEXT]:
                continue
            counters[_NEXT] = counters[_MADE] + max(16 * self.per, counters[_MADE] // 4)
            growing = self._growing()
            if not growing and counters[_MADE] >= screen_calls:
                return
            if growing and counters[_MADE] >= settle_calls:
                return
            if growing & {"fds", "threads"} and counters[_MADE] >= RESOURCE_CALLS:
                return  # a pool of descriptors or threads fills within a few hundred

    @property
    def measuring_since(self) -> float:
        """When the calls after the first reading began (``time.perf_counter()``)."""
        return self._since[0]

    def _batch_seconds(self, now: float) -> float:
        """How long the next batch of calls and its reading will take, from those so far."""
        points = max(1, self.points - 1)
        return (now - self.measuring_since) / points

    def _naming_share(self) -> float:
        """Time kept for naming a leak: a fifth of the budget, at most 2 s."""
        return min(2.0, self.options.max_seconds * 0.2)

    def _out_of_time(self, made: int) -> None:
        if self._growing():
            self.notes.append(
                f"still growing after {made} calls when the time budget "
                f"({self.options.max_seconds:g} s) ran out; a bounded structure larger than "
                f"{made} entries filled one per call would look like this, and is judged as "
                f"a leak (raise max_seconds, or lower cache_bound)")

    def _left_out(self) -> str | None:
        """Why the counted Python heap is left out of the verdict; ``None`` when it is not.

        Where tracemalloc's stop keeps its tracebacks (before Python 3.12.5),
        every trace memguard starts and stops inside the checked calls
        leaves bytes in the Python heap that no block of the code holds: the
        counter reads them as growth. Such a check judges the allocator's
        blocks and the other signals, not the counted bytes.
        """
        read = self.readers.get("python")
        if (read is None or not getattr(read, "counted", False)
                or not _tracing.STOP_KEEPS_TRACEBACKS
                or _tracing.stops_made() == self.stops_before):
            return None
        return ("the Python heap's counted bytes were left out of the verdict: the checked "
                "code starts and stops memguard's tracing (record(), profile_lines(), a leak "
                "check of its own), and before Python 3.12.5 each stop leaves tracemalloc's "
                "tracebacks allocated (CPython gh-121390); the allocator's blocks were judged")

    def _growing(self) -> set[str]:
        """The series still growing (in the recent half, or overall with a noisy end)."""
        found = set()
        skip = "python" if self._left_out() is not None else None
        for name in self.readers:
            if name == skip:
                continue
            values = self.series(name)
            floor = SOURCES[name].floor * self.per
            if still_growing(values, floor) or unsettled(values, floor):
                found.add(name)
        return found

    def close(self) -> None:
        self.naming.clear()
        if self.frozen:
            gc.unfreeze()
            self.frozen = False
        for read in self.readers.values():
            _close(read)
        self.readers = {}
        if self.window is not None:
            window, self.window = self.window, None
            _tracing.end(window)

    # -- measuring ----------------------------------------------------------
    def _read_only(self) -> None:
        gc.collect()
        for read in self.readers.values():
            read()

    def _record(self) -> None:
        gc.collect()
        # Read first, store after: the reading's index is an int object of
        # its own past 256, and alive during the reads it would be counted
        # (a one-block rise at the 257th reading, which kept clean checks
        # calling). The slots are small ints, which are never new objects.
        scratch = self._scratch
        for slot, read in enumerate(self._reads):
            scratch[slot] = read()
        index = self.points
        for slot, series in enumerate(self._series):
            series[index] = scratch[slot]
        self.points += 1
        if self.points > MAX_POINTS:
            # Thinned once the arrays are full, right after a reading: the
            # number kept is odd, so the reading just made is kept and the
            # next one, twice as many calls later, is on the new spacing.
            # (Thinning before a reading kept the one before it: the new
            # reading came one old step later, not two.)
            self._thin()

    def _thin(self) -> None:
        """Keep every other reading (the first included); readings are now twice as far apart."""
        kept = (self.points + 1) // 2
        for series in self.values.values():
            for index in range(kept):
                series[index] = series[2 * index]
        self.points = kept
        self.per *= 2

    def series(self, name: str) -> list[float]:
        values = self.values[name][:self.points]
        return [float(v - values[0]) for v in values] if values else []

    # -- judging and naming -------------------------------------------------
    def _judge(self) -> None:
        found = []
        left_out = self._left_out()
        if left_out is not None:
            self.notes.append(left_out)
        for name in SIGNALS:
            if name not in self.readers or (name == "python" and left_out is not None):
                continue
            source = SOURCES[name]
            values = self.series(name)
            judgement = judge(values, source.floor * self.per, min_total=source.min_total,
                              unit=source.unit, per=self.per)
            self.spreads[name] = judgement.fit.stderr / self.per
            found.append(SignalVerdict(
                name=name, leaked=judgement.leaked, per_call=judgement.fit.slope / self.per,
                total=values[-1] if values else 0.0, unit=source.unit,
                detail=f"{judgement.detail}; {getattr(self.readers[name], 'what', source.what)}"))
        self.verdicts = tuple(found)
        self.verdicts_by_name = {v.name: v for v in found}
        if self.frozen:
            gc.unfreeze()
            self.frozen = False

    @property
    def fired(self) -> set[str]:
        return {v.name for v in self.verdicts if v.leaked}

    def _name(self) -> Generator[int, None, None]:
        """Traced calls that name what leaked: sites, types, a holder."""
        fired = [v for v in self.verdicts if v.leaked]
        if not {v.name for v in fired} - {"fds", "threads"}:
            return
        # Enough calls to see the leak grow a few times: a leak on one call in
        # 1,000 needs thousands, a leak every call twenty.
        # Bytes grow by 64 B or so an event, unless only bytes grew: then the
        # readings may show steps (see _events_per_call).
        if all(v.unit == "bytes" for v in fired):
            slowest = min(self._events_per_call(v) for v in fired)
        else:
            slowest = min(v.per_call / (1.0 if v.unit != "bytes" else 64.0) for v in fired)
        wanted = MIN_NAMING_CALLS if slowest <= 0 else math.ceil(NAMING_EVENTS / slowest)
        wanted = max(MIN_NAMING_CALLS, min(MAX_NAMING_CALLS, wanted))
        def start_tracing() -> None:
            self.window = _tracing.begin(_NFRAMES)

        self.naming.begin(start_tracing)
        chunk = max(1, min(self.per, wanted // 8))
        made = 0
        halfway = False
        begun = time.perf_counter()
        while made < wanted:
            yield chunk
            made += chunk
            if not halfway and made >= wanted // 2:
                self.naming.half(made)
                halfway = True
            now = time.perf_counter()
            spent_per_call = (now - begun) / made
            if now + chunk * spent_per_call > self.deadline and made >= MIN_NAMING_CALLS:
                if made < wanted:
                    self.notes.append(f"named the leak from {made} traced calls, not the "
                                      f"{wanted} wanted: the time budget ran out")
                break
        if not halfway:
            self.naming.half(made)
        self.naming.end(made, deadline=self.deadline, stop_tracing=self._end_window)
        self.naming_calls = made
        # Which C functions the code calls, and from which lines: a few calls
        # of their own, after the census, under sys.setprofile.
        self.naming.profile_begin()
        try:
            yield PROFILE_CALLS
        finally:
            self.naming.profile_end(PROFILE_CALLS)

    def _events_per_call(self, verdict: SignalVerdict) -> float:
        """How often per call a bytes signal grows by one event: the rate naming waits for.

        64 B or so an event, unless the readings show the growth in steps (a
        buffer that grows by realloc, with room to spare each time, so that
        only every thousandth call moves it, and by more each time): then an
        event is the biggest step of the last half of the readings.
        """
        values = self.series(verdict.name)[-(self.points // 2 + 1):]
        rises = [after - before for before, after in itertools.pairwise(values) if after > before]
        if len(values) < 2 or 2 * len(rises) > len(values) - 1:
            return verdict.per_call / 64.0  # growth between most readings: no steps seen
        return verdict.per_call / max(64.0, *rises)

    def _end_window(self) -> None:
        """Stop the trace the naming started (a caller's trace goes on)."""
        if self.window is not None:
            window, self.window = self.window, None
            _tracing.end(window)

    def _report(self) -> LeakReport:
        leaked = bool(self.fired)
        resources = grown_resources(self.fds, self.threads, self.fired.__contains__)
        naming, self.naming = self.naming, Naming()
        notes = list(self.notes)
        if leaked and naming.sites and "python" not in self.readers:
            notes.append("bytes per call at each site were measured in the traced naming "
                         "calls; the verdict came from untraced calls")
        if naming.unreachable:
            notes.append(naming.unreachable)
        if naming.skipped:
            notes.append(naming.skipped)
        verdicts = self.verdicts
        if leaked and naming.sites and "python" not in self.verdicts_by_name and self.naming_calls:
            # Bytes per call of the Python heap, as the traced naming calls saw them.
            traced = float(sum(site.size_bytes for site in naming.sites))
            verdicts = (SignalVerdict(
                name="python", leaked=bool(self.fired & {"blocks", "objects"}),
                per_call=traced / self.naming_calls,
                total=traced / self.naming_calls * self.calls, unit="bytes",
                detail=f"per call: the growing sites over {self.naming_calls} traced naming "
                       f"calls; total: that times the calls measured; traced Python memory "
                       f"(tracemalloc)"), *verdicts)
        return LeakReport(
            label=self.label, leaked=leaked, iterations=self.calls, warmup=self.options.warmup,
            signals=verdicts,
            series={v.name: tuple(self.series(v.name)) for v in self.verdicts},
            fits={v.name: _fit(self.series(v.name), self.per) for v in self.verdicts},
            spreads=self.spreads,
            sites=naming.sites[:max(10, self.options.top)], site_calls=max(1, self.naming_calls),
            types=naming.types,
            sample=naming.sample, resources=resources, mode="repeated",
            duration_seconds=time.perf_counter() - self.started,
            calls_per_reading=self.per, cache_bound=self.options.cache_bound,
            naming_calls=self.naming_calls, calls_into_c=naming.calls_into_c,
            notes=tuple(notes))


def _fit(values: list[float], per: int) -> tuple[float, float]:
    fit = fit_line(values)
    return fit.slope / per, fit.intercept


def grown_resources(before_fds: dict[int, str], before_threads: dict[int, str],
                    which: Callable[[str], bool]) -> tuple[str, ...]:
    """Descriptors and threads opened since the start, grouped by path or name."""
    found: list[str] = []
    if which("fds"):
        paths: dict[str, int] = {}
        for fd, path in process.open_fds().items():
            if before_fds.get(fd) != path:
                paths[path] = paths.get(path, 0) + 1
        found.extend(f"fd {path} (x{n} descriptors)" if n > 1 else f"fd {path}"
                     for path, n in sorted(paths.items(), key=lambda p: (-p[1], p[0])))
    if which("threads"):
        names = [name for ident, name in process.thread_names().items()
                 if ident not in before_threads]
        shown = sorted(names)[:10]
        found.extend(f"thread {name!r}" for name in shown)
        if len(names) > len(shown):
            found.append(f"... and {len(names) - len(shown)} more threads")
    return tuple(found)


#: Single run: what may be kept, per series.
_SINGLE_ALLOWANCE = {"malloc": 1024.0 * 1024, "rss": 1024.0 * 1024, "fds": 0.0, "threads": 0.0}


class SingleRun:
    """One run of a block: what it created that is still alive after it."""

    def __init__(self, options: LeakOptions, label: str) -> None:
        self.options = options
        self.label = label
        self.readers: dict[str, Callable[[], int]] = {}
        self.start: dict[str, float] = {}
        self.window: _tracing.PeakWindow | None = None
        self.frozen = False
        self.census: dict[str, int] = {}
        self.traces: TraceSummary = ({}, {}, {})
        self.fds: dict[int, str] = {}
        self.threads: dict[int, str] = {}
        self.started = time.perf_counter()

    def open(self) -> None:
        if "python" in self.options.signals:
            was_tracing = tracemalloc.is_tracing()
            self.window = _tracing.begin(_NFRAMES)
            if was_tracing:
                with _tracing.excluded():
                    self.traces = summarize_traces()
        readers = _readers(self.options, counter=False)
        readers.pop("blocks", None)  # one run: the traced bytes say it better
        self.readers = readers
        gc.collect()
        self.fds = process.open_fds() if "fds" in self.readers else {}
        self.threads = process.thread_names() if "threads" in self.readers else {}
        if gc.get_freeze_count() == 0:
            gc.freeze()
            self.frozen = True
        elif "objects" in self.readers:
            self.census = count_types(collect=False)
        self.start = {name: read() for name, read in self.readers.items()
                      if name != "objects"}

    def close(self) -> None:
        if self.frozen:
            gc.unfreeze()
            self.frozen = False
        for read in self.readers.values():
            _close(read)
        if self.window is not None:
            window, self.window = self.window, None
            _tracing.end(window)

    def finish(self) -> LeakReport:
        gc.collect()
        kept = {name: float(read() - self.start[name]) for name, read in self.readers.items()
                if name != "objects"}
        types: tuple[tuple[str, float], ...] = ()
        sample = None
        if "objects" in self.readers:
            types, sample, kept["objects"] = self._survivors()
        verdicts = []
        limits = {"python": float(self.options.allowance_bytes),
                  "objects": float(self.options.allowance), **_SINGLE_ALLOWANCE}
        for name in SIGNALS:
            if name in kept:
                unit = SOURCES[name].unit
                verdicts.append(SignalVerdict(
                    name=name, leaked=kept[name] > limits[name], per_call=kept[name],
                    total=kept[name], unit=unit,
                    detail=f"allowance {format_amount(limits[name], unit)}; "
                           f"{getattr(self.readers.get(name), 'what', SOURCES[name].what)}"))
        if self.frozen:
            gc.unfreeze()
            self.frozen = False
        leaked = any(v.leaked for v in verdicts)
        fired = {v.name for v in verdicts if v.leaked}
        sites: tuple[AllocationSite, ...] = ()
        if leaked and "python" in self.readers:
            with _tracing.excluded():
                sites = site_growth(self.traces, summarize_traces(), 1,
                                    max(10, self.options.top))
        resources = grown_resources(self.fds, self.threads, fired.__contains__)
        return LeakReport(
            label=self.label, leaked=leaked, iterations=1, warmup=0, signals=tuple(verdicts),
            series={v.name: (0.0, v.total) for v in verdicts}, sites=sites, types=types,
            sample=sample if leaked else None, resources=resources, mode="single",
            duration_seconds=time.perf_counter() - self.started)

    def _survivors(self) -> tuple[tuple[tuple[str, float], ...], str | None, float]:
        """Objects created in the block and alive now: by type, a sample, and how many."""
        from ..holders.containers import describe_sample

        if not self.frozen:
            after = count_types(collect=False)
            grown = type_growth(self.census, after, 1)
            return grown, None, float(sum(max(0, after[n] - self.census.get(n, 0))
                                          for n in after))
        new = gc.get_objects()
        try:
            counts: dict[str, int] = {}
            for obj in new:
                name = type_name(type(obj))
                counts[name] = counts.get(name, 0) + 1
            ranked = sorted(counts.items(), key=lambda p: (-p[1], p[0]))
            obj = pick_by_type(new, user_first([n for n, _ in ranked]))
            total = float(len(new))
        finally:
            del new
        # The holder search walks referrers, which the collector only shows
        # for objects that are not frozen.
        gc.unfreeze()
        self.frozen = False
        sample = None
        if obj is not None and total > self.options.allowance:
            sample = describe_sample(obj)
        del obj
        return tuple((n, float(c)) for n, c in ranked[:20]), sample, total
