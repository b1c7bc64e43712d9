"""L4 guards: :func:`track_leaks` and :func:`check_leaks`, leak checks for code and blocks.

Two modes:

* **Repeated** (the decorator and :func:`check_leaks`): warm up, then call
  the function again and again, collecting garbage and reading every signal
  after each call, and judge the growth per call with a fitted slope, its
  standard error, a persistence test on the last third of the calls and a
  monotony test (see :mod:`memguard.guards._leak_stats`). More calls are
  made while the answer is unclear. This tells a leak of 64 bytes per call
  from warm-up caches, bounded caches filling up, cycles freed by the
  collector, big temporaries, allocator fragmentation and noise.
* **Single run** (``with track_leaks() as leaks:``, or ``repeat=1``): the
  objects created in the block and still alive after it, by type, and the
  traced memory it kept, each against an allowance.

Signals: ``"python"`` (traced Python memory, by allocation site),
``"objects"`` (live objects, by type), ``"rss"`` (process memory, for
native leaks), ``"fds"`` (open descriptors, named by path) and
``"threads"`` (named by thread name). Each can be switched off.

A leak raises :class:`~memguard.exceptions.LeakDetected` (an
``AssertionError``) whose message names the growth per call, the signals
that fired, the growing allocation sites and types, a leaked object with the
chain of references that holds it, and the leaked descriptors and threads.
memguard keeps no reference to the code's objects once a check is over.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, TypeVar, cast, overload

from ..exceptions import LeakDetected
from ..units import Size, parse_size
from ..values.leak import SIGNALS, LeakReport, SignalName
from ._leak_run import LeakOptions, RepeatedRun, SingleRun
from ._repr import guard_repr
from ._wrap import add_note, caller_label

__all__ = ["LeakTracker", "check_leaks", "track_leaks"]

F = TypeVar("F", bound=Callable[..., Any])


def _int_option(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def _choose_signals(signals: Iterable[str] | None,
                    switches: dict[SignalName, bool | None]) -> tuple[tuple[SignalName, ...], bool]:
    if isinstance(signals, str):
        raise TypeError(f"signals must be a collection of names, not the string {signals!r}")
    chosen: set[str] = set(SIGNALS) if signals is None else set(signals)
    unknown = chosen - set(SIGNALS)
    if unknown:
        raise ValueError(f"unknown signal(s) {sorted(unknown)}; expected some of {SIGNALS}")
    for name, on in switches.items():
        if on is True:
            chosen.add(name)
        elif on is False:
            chosen.discard(name)
    if not chosen:
        raise ValueError("every signal is switched off; a leak check needs at least one")
    explicit = signals is not None or any(on is True for on in switches.values())
    return tuple(s for s in SIGNALS if s in chosen), explicit


class LeakTracker:
    """A configured leak check: decorator, ``with`` block, or :meth:`check`.

    Made by :func:`track_leaks`; see there for the options.

    Attributes:
        report: The :class:`~memguard.values.leak.LeakReport` of the last
            check, once one has finished.

    Example:
        >>> import memguard
        >>> tracker = memguard.track_leaks(repeat=20, warmup=1, signals=["python"])
        >>> tracker.check(lambda: None).leaked
        False
    """

    def __init__(self, options: LeakOptions, *, label: str | None, fail: bool) -> None:
        self.options = options
        self.label = label
        self.fail = fail
        self.report: LeakReport | None = None
        self._single: SingleRun | None = None

    # -- repeated mode ------------------------------------------------------
    def check(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> LeakReport:
        """Check *fn* (called with *args* and *kwargs*) for leaks, repeatedly.

        Returns:
            The report, when no leak was found (or ``fail=False``).

        Raises:
            LeakDetected: A signal found a leak; ``.report`` has the details.

        Example:
            >>> import memguard
            >>> memguard.track_leaks(repeat=20, warmup=1).check(len, "abc").leaked
            False
        """
        __tracebackhide__ = True
        if not callable(fn):
            raise TypeError(f"check_leaks needs a callable, not {type(fn).__name__} {fn!r}")
        label = self.label or getattr(fn, "__qualname__", None) or repr(fn)
        if self.options.repeat == 1:
            with self._single_run(label):
                _call_sync(fn, args, kwargs)
            assert self.report is not None
            return self.report
        if inspect.iscoroutinefunction(fn):
            import asyncio  # only for coroutine functions: asyncio is slow to import

            loop = asyncio.new_event_loop()
            try:
                return self._run_sync(lambda: loop.run_until_complete(fn(*args, **kwargs)), label)
            finally:
                loop.close()
        return self._run_sync(lambda: _discard(fn(*args, **kwargs)), label)

    def _run_sync(self, call: Callable[[], Any], label: str) -> LeakReport:
        __tracebackhide__ = True
        run = RepeatedRun(self.options, label)
        try:
            run.open()
            for _ in range(self.options.warmup):
                call()
            run.begin()
            while run.wants_more():
                call()
                run.record()
            if run.judge():
                calls = run.name_begin()
                for index in range(calls):
                    if index == calls // 2:
                        run.name_half()
                    call()
                run.name_end()
            report = run.report()
        finally:
            run.close()
        return self._conclude(report)

    async def _run_async(self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...],
                         kwargs: dict[str, Any], label: str) -> LeakReport:
        __tracebackhide__ = True
        run = RepeatedRun(self.options, label)
        try:
            run.open()
            for _ in range(self.options.warmup):
                await fn(*args, **kwargs)
            run.begin()
            while run.wants_more():
                await fn(*args, **kwargs)
                run.record()
            if run.judge():
                calls = run.name_begin()
                for index in range(calls):
                    if index == calls // 2:
                        run.name_half()
                    await fn(*args, **kwargs)
                run.name_end()
            report = run.report()
        finally:
            run.close()
        return self._conclude(report)

    def _conclude(self, report: LeakReport) -> LeakReport:
        __tracebackhide__ = True
        self.report = report
        if report.leaked and self.fail:
            raise LeakDetected(report.message(top=self.options.top), report=report,
                               label=report.label)
        return report

    # -- decorator ----------------------------------------------------------
    def __call__(self, fn: F) -> F:
        """Decorate *fn*: each call of the result runs a whole leak check of *fn*.

        The decorated function returns ``None`` (test functions must).
        """
        if not callable(fn):
            raise TypeError(f"track_leaks decorates functions, not {type(fn).__name__} {fn!r}")
        label = self.label or getattr(fn, "__qualname__", None) or repr(fn)
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> None:
                __tracebackhide__ = True
                if self.options.repeat == 1:
                    with self._single_run(label):
                        await fn(*args, **kwargs)
                    return
                await self._run_async(fn, args, kwargs, label)

            return cast(F, async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> None:
            __tracebackhide__ = True
            self.check(fn, *args, **kwargs)

        return cast(F, wrapper)

    # -- single-run mode ----------------------------------------------------
    def _single_run(self, label: str) -> LeakTracker:
        clone = LeakTracker(self.options, label=label, fail=self.fail)
        clone._parent = self  # type: ignore[attr-defined]
        return clone

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        signals = ", ".join(getattr(self.options, "signals", ()))
        return guard_repr("track_leaks", f"signals={signals}{label}",
                          running=self._single is not None, result=self.report)

    def __enter__(self) -> LeakTracker:
        if self._single is not None:
            raise RuntimeError("this track_leaks() block is already running; a `with` block "
                               "cannot be re-entered")
        self._single = SingleRun(self.options, self.label or caller_label())
        try:
            self._single.open()
        except BaseException:
            self._single.close()
            self._single = None
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        __tracebackhide__ = True
        run, self._single = self._single, None
        assert run is not None
        try:
            report = run.finish()
        finally:
            run.close()
        self.report = report
        parent = getattr(self, "_parent", None)
        if parent is not None:
            parent.report = report
        if not report.leaked or not self.fail:
            return
        message = report.message(top=self.options.top)
        if exc is not None:
            add_note(exc, message)
            return
        raise LeakDetected(message, report=report, label=report.label)


def _discard(_: object) -> None:
    """Drop a call's result at once: results are not leaks."""


def _call_sync(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if inspect.iscoroutinefunction(fn):
        import asyncio

        asyncio.run(fn(*args, **kwargs))
    else:
        fn(*args, **kwargs)


@overload
def track_leaks(fn: F, /) -> F: ...
@overload
def track_leaks(
    fn: None = None, /, *, repeat: int | None = None, warmup: int = 5,
    signals: Iterable[str] | None = None, python: bool | None = None,
    objects: bool | None = None, rss: bool | None = None, fds: bool | None = None,
    threads: bool | None = None, max_calls: int = 320, max_seconds: float = 10.0,
    allowance: int = 10, allowance_bytes: Size = "64 KiB", label: str | None = None,
    top: int = 5, fail: bool = True,
) -> LeakTracker: ...
def track_leaks(
    fn: Any = None, /, *, repeat: int | None = None, warmup: int = 5,
    signals: Iterable[str] | None = None, python: bool | None = None,
    objects: bool | None = None, rss: bool | None = None, fds: bool | None = None,
    threads: bool | None = None, max_calls: int = 320, max_seconds: float = 10.0,
    allowance: int = 10, allowance_bytes: Size = "64 KiB", label: str | None = None,
    top: int = 5, fail: bool = True,
) -> Any:
    """Check code for leaks: a decorator (bare or with options) or a ``with`` block.

    Args:
        fn: The function, when used as a bare ``@track_leaks``.
        repeat: Measure exactly this many calls. By default the check is
            adaptive: 40 calls, then twice as many while some signal still
            grows, up to *max_calls*. ``repeat=1`` checks one run (the
            single-run mode of the ``with`` block).
        warmup: Calls made before measuring (caches fill, imports happen).
        signals: The signals to measure, out of ``"python"``, ``"objects"``,
            ``"rss"``, ``"fds"`` and ``"threads"``; all by default.
        python, objects, rss, fds, threads: Switch one signal on or off.
        max_calls: The most measured calls an adaptive check makes.
        max_seconds: No new batch of calls is started when it would take
            the check past this many seconds.
        allowance: Single run: objects created in the block that may stay
            alive after it.
        allowance_bytes: Single run: traced memory the block may keep.
        label: What to call the code in messages.
        top: How many sites and types a failure message lists.
        fail: Raise :class:`~memguard.exceptions.LeakDetected` on a leak
            (the default); with ``False`` only :attr:`LeakTracker.report`
            and :meth:`LeakTracker.check`'s return tell.

    Returns:
        The decorated function (bare use), or a :class:`LeakTracker`, which
        decorates, checks (:meth:`LeakTracker.check`) and is a context manager.

    Raises:
        LeakDetected: From the decorated function or at the end of the
            block, when a signal found a leak.

    Note:
        The signals are process-wide: other threads allocating meanwhile
        add noise (a steady leak in another thread is reported as this
        code's). tracemalloc sees only Python's allocators; native leaks
        show in ``"rss"`` only, from about 16 KiB per call. In single-run
        mode, objects the enclosing function keeps in local variables after
        the block count as kept.

    Example:
        >>> import memguard
        >>> CACHE = []
        >>> @memguard.track_leaks(repeat=40, warmup=2)
        ... def handler():
        ...     CACHE.append(bytearray(1000))
        >>> try:
        ...     handler()
        ... except memguard.LeakDetected as error:
        ...     print(error.report.summary.split(" (")[0])  # 1000 bytes + the list's growth
        handler: leaks +1... KiB per call
        >>> CACHE.clear()

    .. versionadded:: 0.1.0
    """
    options = _options(repeat=repeat, warmup=warmup, signals=signals, python=python,
                       objects=objects, rss=rss, fds=fds, threads=threads, max_calls=max_calls,
                       max_seconds=max_seconds, allowance=allowance,
                       allowance_bytes=allowance_bytes, top=top)
    if label is not None and not isinstance(label, str):
        raise TypeError(f"label must be a string, not {type(label).__name__}")
    tracker = LeakTracker(options, label=label, fail=bool(fail))
    return tracker if fn is None else tracker(fn)


def _options(*, repeat: int | None, warmup: int, signals: Iterable[str] | None,
             python: bool | None, objects: bool | None, rss: bool | None, fds: bool | None,
             threads: bool | None, max_calls: int, max_seconds: float, allowance: int,
             allowance_bytes: Size, top: int) -> LeakOptions:
    if repeat is not None:
        _int_option("repeat", repeat, 1)
    _int_option("warmup", warmup, 0)
    _int_option("max_calls", max_calls, 3)
    _int_option("allowance", allowance, 0)
    _int_option("top", top, 0)
    if isinstance(max_seconds, bool) or not isinstance(max_seconds, int | float) \
            or not max_seconds > 0:
        raise ValueError(f"max_seconds must be a positive number, got {max_seconds!r}")
    chosen, explicit = _choose_signals(signals, {"python": python, "objects": objects,
                                                 "rss": rss, "fds": fds, "threads": threads})
    return LeakOptions(signals=chosen, warmup=warmup, repeat=repeat,
                       min_calls=min(40, max_calls), confirm_calls=max_calls,
                       max_seconds=float(max_seconds), top=top, allowance=allowance,
                       allowance_bytes=parse_size(allowance_bytes, name="allowance_bytes"),
                       explicit=explicit)


def check_leaks(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> LeakReport:
    """Check *fn* for leaks with the default settings, calling ``fn(*args, **kwargs)``.

    For other settings use ``track_leaks(...).check(fn, *args, **kwargs)``.

    Returns:
        The :class:`~memguard.values.leak.LeakReport` when no leak was found.

    Raises:
        LeakDetected: A leak was found; ``.report`` holds the report.

    Example:
        >>> import memguard
        >>> memguard.check_leaks(sorted, [3, 1, 2]).leaked
        False

    .. versionadded:: 0.1.0
    """
    __tracebackhide__ = True
    return LeakTracker(_options(repeat=None, warmup=5, signals=None, python=None,
                                objects=None, rss=None, fds=None, threads=None, max_calls=320,
                                max_seconds=10.0, allowance=10, allowance_bytes="64 KiB",
                                top=5), label=None, fail=True).check(fn, *args, **kwargs)
