"""L6 leak checks: :func:`track_leaks` and :func:`check_leaks`, leak checks for code and blocks.

Two modes:

* **Repeated** (the decorator and :func:`check_leaks`): warm up, then call
  the function again and again *untraced*, reading cheap counters every so
  many calls (see :mod:`memguard.leaks.collector`), and judge the growth per
  call with a fitted slope, its standard error, a persistence test on the
  last third of the calls and a monotony test (see
  :mod:`memguard.leaks.statistics`). The number of calls is set by time: a
  cheap function gets thousands, an expensive one fewer; growth that stops
  within ``cache_bound`` calls is a cache filling up. Only when a signal
  fires is tracemalloc started, for a few more calls that name the sites,
  types and holder.
* **Single run** (``with track_leaks() as leaks:``, or ``repeat=1``): the
  objects created in the block and still alive after it, by type, and the
  traced memory it kept, each against an allowance.

Signals, switched on and off in groups: ``python`` (Python allocator
blocks; traced bytes too when tracemalloc already traces), ``objects``
(live objects), ``native`` (malloc's bytes, or RSS where malloc's counters
are missing; ``rss`` is its 0.1 name), ``fds`` (named by path) and
``threads`` (named by thread name).

A leak raises :class:`~memguard.exceptions.LeakDetected` (an
``AssertionError``) whose message names the growth per call, the signals
that fired, the growing allocation sites (with their source line) and
types, a leaked object with the chain of references that holds it, and the
leaked descriptors and threads.
memguard keeps no reference to the code's objects once a check is over.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Generator, Iterable
from types import TracebackType
from typing import Any, TypeVar, cast, overload

from ..exceptions import LeakDetected
from ..guards._repr import guard_repr
from ..guards._wrap import add_note, caller_label
from ..units import Size
from ..values.leak import LeakReport
from .collector import RepeatedRun, SingleRun
from .options import DEFAULTS, LeakOptions

__all__ = ["LeakTracker", "check_leaks", "track_leaks"]

F = TypeVar("F", bound=Callable[..., Any])


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
                return loop.run_until_complete(self._check_async(fn, args, kwargs, label))
            finally:
                loop.close()
        steps = RepeatedRun(self.options, label).steps()
        report: LeakReport | None = None
        try:
            count = next(steps)
            while True:
                for _ in range(count):
                    fn(*args, **kwargs)
                count = steps.send(None)
        except StopIteration as done:
            report = done.value
        finally:
            steps.close()
        return self._conclude(report)  # outside the except: no StopIteration as context

    async def _check_async(self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...],
                           kwargs: dict[str, Any], label: str) -> LeakReport:
        """:meth:`check` for a coroutine function: the same plan, its calls awaited."""
        __tracebackhide__ = True
        steps: Generator[int, None, LeakReport] = RepeatedRun(self.options, label).steps()
        report: LeakReport | None = None
        try:
            count = next(steps)
            while True:
                for _ in range(count):
                    await fn(*args, **kwargs)
                count = steps.send(None)
        except StopIteration as done:
            report = done.value
        finally:
            steps.close()
        return self._conclude(report)

    def _conclude(self, report: LeakReport | None) -> LeakReport:
        __tracebackhide__ = True
        assert report is not None  # the plan always ends with its report
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
                await self._check_async(fn, args, kwargs, label)

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
    fn: None = None, /, *,
    repeat: int | None = DEFAULTS.repeat, warmup: int = DEFAULTS.warmup,
    signals: Iterable[str] | None = None, python: bool | None = None,
    objects: bool | None = None, native: bool | None = None, rss: bool | None = None,
    fds: bool | None = None, threads: bool | None = None,
    max_seconds: float = DEFAULTS.max_seconds, min_seconds: float = DEFAULTS.min_seconds,
    cache_bound: int = DEFAULTS.cache_bound, max_calls: int = DEFAULTS.max_calls,
    allowance: int = DEFAULTS.allowance, allowance_bytes: Size = DEFAULTS.allowance_bytes,
    label: str | None = None, top: int = DEFAULTS.top, fail: bool = True,
) -> LeakTracker: ...
def track_leaks(
    fn: Any = None, /, *,
    repeat: int | None = DEFAULTS.repeat, warmup: int = DEFAULTS.warmup,
    signals: Iterable[str] | None = None, python: bool | None = None,
    objects: bool | None = None, native: bool | None = None, rss: bool | None = None,
    fds: bool | None = None, threads: bool | None = None,
    max_seconds: float = DEFAULTS.max_seconds, min_seconds: float = DEFAULTS.min_seconds,
    cache_bound: int = DEFAULTS.cache_bound, max_calls: int = DEFAULTS.max_calls,
    allowance: int = DEFAULTS.allowance, allowance_bytes: Size = DEFAULTS.allowance_bytes,
    label: str | None = None, top: int = DEFAULTS.top, fail: bool = True,
) -> Any:
    """Check code for leaks: a decorator (bare or with options) or a ``with`` block.

    Args:
        fn: The function, when used as a bare ``@track_leaks``.
        repeat: Measure exactly this many calls. By default the number of
            calls is set by time and growth (see
            :class:`~memguard.leaks.LeakOptions`). ``repeat=1`` checks one
            run (the single-run mode of the ``with`` block).
        warmup: Calls made before measuring (caches fill, imports happen).
        signals: The signals to measure, out of ``"python"``, ``"objects"``,
            ``"native"`` (``"rss"`` in 0.1), ``"fds"`` and ``"threads"``;
            all by default.
        python, objects, native, rss, fds, threads: Switch one signal on or off.
        max_seconds: The time budget of the whole check, naming included.
        min_seconds: A clean cheap function is called for at least this long
            (or ``2 * cache_bound`` calls), so rare leaks are seen.
        cache_bound: Growth that stops within this many calls is a bounded
            cache filling up, not a leak.
        max_calls: The most measured calls, whatever the budget.
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
        code's). Native leaks show in ``"malloc"`` (glibc: from a few bytes
        per call) or ``"rss"`` (elsewhere: from a few pages over the check). In single-run
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
    options = LeakOptions.make(
        repeat=repeat, warmup=warmup, signals=signals, python=python, objects=objects,
        native=native, rss=rss, fds=fds, threads=threads, max_seconds=max_seconds,
        min_seconds=min_seconds, cache_bound=cache_bound, max_calls=max_calls,
        allowance=allowance, allowance_bytes=allowance_bytes, top=top)
    if label is not None and not isinstance(label, str):
        raise TypeError(f"label must be a string, not {type(label).__name__}")
    tracker = LeakTracker(options, label=label, fail=bool(fail))
    return tracker if fn is None else tracker(fn)


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
    return LeakTracker(DEFAULTS, label=None, fail=True).check(fn, *args, **kwargs)
