"""L6 line profiler: :class:`LineTarget`, line profiles of one function while a program runs.

What ``memguard run --lines MODULE_OR_FILE:FUNCTION`` uses: every call of the
named function, in the calling thread and in threads started later, is
profiled line by line (see :mod:`memguard.lines.profile` for what the
figures mean), the calls summed.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

from ..values.lineprofile import LineProfile
from ._builder import Meter, build_profile, check_options, qualname, retained, snapshot
from ._statistics import Collector, Key
from ._tracer import ThreadTracer, tracer

__all__ = ["LineTarget"]


class LineTarget:
    """Profile every call of one function while a program runs.

    The contract ``memguard run --lines MODULE_OR_FILE:FUNCTION`` relies on:

    * :meth:`parse` takes the spec; :meth:`attach` starts tracing in the
      calling thread and in threads started afterwards
      (:func:`threading.settrace`); threads already running are not traced.
    * Functions are matched when called, by code object: the file (a path,
      compared after :func:`os.path.realpath`) or module (the frame's
      ``__name__``), and the qualified name (``"Class.method"``) or, for a
      name without a dot, the plain name. So a function defined later, in a
      script run as ``__main__``, is found.
    * :meth:`detach` stops tracing in the calling thread (other threads stop
      charging) and records what is still alive: *retained* here means still
      alive at detach, over all calls (under a trace someone else started
      before :meth:`attach`, memory the lines allocated before it counts too).
    * :meth:`results` returns one :class:`LineProfile` per matched code object
      (several when the function is defined more than once), calls summed,
      the highest call's peak; empty when it never ran. A call still running
      in another thread at :meth:`detach` is cut off where it was.
    * Attach and detach in the same thread; a target is attached once at a
      time (:class:`RuntimeError` otherwise). :meth:`detach` restores the
      thread's trace function and :func:`threading.settrace` hook.

    Args:
        where: A file path (``.py``) or a dotted module name.
        function: The function's (qualified) name.
        expand: As for :func:`memguard.profile`.
        nframes: As for :func:`memguard.profile` (an enclosing trace, such as
            ``memguard run``'s, keeps its own frame count).

    Example:
        >>> target = LineTarget.parse("memguard/units.py:format_size")
        >>> target.function
        'format_size'
        >>> target.attach()
        >>> from memguard.units import format_size
        >>> format_size(2048)
        '2.0 KiB'
        >>> target.detach()
        >>> [p.calls for p in target.results()]
        [1]
    """

    def __init__(self, where: str, function: str, *, expand: int = 0, nframes: int = 1) -> None:
        check_options(expand, nframes)
        if not where or not function:
            raise ValueError(f"a line target needs a file or module and a function, "
                             f"got {where!r}:{function!r}")
        self.where = where
        self.function = function
        self.expand = expand
        self.nframes = nframes
        self.is_path = where.endswith(".py") or os.sep in where or os.path.isfile(where)
        self.path = os.path.realpath(where) if self.is_path else ""
        self._decisions: dict[CodeType, bool] = {}
        self._collectors: list[tuple[CodeType, Collector]] = []
        self._lock = threading.Lock()
        self._tracers: list[tuple[threading.Thread, ThreadTracer]] = []
        self._attached = False
        self._meter: Meter | None = None
        self._method = "tracemalloc"
        self._nframes_used = nframes
        self._main_matcher: Callable[[FrameType], Collector | None] | None = None
        self._retained: dict[Key, int] | None = None
        self._previous_hook: Any = None
        self._started = 0.0
        self._duration = 0.0

    @classmethod
    def parse(cls, spec: str, *, expand: int = 0, nframes: int = 1) -> LineTarget:
        """Read ``MODULE_OR_FILE:FUNCTION``, such as ``app/jobs.py:load`` or ``app.jobs:Job.run``.

        Raises:
            ValueError: *spec* has no ``:`` or an empty side.
        """
        where, colon, function = spec.rpartition(":")
        if not colon or not where or not function:
            raise ValueError(f"spec must be MODULE_OR_FILE:FUNCTION, got {spec!r}")
        return cls(where, function, expand=expand, nframes=nframes)

    def _wanted(self, frame: FrameType) -> bool:
        code = frame.f_code
        name = qualname(code)
        if name != self.function and ("." in self.function or code.co_name != self.function):
            return False
        if self.is_path:
            return os.path.realpath(code.co_filename) == self.path
        return frame.f_globals.get("__name__") == self.where

    def _matcher(self) -> Callable[[FrameType], Collector | None]:
        mine: dict[CodeType, Collector] = {}

        def match(frame: FrameType) -> Collector | None:
            if not self._attached:
                return None
            code = frame.f_code
            found = mine.get(code)
            if found is not None:
                return found
            decided = self._decisions.get(code)
            if decided is None:
                decided = self._decisions[code] = self._wanted(frame)
            if not decided:
                return None
            found = mine[code] = Collector(expand=self.expand)
            with self._lock:
                self._collectors.append((code, found))
            return found

        return match

    def _install_here(self) -> Callable[[FrameType], Collector | None]:
        current = tracer()
        current.prepare(self._method == "counter")  # every thread measures as attach() chose
        with self._lock:
            self._tracers.append((threading.current_thread(), current))
        matcher = self._matcher()
        current.add_matcher(matcher)
        current.acquire()
        return matcher

    def _thread_hook(self, frame: FrameType, event: str, arg: Any) -> Any:
        sys.settrace(None)
        self._install_here()
        return tracer().on_call(frame, event, arg)

    def attach(self) -> None:
        """Start profiling matching calls in this thread and in threads started from now."""
        if self._attached:
            raise RuntimeError("this LineTarget is already attached")
        here = tracer()
        self._meter = Meter(here.measure_for(), self.nframes, here.prepare)
        self._method = self._meter.method
        self._started = time.perf_counter()
        self._attached = True
        self._retained = None
        self._nframes_used = self._meter.nframes
        self._main_matcher = self._install_here()
        self._previous_hook = threading.gettrace() if hasattr(threading, "gettrace") else None
        threading.settrace(self._thread_hook)

    def detach(self) -> None:
        """Stop profiling; record what the matched lines still hold."""
        if not self._attached or self._meter is None:
            raise RuntimeError("this LineTarget is not attached")
        self._attached = False
        self._duration += time.perf_counter() - self._started
        threading.settrace(self._previous_hook)
        current = tracer()
        if self._main_matcher is not None:
            current.remove_matcher(self._main_matcher)
        self._main_matcher = None
        current.release()
        current.pause()
        meter, self._meter = self._meter, None
        try:
            taken = meter.live()
        finally:
            meter.close()
        self._retained = self._measure_retained(taken)  # before the logs are replayed
        self._flush_all()
        for _, collector in self._snapshot_collectors():
            if collector.open_frames:
                collector.open_frames.clear()
                collector.end_call()

    def _flush_all(self) -> None:
        """Replay every thread's log. A call still running in another thread
        at detach is cut off where it was."""
        with self._lock:
            tracers = list(self._tracers)
        for owner, thread_tracer in tracers:
            if owner is not threading.current_thread():
                thread_tracer.installed = False  # its thread is over, or no longer ours
            thread_tracer.flush()

    def _retained_by_tags(self, totals: dict[int, int]) -> dict[Key, int]:
        with self._lock:
            tracers = [thread_tracer for _, thread_tracer in self._tracers]
        collectors = [collector for _, collector in self._snapshot_collectors()]
        kept: dict[Key, int] = {}
        for thread_tracer in tracers:
            for key, size in thread_tracer.retained(totals, collectors).items():
                kept[key] = kept.get(key, 0) + size
        return kept

    def _snapshot_collectors(self) -> list[tuple[CodeType, Collector]]:
        with self._lock:
            return list(self._collectors)

    def _measure_retained(self, taken: dict[int, int] | tracemalloc.Snapshot) -> dict[Key, int]:
        """Live bytes by line: from the counter's tag totals, or a snapshot's traces."""
        if isinstance(taken, dict):
            return self._retained_by_tags(taken)
        codes = {c for _, col in self._snapshot_collectors() for c in col.codes}
        return retained(taken, codes, None)

    def results(self) -> tuple[LineProfile, ...]:
        """One profile per matched code object, in file and line order."""
        kept = self._retained
        if kept is None:  # still attached (or never was): what is live now
            kept = self._measure_retained(self._meter.live() if self._meter is not None
                                          else snapshot())
            self._flush_all()
        merged: dict[CodeType, Collector] = {}
        for code, collector in self._snapshot_collectors():
            merged.setdefault(code, Collector(expand=self.expand))
            _merge(merged[code], collector)
        profiles = [build_profile(collector, code, retained=kept,
                                  nframes=self._nframes_used,
                                  duration_seconds=self._duration, counted_total=False,
                                  method=self._method)
                    for code, collector in merged.items()]
        profiles.sort(key=lambda p: (p.filename, p.first_lineno))
        return tuple(profiles)


def _merge(into: Collector, other: Collector) -> None:
    """Add *other*'s figures (another thread's) to *into*."""
    for key, rec in other.records.items():
        mine = into.record(key)
        for index in range(3):
            mine[index] += rec[index]
    for code, count in other.entries.items():
        into.entries[code] = into.entries.get(code, 0) + count
    if other.calls and (into.calls == 0 or other.peak > into.peak):
        into.peak = other.peak
        into.peak_shares = dict(other.peak_shares)
    into.calls += other.calls
