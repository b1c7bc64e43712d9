"""L4 guards: line-by-line memory profiles (``@profile``, ``profile_lines``, ``LineTarget``).

For each line of a function: how much it allocated, how much of that was
still alive when the function returned, and its share of the function's
peak. Exact for memory allocated through Python's allocators (tracemalloc's
counters, read at every line), not RSS deltas; native allocations are not
seen. How the figures are made is described in :mod:`memguard.guards._lines`;
what they mean:

* **allocated**: the sum of the line's increments of the traced heap, each
  the highest point reached while the line ran above where it started, so a
  temporary freed before the next line still counts. Calls made by a line
  roll up into it, unless ``expand`` lists the callee's own lines.
* **retained**: live bytes at return whose allocation traceback leads, within
  ``nframes`` frames, to the line (tracemalloc traces, compared with those
  alive when the call began).
* **at peak**: the line's net change of the traced heap up to the moment the
  function reached its highest level; the shares add up to the peak, and a
  line that frees earlier lines' memory has a negative share.

Recursion, generators, coroutines, exceptions and threads:

* A recursive call is traced as part of the outermost call; each byte is
  charged once, to the innermost line running (no double counting). A call
  of another profiled function rolls up into the calling line like any call
  (and makes its own profile too).
* A generator's or coroutine's lines are traced each time it is resumed; time
  spent suspended (the caller's work, other tasks) is charged to nobody.
* When the profiled function raises, the profile is still made (printed,
  passed to ``on_profile``, attached to the exception as
  ``exc.memguard_profile``) and the exception propagates unchanged.
* Tracing is per thread (:func:`sys.settrace`): ``@profile`` traces the calls
  made in each thread separately, each call its own profile. tracemalloc's
  counters are process-wide, so memory other threads allocate while a
  profiled line runs is charged to that line.
* The thread's previous trace function (coverage.py, a debugger) keeps
  receiving its events and is put back afterwards.

Precision: a line that allocates directly (``bytearray(n)``, ``[0] * n``, a
comprehension) gets its exact size. What tracing itself costs is left out
where it can be told apart (memguard's bookkeeping, the frame's locals
mapping, CPython's line table of the profiled function); two costs cannot:
while tracing, each running call of a Python function holds a frame object
(about 170 bytes, counted in *allocated* of a line that calls one, and freed
with the call), and the first traced call of a function builds its line table
(2 or 4 bytes per bytecode instruction, kept for the function's lifetime).
Concurrent calls of one async function share their lines' *retained*
attribution.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterable
from types import CodeType, FrameType
from typing import IO, Any, TypeVar, cast, overload

from .. import _tracing
from ..values.lineprofile import NATIVE_NOTE, LineProfile, LineRow
from ._lines import Collector, Key, ThreadTracer, attribute_traces, code_lines, tracer
from ._wrap import add_note

__all__ = ["LineTarget", "profile", "profile_lines"]

F = TypeVar("F", bound=Callable[..., Any])

_THREADS_NOTE = (
    "allocations by other threads while a profiled line runs are charged to that line "
    "(tracemalloc's counters are process-wide)"
)


def _code_of(fn: Any) -> CodeType:
    """The code object that runs when *fn* is called."""
    target = inspect.unwrap(fn) if callable(fn) else fn
    target = getattr(target, "__func__", target)
    code = getattr(target, "__code__", None)
    if not isinstance(code, CodeType):
        raise TypeError(f"fn must be a Python function (def or async def), "
                        f"not {type(fn).__name__} {fn!r}")
    return code


def _check_options(expand: int, nframes: int) -> None:
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


def _qualname(code: CodeType) -> str:
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
                          duration_seconds=0.0, root=False, counted_total=counted_total)
            for other in collector.codes if other is not code
        )
    if counted_total:  # line 0 included: a frame's tracing cost, freed with it
        net = sum(rec[1] for (c, _), rec in collector.records.items() if c is code)
    else:  # no teardown reading: the rows' figure is the only one
        net = sum(row.retained_bytes for row in rows)
    peak = collector.peak if root else sum(row.peak_share_bytes for row in rows)
    blind = (NATIVE_NOTE, _THREADS_NOTE) if root else (NATIVE_NOTE,)
    return LineProfile(
        function=_qualname(code), filename=code.co_filename, first_lineno=start,
        rows=tuple(rows), calls=collector.calls if root else collector.entries.get(code, 0),
        peak_bytes=peak, retained_total_bytes=net, duration_seconds=duration_seconds,
        nframes=nframes, callees=callees, blind_spots=blind,
    )


def _snapshot() -> tracemalloc.Snapshot:
    """The live traces now, leaving memguard's snapshot out of every peak."""
    with _tracing.excluded():
        return tracemalloc.take_snapshot()


def _retained(snapshot: tracemalloc.Snapshot, codes: Iterable[CodeType],
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


class _Session:
    """One profiled outermost call of a decorated function, in one thread."""

    def __init__(self, code: CodeType, *, expand: int, nframes: int,
                 root_frame: FrameType | None = None) -> None:
        self.code = code
        self.root_frame = root_frame
        self.collector = Collector(expand=expand)
        self.started = time.perf_counter()
        # The thread's tracer and its log are made before tracing starts, so
        # that they are not among the traces the retained figures walk.
        self.tracer = tracer()
        self.tracer.prepare()
        self.window = _tracing.begin(nframes)
        self.nframes = tracemalloc.get_traceback_limit()
        self.baseline: dict[Key, int] | None = None
        self.settled = False
        try:
            if not self.window.started_tracing:
                # Memory from earlier calls may be alive on the same lines.
                self.baseline = _retained(_snapshot(), [code], None)
            if root_frame is not None:
                self.tracer.roots[root_frame] = self.collector
            else:
                self.tracer.by_code.setdefault(code, []).append(self.collector)
            self.tracer.acquire()
        except BaseException:
            self.settle()
            _tracing.end(self.window)
            raise
        # Warm up: the first traced call of a function allocates its line
        # table, which would otherwise be charged to the profiled call's end.
        self.tracer.charge_tail(self.collector)
        # Inside an outer profile's line, this setup is memguard's own work.
        self.tracer.resume()

    def settle(self) -> None:
        """Right after the call: stop tracing it and charge its frame's teardown.

        Called first thing after the profiled call returns or raises, so that
        the freeing of its locals is measured before memguard does anything.
        """
        if self.settled:
            return
        self.settled = True
        tracer_ = self.tracer
        if self.root_frame is not None:
            tracer_.roots.pop(self.root_frame, None)
            self.root_frame = None
        else:
            owners = tracer_.by_code.get(self.code, [])
            if self.collector in owners:
                owners.remove(self.collector)
            if not owners:
                tracer_.by_code.pop(self.code, None)
        # No reference to the frame is left, so its locals are gone now.
        tracer_.charge_tail(self.collector)

    def finish(self) -> LineProfile:
        """Stop profiling; measure what is retained; build the profile."""
        duration = time.perf_counter() - self.started
        try:
            self.settle()
            self.tracer.release()
            snapshot = _snapshot()
        finally:
            _tracing.end(self.window)
        # The arithmetic of the logged events, after tracing stopped (when
        # memguard owns the trace): no traced allocation slows it down.
        self.tracer.flush()
        if self.collector.open_frames:  # a generator left unfinished
            self.collector.open_frames.clear()
            self.collector.end_call()
        retained = _retained(snapshot, self.collector.codes or [self.code], self.baseline)
        del snapshot
        if self.collector.calls == 0:
            self.collector.calls = 1
        return build_profile(self.collector, self.code, retained=retained,
                             nframes=self.nframes, duration_seconds=duration)


class _Options:
    def __init__(self, *, expand: int, nframes: int, show: bool, stream: IO[str] | None,
                 on_profile: Callable[[LineProfile], object] | None) -> None:
        _check_options(expand, nframes)
        self.expand = expand
        self.nframes = nframes
        self.show = show
        self.stream = stream
        self.on_profile = on_profile

    def deliver(self, holder: Any, result: LineProfile, error: BaseException | None) -> None:
        holder.last_profile = result
        if error is not None:
            add_note(error, f"memguard line profile: {result}")
            with contextlib.suppress(AttributeError):  # exceptions with __slots__
                error.memguard_profile = result  # type: ignore[attr-defined]
        if self.show:
            result.render_text(self.stream if self.stream is not None else sys.stderr)
        if self.on_profile is not None:
            self.on_profile(result)


def _end(session: _Session, holder: Any, options: _Options,
         error: BaseException | None) -> ThreadTracer:
    """End a profiled call: settle, build the profile, hand it over."""
    session.settle()
    result = session.finish()
    options.deliver(holder, result, error)
    return session.tracer


def _sync_wrapper(fn: F, code: CodeType, options: _Options) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        owners = tracer().by_code.get(code)
        if owners:  # a recursive call: part of the outermost call's profile
            return fn(*args, **kwargs)
        session = _Session(code, expand=options.expand, nframes=options.nframes)
        error: BaseException | None = None
        try:
            return fn(*args, **kwargs)
        except BaseException as exc:
            error = exc
            raise
        finally:
            thread_tracer = _end(session, wrapper, options, error)
            del session  # freed here, not in an enclosing profile's line
            thread_tracer.resume()  # an enclosing profile's line goes on from here

    wrapper.last_profile = None  # type: ignore[attr-defined]
    return cast(F, wrapper)


def _async_wrapper(fn: F, code: CodeType, options: _Options) -> F:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        coroutine = fn(*args, **kwargs)
        session = _Session(code, expand=options.expand, nframes=options.nframes,
                           root_frame=coroutine.cr_frame)
        error: BaseException | None = None
        try:
            return await coroutine
        except BaseException as exc:
            error = exc
            raise
        finally:
            thread_tracer = _end(session, wrapper, options, error)
            del session
            thread_tracer.resume()

    wrapper.last_profile = None  # type: ignore[attr-defined]
    return cast(F, wrapper)


def _generator_wrapper(fn: F, code: CodeType, options: _Options) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        generator = fn(*args, **kwargs)
        session = _Session(code, expand=options.expand, nframes=options.nframes,
                           root_frame=generator.gi_frame)
        error: BaseException | None = None
        try:
            return (yield from generator)
        except BaseException as exc:
            error = exc
            raise
        finally:
            thread_tracer = _end(session, wrapper, options, error)
            del session
            thread_tracer.resume()

    wrapper.last_profile = None  # type: ignore[attr-defined]
    return cast(F, wrapper)


def _decorate(fn: F, options: _Options) -> F:
    code = _code_of(fn)
    if inspect.isasyncgenfunction(fn):
        raise TypeError(f"profile does not support async generator functions ({fn!r})")
    if inspect.iscoroutinefunction(fn):
        return _async_wrapper(fn, code, options)
    if inspect.isgeneratorfunction(fn):
        return _generator_wrapper(fn, code, options)
    return _sync_wrapper(fn, code, options)


@overload
def profile(fn: F, /) -> F: ...
@overload
def profile(
    fn: None = None, /, *, expand: int = 0, nframes: int = 1, show: bool = True,
    stream: IO[str] | None = None, on_profile: Callable[[LineProfile], object] | None = None,
) -> Callable[[F], F]: ...
def profile(
    fn: Any = None,
    /,
    *,
    expand: int = 0,
    nframes: int = 1,
    show: bool = True,
    stream: IO[str] | None = None,
    on_profile: Callable[[LineProfile], object] | None = None,
) -> Any:
    """Profile a function's memory line by line, on every call.

    Bare (``@profile``) or with options (``@profile(expand=1)``), on plain,
    generator and ``async def`` functions. After each outermost call the
    table is written to *stream* (standard error by default), handed to
    *on_profile*, and kept as the wrapper's ``last_profile`` attribute.

    Args:
        fn: The function, when used bare.
        expand: How many calls deep to list called functions' own lines (in
            their own tables) instead of rolling them up into the calling line.
        nframes: Frames tracemalloc keeps per allocation when memguard starts
            tracing: how deep in callees retained memory is traced back to a
            line. 1 (the default, the cheapest) names lines that allocate
            directly; memory a callee allocated and the function kept is then
            reported as not traced back to a line. An already running trace
            keeps its own setting.
        show: Write the table after each call.
        stream: Where to write it; standard error when ``None``.
        on_profile: Called with each :class:`~memguard.values.lineprofile.LineProfile`.

    Returns:
        The wrapped function (or a decorator, when called with options).

    Raises:
        TypeError: *fn* is not a Python function, or is an async generator.
        ValueError: An option is out of range.

    Note:
        Native allocations (C extensions, numpy buffers from malloc) are not
        seen. Each traced line costs a few microseconds.

    Example:
        >>> import memguard
        >>> @memguard.profile(show=False)
        ... def build():
        ...     data = bytearray(100_000)
        ...     return len(data)
        >>> build()
        100000
        >>> build.last_profile.allocated_bytes >= 100_000
        True

    .. versionadded:: 0.1.0
    """
    options = _Options(expand=expand, nframes=nframes, show=show, stream=stream,
                       on_profile=on_profile)
    if fn is not None:
        return _decorate(fn, options)
    return lambda function: _decorate(function, options)


def profile_lines(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> LineProfile:
    """Call ``fn(*args, **kwargs)`` once and return its line-by-line memory profile.

    The return value of *fn* is dropped. Works on functions defined in an
    IPython cell or notebook (their source comes from :mod:`linecache`). For
    ``async def`` functions, call it from outside a running event loop: the
    coroutine is run with :func:`asyncio.run`.

    Raises:
        TypeError: *fn* is not a Python function.
        BaseException: Whatever *fn* raises, unchanged, with the profile
            attached as ``exc.memguard_profile``.

    Example:
        >>> import memguard
        >>> def fill():
        ...     block = bytearray(50_000)
        ...     del block
        >>> result = memguard.profile_lines(fill)
        >>> result.peak_bytes >= 50_000, result.retained_total_bytes < 1000
        (True, True)
    """
    results: list[LineProfile] = []
    wrapped = _decorate(fn, _Options(expand=0, nframes=1, show=False, stream=None,
                                     on_profile=results.append))
    if inspect.iscoroutinefunction(fn):
        import asyncio

        asyncio.run(wrapped(*args, **kwargs))
    elif inspect.isgeneratorfunction(fn):
        for _ in wrapped(*args, **kwargs):
            pass
    else:
        wrapped(*args, **kwargs)
    return results[-1]


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
      the highest call's peak; empty when it never ran.

    Args:
        where: A file path (``.py``) or a dotted module name.
        function: The function's (qualified) name.
        expand: As for :func:`profile`.
        nframes: As for :func:`profile`.

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
        _check_options(expand, nframes)
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
        self._window: _tracing.PeakWindow | None = None
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
        name = _qualname(code)
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
        with self._lock:
            self._tracers.append((threading.current_thread(), current))
        matcher = self._matcher()
        current.matchers.append(matcher)
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
        tracer().prepare()
        self._window = _tracing.begin(self.nframes)
        self._started = time.perf_counter()
        self._attached = True
        self._retained = None
        self._nframes_used = tracemalloc.get_traceback_limit()
        self._main_matcher = self._install_here()
        self._previous_hook = threading.gettrace() if hasattr(threading, "gettrace") else None
        threading.settrace(self._thread_hook)

    def detach(self) -> None:
        """Stop profiling; record what the matched lines still hold."""
        if not self._attached or self._window is None:
            raise RuntimeError("this LineTarget is not attached")
        self._attached = False
        self._duration += time.perf_counter() - self._started
        threading.settrace(self._previous_hook)
        current = tracer()
        if self._main_matcher in current.matchers:
            current.matchers.remove(self._main_matcher)
        self._main_matcher = None
        current.release()
        try:
            snapshot = _snapshot()
        finally:
            window, self._window = self._window, None
            _tracing.end(window)
        self._flush_all()
        for _, collector in self._snapshot_collectors():
            if collector.open_frames:
                collector.open_frames.clear()
                collector.end_call()
        self._retained = self._measure_retained(snapshot)

    def _flush_all(self) -> None:
        """Replay every thread's log. A call still running in another thread
        at detach is cut off where it was."""
        with self._lock:
            tracers = list(self._tracers)
        for owner, thread_tracer in tracers:
            if owner is not threading.current_thread():
                thread_tracer.installed = False  # its thread is over, or no longer ours
            thread_tracer.flush()

    def _snapshot_collectors(self) -> list[tuple[CodeType, Collector]]:
        with self._lock:
            return list(self._collectors)

    def _measure_retained(self, snapshot: tracemalloc.Snapshot) -> dict[Key, int]:
        codes = {c for _, col in self._snapshot_collectors() for c in col.codes}
        return _retained(snapshot, codes, None)

    def results(self) -> tuple[LineProfile, ...]:
        """One profile per matched code object, in file and line order."""
        retained = self._retained
        if retained is None:
            self._flush_all()
            retained = self._measure_retained(_snapshot())
        merged: dict[CodeType, Collector] = {}
        for code, collector in self._snapshot_collectors():
            merged.setdefault(code, Collector(expand=self.expand))
            _merge(merged[code], collector)
        profiles = [build_profile(collector, code, retained=retained,
                                  nframes=self._nframes_used,
                                  duration_seconds=self._duration, counted_total=False)
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
