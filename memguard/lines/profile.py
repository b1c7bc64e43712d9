"""L6 line profiler: line-by-line memory profiles (``@profile``, ``profile_lines``, ``LineTarget``).

For each line of a function: how much it allocated, how much of that was
still alive when the function returned, and its share of the function's
peak. Exact for memory allocated through Python's allocators (memguard's
native allocation counter, or tracemalloc's counters where it is not built,
read at every line), not RSS deltas; native allocations are not seen. How
the figures are made is described in :mod:`memguard.lines._tracer`; what
they mean:

* **allocated**: the sum of the line's increments of the traced heap, each
  the highest point reached while the line ran above where it started, so a
  temporary freed before the next line still counts. Calls made by a line
  roll up into it, unless ``expand`` lists the callee's own lines.
* **retained**: live bytes at return that the line allocated during the call.
  With the counter, each block carries the tag of the profiled line running
  in its thread when it was allocated (callees at any depth included); with
  tracemalloc, the blocks whose traceback leads, within ``nframes`` frames,
  to the line (compared with those alive when the call began).
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
import sys
import time
from collections.abc import Callable
from types import CodeType, FrameType
from typing import IO, Any, TypeVar, cast, overload

from ..guards._wrap import add_note
from ..values.lineprofile import LineProfile
from ._builder import Meter, build_profile, check_options, retained, snapshot
from ._statistics import Collector, Key
from ._tracer import ThreadTracer, tracer
from .target import LineTarget

__all__ = ["LineTarget", "profile", "profile_lines"]

F = TypeVar("F", bound=Callable[..., Any])

def _code_of(fn: Any) -> CodeType:
    """The code object that runs when *fn* is called."""
    target = inspect.unwrap(fn) if callable(fn) else fn
    target = getattr(target, "__func__", target)
    code = getattr(target, "__code__", None)
    if not isinstance(code, CodeType):
        raise TypeError(f"fn must be a Python function (def or async def), "
                        f"not {type(fn).__name__} {fn!r}")
    return code


class _Session:
    """One profiled outermost call of a decorated function, in one thread."""

    def __init__(self, code: CodeType, *, expand: int, nframes: int,
                 root_frame: FrameType | None = None) -> None:
        self.tracer = tracer()
        self.tracer.pause()  # inside an outer profile's line, this is memguard's work
        self.code = code
        self.root_frame = root_frame
        self.collector = Collector(expand=expand)
        self.started = time.perf_counter()
        # The thread's log is made before tracemalloc starts (not among the
        # traces the retained figures walk), or inside the count window.
        self.meter = Meter(self.tracer.measure_for(), nframes, self.tracer.prepare)
        self.nframes = self.meter.nframes
        self.baseline: dict[Key, int] | None = None
        self.settled = False
        try:
            if self.meter.needs_baseline:
                # Memory from earlier calls may be alive on the same lines.
                self.baseline = retained(snapshot(), [code], None)
            if root_frame is not None:
                self.tracer.roots[root_frame] = self.collector
            else:
                self.tracer.by_code.setdefault(code, []).append(self.collector)
            self.tracer.note_change()
            self.tracer.acquire()
        except BaseException:
            self.settle()
            self.meter.close()
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
        tracer_.note_change()
        # No reference to the frame is left, so its locals are gone now.
        tracer_.charge_tail(self.collector)

    def finish(self) -> LineProfile:
        """Stop profiling; measure what is retained; build the profile."""
        duration = time.perf_counter() - self.started
        try:
            self.settle()
            self.tracer.release()
            self.tracer.pause()
            taken = self.meter.live()
        finally:
            self.meter.close()
        # Named before the log is replayed: the counter's tags are the
        # tracer's slots, which the replay forgets once no profile runs here.
        if isinstance(taken, dict):  # the counter's: live bytes by tag
            kept = self.tracer.retained(taken, [self.collector])
        else:
            kept = retained(taken, self.collector.codes or [self.code], self.baseline)
        del taken
        # The arithmetic of the logged events, after tracing stopped (when
        # memguard owns the trace): no traced allocation slows it down.
        self.tracer.flush()
        if self.collector.open_frames:  # a generator left unfinished
            self.collector.open_frames.clear()
            self.collector.end_call()
        if self.collector.calls == 0:
            self.collector.calls = 1
        return build_profile(self.collector, self.code, retained=kept,
                             nframes=self.nframes, duration_seconds=duration,
                             method=self.meter.method)


class _Options:
    def __init__(self, *, expand: int, nframes: int, show: bool, stream: IO[str] | None,
                 on_profile: Callable[[LineProfile], object] | None) -> None:
        check_options(expand, nframes)
        self.expand = expand
        self.nframes = nframes
        self.show = show
        self.stream = stream
        self.on_profile = on_profile

    def deliver(self, holder: Any, result: LineProfile, error: BaseException | None) -> None:
        holder.last_profile = result
        if error is not None:
            add_note(error, f"memguard line profile: {result.summary}")
            with contextlib.suppress(AttributeError):  # exceptions with __slots__
                error.memguard_profile = result  # type: ignore[attr-defined]
        if self.show:
            (self.stream if self.stream is not None else sys.stderr).write(f"{result}\n")
        if self.on_profile is not None:
            self.on_profile(result)


def _end(session: _Session, holder: Any, options: _Options,
         error: BaseException | None) -> ThreadTracer:
    """End a profiled call: settle, build the profile, hand it over."""
    session.settle()
    session.tracer.pause()
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
        nframes: Without the native counter: frames tracemalloc keeps per
            allocation when memguard starts tracing, how deep in callees
            retained memory is traced back to a line. 1 (the default, the
            cheapest) names lines that allocate directly; memory a callee
            allocated and the function kept is then reported as not traced
            back to a line. An already running trace keeps its own setting.
            The counter's line tags follow callees at any depth, and the
            profile's ``nframes`` is then 0.
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
