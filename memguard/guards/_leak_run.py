"""L5 guards: the measurement of one leak check, repeated or single-run.

Repeated mode (:class:`RepeatedRun`), driven by a loop that calls the code::

    run.open()                  # start tracing
    <warm-up calls>
    run.begin()                 # gc.collect(), gc.freeze(), the baseline reading
    while run.wants_more():     # decides on more batches of calls
        <one call>
        run.record()            # gc.collect(), read every signal
    if run.judge():             # a verdict per signal; True on a leak
        n = run.name_begin()    # then n naming calls (run.name_half() halfway)
        <n calls>
        run.name_end()
    report = run.report()
    run.close()                 # always (finally): unfreeze, stop tracing

Why ``gc.freeze()``: after the warm-up every live object is moved to the
collector's permanent generation, so the ``gc.collect()`` after each call
walks only what the calls created (milliseconds instead of a full heap
pass) and ``len(gc.get_objects())`` counts exactly the new live objects.
They are handed back with ``gc.unfreeze()`` once the calls are judged. When
the caller has frozen objects itself, memguard leaves the permanent
generation alone and pays for full collections.

Batches: the check measures ``min_calls`` calls; if no signal is still
growing in the recent half of its series, it stops (clean). Otherwise it
doubles the number of calls, up to ``confirm_calls`` or the time budget, and
judges with :func:`memguard.guards._leak_stats.judge`. Only after a leak is
found are sites, types and a holder named (:mod:`._leak_naming`), so a clean
check costs the calls and the readings, nothing more.
"""

from __future__ import annotations

import gc
import threading
import time
import tracemalloc
from array import array
from collections.abc import Callable
from dataclasses import dataclass

from .. import _tracing, process
from ..exceptions import MeasurementUnavailable
from ..objects import count_types, type_name
from ..values.leak import SIGNALS, LeakReport, SignalName, SignalVerdict, format_amount
from ..values.site import AllocationSite
from . import _leak_probe as probe
from ._leak_naming import Naming, type_growth, user_first
from ._leak_stats import fit_line, judge, still_growing, unsettled

__all__ = ["LeakOptions", "RepeatedRun", "SingleRun"]

#: The smallest growth per call that counts, per signal.
FLOORS: dict[str, float] = {
    "python": 32.0, "objects": 0.05, "rss": 16 * 1024.0, "fds": 0.05, "threads": 0.05,
}
#: The smallest growth over the last third of the calls that counts.
MIN_TOTAL: dict[str, float] = {"python": 256.0, "objects": 3.0, "rss": 0.0, "fds": 1.0,
                               "threads": 1.0}
#: Extra calls made after a leak is found, to see which containers grow.
SAMPLE_CALLS = 20
_NFRAMES = 8


@dataclass(frozen=True, slots=True)
class LeakOptions:
    """The settings of one check (validated by ``track_leaks``)."""

    signals: tuple[SignalName, ...]
    warmup: int = 5
    repeat: int | None = None
    min_calls: int = 40
    confirm_calls: int = 320
    max_seconds: float = 10.0
    top: int = 5
    allowance: int = 10
    allowance_bytes: int = 65536
    explicit: bool = False


def _readers(signals: tuple[SignalName, ...], explicit: bool,
             rss: probe.RssReader) -> dict[str, Callable[[], float]]:
    readers: dict[str, Callable[[], float]] = {
        "python": lambda: float(tracemalloc.get_traced_memory()[0]),
        "objects": lambda: float(len(gc.get_objects())),
        "rss": rss.read,
        "fds": probe.count_fds,
        "threads": lambda: float(threading.active_count()),
    }
    chosen: dict[str, Callable[[], float]] = {}
    for name in signals:
        try:
            readers[name]()
        except MeasurementUnavailable:
            if explicit:
                raise
            continue
        chosen[name] = readers[name]
    return chosen


class RepeatedRun:
    """Measures a function over many calls; see the module docstring."""

    def __init__(self, options: LeakOptions, label: str) -> None:
        self.options = options
        self.label = label
        self.readers: dict[str, Callable[[], float]] = {}
        self.rss = probe.RssReader()
        capacity = (options.repeat or options.confirm_calls) + 1
        self.values: dict[str, array[float]] = {name: array("d", bytes(8 * capacity))
                                                for name in SIGNALS}
        self.points = 0
        self.target = options.repeat or options.min_calls
        self.window: _tracing.PeakWindow | None = None
        self.frozen = False
        self.verdicts: tuple[SignalVerdict, ...] = ()
        self.naming = Naming()
        self.fds: dict[int, str] = {}
        self.threads: dict[int, str] = {}
        self.started = time.perf_counter()
        self.measuring_since = 0.0

    # -- life cycle ---------------------------------------------------------
    def open(self) -> None:
        self.readers = _readers(self.options.signals, self.options.explicit, self.rss)
        if "python" in self.readers:
            self.window = _tracing.begin(_NFRAMES)

    def begin(self) -> None:
        gc.collect()
        self.fds = process.open_fds() if "fds" in self.readers else {}
        self.threads = process.thread_names() if "threads" in self.readers else {}
        if gc.get_freeze_count() == 0:
            gc.freeze()
            self.frozen = True
        self.measuring_since = time.perf_counter()
        self.record()

    def close(self) -> None:
        self.naming.clear()
        _release(self)

    # -- measuring ----------------------------------------------------------
    def record(self) -> None:
        gc.collect()
        index = self.points
        for name, read in self.readers.items():
            self.values[name][index] = read()
        self.points += 1

    @property
    def calls(self) -> int:
        return max(0, self.points - 1)

    def series(self, name: str) -> list[float]:
        values = self.values[name][:self.points]
        return [v - values[0] for v in values] if values else []

    def wants_more(self) -> bool:
        if self.calls < self.target:
            return True
        options = self.options
        if options.repeat is not None or self.calls >= options.confirm_calls:
            return False
        if not any(still_growing(self.series(n), FLOORS[n]) or unsettled(self.series(n), FLOORS[n])
                   for n in self.readers):
            return False
        spent = time.perf_counter() - self.measuring_since
        if spent * 2 > options.max_seconds:  # the next batch is as long as all so far
            return False
        self.target = min(self.calls * 2, options.confirm_calls)
        return True

    # -- judging and naming -------------------------------------------------
    def judge(self) -> bool:
        """Judge every signal; whether a leak was found (then name it, see :meth:`name_begin`)."""
        found = []
        for name in SIGNALS:
            if name not in self.readers:
                continue
            values = self.series(name)
            judgement = judge(values, FLOORS[name], min_total=MIN_TOTAL[name])
            found.append(SignalVerdict(
                name=name, leaked=judgement.leaked, per_call=judgement.fit.slope,
                total=values[-1] - values[0] if values else 0.0, unit=probe.UNITS[name],
                detail=judgement.detail + (f"; {self.rss.method}" if name == "rss" else "")))
        self.verdicts = tuple(found)
        if self.frozen:
            gc.unfreeze()
            self.frozen = False
        return any(v.leaked for v in self.verdicts)

    @property
    def fired(self) -> set[str]:
        return {v.name for v in self.verdicts if v.leaked}

    def name_begin(self) -> int:
        """Start the naming calls; returns how many calls to make (0: none needed).

        Make that many calls, calling :meth:`name_half` after the first half.
        """
        if not self.fired & {"python", "objects"}:
            return 0
        self.naming.begin()
        return SAMPLE_CALLS

    def name_half(self) -> None:
        self.naming.half()

    def name_end(self) -> None:
        if self.naming.started:
            self.naming.end(SAMPLE_CALLS)

    def report(self) -> LeakReport:
        leaked = bool(self.fired)
        resources = probe.grown_resources(self.fds, self.threads, self.fired.__contains__)
        naming, self.naming = self.naming, Naming()
        return LeakReport(
            label=self.label, leaked=leaked, iterations=self.calls, warmup=self.options.warmup,
            signals=self.verdicts,
            series={v.name: tuple(self.series(v.name)) for v in self.verdicts},
            fits={v.name: _fit(self.series(v.name)) for v in self.verdicts},
            sites=naming.sites[:max(10, self.options.top)], types=naming.types,
            sample=naming.sample, resources=resources, mode="repeated",
            duration_seconds=time.perf_counter() - self.started)


def _release(run: RepeatedRun | SingleRun) -> None:
    """Undo what a run set up, whatever happened: the frozen heap, the RSS reader, tracing."""
    if run.frozen:
        gc.unfreeze()
        run.frozen = False
    run.rss.close()
    if run.window is not None:
        window, run.window = run.window, None
        _tracing.end(window)


def _fit(values: list[float]) -> tuple[float, float]:
    fit = fit_line(values)
    return fit.slope, fit.intercept


class SingleRun:
    """One run of a block: what it created that is still alive after it."""

    def __init__(self, options: LeakOptions, label: str) -> None:
        self.options = options
        self.label = label
        self.readers: dict[str, Callable[[], float]] = {}
        self.rss = probe.RssReader()
        self.start: dict[str, float] = {}
        self.window: _tracing.PeakWindow | None = None
        self.frozen = False
        self.census: dict[str, int] = {}
        self.traces: probe.TraceSummary = ({}, {}, {})
        self.fds: dict[int, str] = {}
        self.threads: dict[int, str] = {}
        self.started = time.perf_counter()

    def open(self) -> None:
        self.readers = _readers(self.options.signals, self.options.explicit, self.rss)
        if "python" in self.readers:
            was_tracing = tracemalloc.is_tracing()
            self.window = _tracing.begin(_NFRAMES)
            if was_tracing:
                with _tracing.excluded():
                    self.traces = probe.summarize_traces()
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
        _release(self)

    def finish(self) -> LeakReport:
        gc.collect()
        kept = {name: read() - self.start[name] for name, read in self.readers.items()
                if name != "objects"}
        types: tuple[tuple[str, float], ...] = ()
        sample = None
        if "objects" in self.readers:
            types, sample, kept["objects"] = self._survivors()
        verdicts = []
        limits = {"python": float(self.options.allowance_bytes),
                  "objects": float(self.options.allowance), "rss": 1024.0 * 1024,
                  "fds": 0.0, "threads": 0.0}
        for name in SIGNALS:
            if name in kept:
                verdicts.append(SignalVerdict(
                    name=name, leaked=kept[name] > limits[name], per_call=kept[name],
                    total=kept[name], unit=probe.UNITS[name],
                    detail=f"allowance {format_amount(limits[name], probe.UNITS[name])}"))
        if self.frozen:
            gc.unfreeze()
            self.frozen = False
        leaked = any(v.leaked for v in verdicts)
        fired = {v.name for v in verdicts if v.leaked}
        sites: tuple[AllocationSite, ...] = ()
        if leaked and "python" in self.readers:
            with _tracing.excluded():
                sites = probe.site_growth(self.traces, probe.summarize_traces(), 1,
                                          max(10, self.options.top))
        resources = probe.grown_resources(self.fds, self.threads, fired.__contains__)
        return LeakReport(
            label=self.label, leaked=leaked, iterations=1, warmup=0, signals=tuple(verdicts),
            series={v.name: (0.0, v.total) for v in verdicts}, sites=sites, types=types,
            sample=sample if leaked else None, resources=resources, mode="single",
            duration_seconds=time.perf_counter() - self.started)

    def _survivors(self) -> tuple[tuple[tuple[str, float], ...], str | None, float]:
        """Objects created in the block and alive now: by type, a sample, and how many."""
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
            obj = probe.pick_by_type(new, user_first([n for n, _ in ranked]))
            total = float(len(new))
        finally:
            del new
        # The holder search walks referrers, which the collector only shows
        # for objects that are not frozen.
        gc.unfreeze()
        self.frozen = False
        sample = None
        if obj is not None and total > self.options.allowance:
            sample = probe.describe_sample(obj)
        del obj
        return tuple((n, float(c)) for n, c in ranked[:20]), sample, total
