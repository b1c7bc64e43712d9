"""L2 measurement: the native allocation counter, the cheap exact Python-heap measure.

:mod:`memguard._native` (a small optional C extension) wraps Python's
allocators while a count is open and keeps the bytes in use and their peak:
the requested size of every block allocated since the count began, exactly
what tracemalloc would trace had it started at that moment, for the price of
a counter (see ``docs/how-it-measures.md``). This module is the only one that
talks to the extension; everything else measures the Python heap through it
or through :mod:`memguard._tracing`.

The API mirrors :mod:`memguard._tracing`'s windows::

    if _counter.available():
        window = _counter.begin()
        run()                                  # the measured code
        window = _counter.end(window)
        window.peak_bytes, window.end_bytes - window.start_bytes

* :func:`begin` opens a :class:`CountWindow` (the first open window installs
  the hooks); :func:`end` closes it (the last one removes them, or leaves
  them as pass-through under a hook installed later, such as tracemalloc
  started inside the block). Windows nest and overlap across threads: the
  counter has one peak, and before it is reset the peak so far is folded into
  every open window, as :mod:`memguard._tracing` does for tracemalloc.
* :func:`current` and :func:`refresh` read the count while windows are open;
  :func:`rebase` restarts the peak (the line profiler's per-line reading).
* Levels are counted from when the first open window began, not from the
  start of the process: only a window's differences mean something.

The extension is absent where it could not be built (no C compiler or no
Python headers at install time) and is switched off by the environment
variable ``MEMGUARD_NO_NATIVE=1`` (read when no window is open):
:func:`available` says so and :func:`unavailable_reason` says why; callers
then measure with tracemalloc. :func:`measurement` names the path in use.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from . import _watcher
from ._optional import extension
from .exceptions import TracingError

__all__ = [
    "DEFAULT_SAMPLE_BYTES",
    "ENV_DISABLE",
    "ENV_SEED",
    "SURE_FACTOR",
    "CountWindow",
    "Sample",
    "SampledSet",
    "available",
    "begin",
    "can_trace",
    "capture",
    "captured",
    "current",
    "end",
    "estimate",
    "excluded",
    "hooks_installed",
    "line_reader",
    "lines_begin",
    "lines_end",
    "measurement",
    "open_windows",
    "rebase",
    "refresh",
    "rehook",
    "sample",
    "setprofile",
    "settrace",
    "tag_totals",
    "tagger",
    "unavailable_reason",
]

ENV_DISABLE = "MEMGUARD_NO_NATIVE"
"""Set to ``1`` to measure with tracemalloc even where the counter is built."""

ENV_SEED = "MEMGUARD_SAMPLE_SEED"
"""An integer seed for the sampling of sites, for reproducible estimates (tests)."""

SURE_FACTOR = 4
"""Blocks of this many mean sampling intervals or more are always sampled
(``SURE_FACTOR`` in ``_native.c``)."""

DEFAULT_SAMPLE_BYTES = 256 * 1024
"""The mean sampling interval of sites, in bytes (see :func:`sample`)."""

_OWN_PREFIX = os.path.dirname(os.path.abspath(__file__)) + os.sep
_lock = threading.RLock()
_windows: list[CountWindow] = []
_module: Any = None  # the extension module: untyped C functions
_import_error: str | None = None
_loaded = False


def _after_fork_in_child() -> None:
    # Another thread may have held the lock at the fork; the child has only
    # the forking thread. (The extension releases its own locks for the
    # child: see _native.c's atfork handlers.)
    global _lock
    _lock = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _native() -> Any:
    global _module, _import_error, _loaded
    if not _loaded:
        try:
            module = extension("memguard._native")
        except ImportError as error:
            _import_error = f"memguard._native is not built ({error})"
            module = None
        _module, _loaded = module, True
    return _module


def _disabled() -> bool:
    return os.environ.get(ENV_DISABLE, "").strip() not in ("", "0")


def unavailable_reason() -> str | None:
    """Why the counter cannot be used, or ``None`` when it can."""
    if _disabled():
        return f"{ENV_DISABLE} is set"
    if _native() is None:
        return _import_error
    return None


def available() -> bool:
    """Whether the native counter can be used right now.

    While a window is open the answer stays what it was when the first one
    began, so that an environment change cannot strand an open count.
    """
    with _lock:
        if _windows:
            return True
        return unavailable_reason() is None


def measurement() -> Literal["counter", "tracemalloc"]:
    """The Python-heap measure memguard uses by default here: the counter, or tracemalloc."""
    return "counter" if available() else "tracemalloc"


@dataclass(eq=False, slots=True)
class CountWindow:
    """One user's view of the counted Python heap while a block runs."""

    start_bytes: int
    """The count when the window opened."""
    peak_total_bytes: int
    """The highest count seen while the window was open."""
    end_bytes: int | None = field(default=None)
    """The count when the window closed, once closed."""
    lost_blocks: int = 0
    """Blocks the counter could not record (out of memory for its table); 0 normally."""

    @property
    def peak_bytes(self) -> int:
        """The peak above the starting level, in bytes."""
        return max(0, self.peak_total_bytes - self.start_bytes)


def _fold(peak: int) -> None:
    for window in _windows:
        window.peak_total_bytes = max(window.peak_total_bytes, peak)


def _require() -> Any:
    module = _native()
    if module is None or (not _windows and _disabled()):
        raise RuntimeError(f"the native counter is unavailable: {unavailable_reason()}")
    return module


def begin() -> CountWindow:
    """Open a count window, installing the allocator hooks if none is open.

    Raises:
        RuntimeError: The counter is unavailable (check :func:`available`).
    """
    # acquire()/release() rather than `with`: the bound __exit__ a `with`
    # keeps is allocated before the reading and freed after it, so a window
    # nested in another (which counts that method) would start above its
    # block's level and read its peak short by the method's size.
    _lock.acquire()
    try:
        module = _require()
        if not _windows:
            module.begin()
            _watcher.counting = True
        else:
            _fold(module.peak())
        current = module.reset_peak()
        window = CountWindow(current, current)
        _windows.append(window)
    finally:
        _lock.release()
    return window


def current() -> int:
    """The count now, in bytes (0 when no window is open)."""
    module = _module
    if module is None or not _windows:
        return 0
    return int(module.current())


def refresh() -> tuple[int, int]:
    """Fold the peak so far into every open window; return ``(current, peak)``."""
    with _lock:
        module = _module
        if module is None or not _windows:
            return 0, 0
        now, peak, _lost = module.counts()
        _fold(peak)
        return now, peak


def rebase() -> int:
    """Fold the peak into every open window, restart it at the current count; return that."""
    with _lock:
        module = _require()
        _fold(module.peak())
        return int(module.reset_peak())


def rehook() -> bool:
    """Put the counter's hooks back after memguard stopped a trace of its own.

    ``tracemalloc.stop()`` restores the allocators it found when it started,
    so a count window opened while that trace ran (by another thread's
    ``limit()``, say) loses its hooks with it. :mod:`memguard._tracing` calls
    this right after it stops tracemalloc, with no Python code between that
    could allocate: the open windows keep counting. (A trace someone else
    stops inside a block cannot be followed like this; :func:`end` says so.)

    With no window open, hooks that the stopped trace had wrapped (they stayed
    in the chain as pass-through when the last window closed beneath it) are
    back on top: they are removed, so that the allocators are as memguard
    found them.

    Returns:
        Whether the hooks had to be put back.
    """
    module = _module
    if module is None:
        return False
    return bool(module.rehook())


def end(window: CountWindow) -> CountWindow:
    """Close *window*, fixing its peak; the last window removes the hooks.

    Returns:
        The same window, now with ``end_bytes`` set.

    Raises:
        TracingError: The hooks were removed from the allocator chain while
            the window was open (a tracemalloc trace that began before the
            block and was stopped inside it takes every hook installed after
            it with it), so the count is unknown. The window is closed all
            the same.
    """
    with _lock:
        module = _require()
        now, peak, lost = module.counts()
        _fold(peak)
        window.end_bytes = now
        window.lost_blocks = lost
        if window in _windows:
            _windows.remove(window)
        intact = bool(module.end()) if not _windows else bool(module.intact())
        _watcher.counting = bool(_windows)
        if not intact:
            raise TracingError("the allocation counter was unhooked while the block ran "
                               "(tracemalloc, started before the block, was stopped inside "
                               "it), so its peak is unknown")
        return window


def lines_begin() -> None:
    """Start a line profile's figures (a window must be open; counted, nests).

    From now on the counter keeps a second peak, restarted by every
    :func:`line_reader` reading, and each block a thread allocates is kept
    under that thread's line tag (:func:`set_tag`) until it is freed.
    """
    with _lock:
        if not _windows:
            raise RuntimeError("lines_begin() needs an open count window")
        module = _require()
        module.set_own_prefix(_OWN_PREFIX)  # memguard's own blocks are never a line's
        module.lines_begin()


def lines_end() -> None:
    """Undo one :func:`lines_begin`; the last one forgets every tag."""
    with _lock:
        _require().lines_end()


def line_reader() -> Any:
    """The line profiler's per-event reading: a C function returning
    ``(current, peak since the last reading)``, the peak restarted by the reading."""
    return _require().line_read


def tagger() -> Any:
    """The C function that sets this thread's line tag (``0``: none)."""
    return _require().set_tag


def can_trace() -> bool:
    """Whether the line profiler's trace function in C can be installed here
    (the counter is usable and built for an interpreter whose frames it reads)."""
    return available() and hasattr(_native(), "settrace")


def settrace(on_call: Any) -> None:
    """Install the trace function in C for this thread, sending the profiler's
    calls to *on_call* (``sys.gettrace()`` then returns *on_call*); remove it
    with :func:`sys.settrace`."""
    _require().settrace(on_call)


def setprofile(on_call: Any) -> None:
    """Install the dormant line tracer's call watcher in C for this thread: a
    call the profiler wants goes to *on_call*, and wakes the trace function
    in C; remove it with :func:`sys.setprofile`."""
    _require().setprofile(on_call)


def tag_totals() -> dict[int, int]:
    """Live bytes by line tag: every block allocated under a tag and not freed since.

    The dict it builds is memguard's own work, left out of every open peak.
    """
    with excluded():
        totals: dict[int, int] = _require().tag_totals()
    return totals


def open_windows() -> int:
    """How many count windows are open right now."""
    with _lock:
        return len(_windows)


def hooks_installed() -> bool:
    """Whether the counter's hooks are anywhere in the allocator chain (active or not).

    False whenever no window is open, but while a trace started during a
    count still wraps hooks left behind as pass-through (they are removed
    when memguard stops that trace, see :func:`rehook`).
    """
    module = _module
    return module is not None and bool(module.installed())


@dataclass(frozen=True, slots=True)
class Sample:
    """One sampled live block: its size and its Python stack, innermost first."""

    size_bytes: int
    """The block's requested size."""
    frames: tuple[tuple[str, str, int], ...]
    """``(filename, function, line)`` of up to 8 frames, innermost first."""


@dataclass(frozen=True, slots=True)
class SampledSet:
    """The sampled live blocks at one moment, and how they were sampled."""

    level_bytes: int
    """The count when the set was copied (same origin as :attr:`CountWindow.start_bytes`)."""
    samples: tuple[Sample, ...]
    """The sampled blocks live then."""
    interval_bytes: float
    """The mean sampling interval, in bytes."""
    dropped: int
    """Samples that did not fit the table (4096 live samples at once); normally 0."""


def sample(interval_bytes: float = DEFAULT_SAMPLE_BYTES, seed: int | None = None) -> None:
    """Sample the blocks counted from now on, by bytes, until the last window closes.

    Every counted allocation spends a random budget (exponential, mean
    *interval_bytes*); a block that exhausts it is sampled with its Python
    stack. A block of *s* bytes is sampled with probability
    ``1 - exp(-s / interval_bytes)``, so ``s / that`` estimates the bytes it
    stands for (:func:`estimate`). Sampling is process-wide: a second call
    only changes the interval.

    Args:
        interval_bytes: The mean interval.
        seed: Seed of the sampling; default: :data:`ENV_SEED` if set, else random.
    """
    with _lock:
        module = _require()
        if not _windows:
            raise RuntimeError("sample() needs an open count window")
        if seed is None:
            env = os.environ.get(ENV_SEED, "").strip()
            seed = int(env) if env else int.from_bytes(os.urandom(8), "little")
        module.start_sampling(float(interval_bytes), seed & 0xFFFFFFFFFFFFFFFF)


def capture(above_bytes: int, growth: float, callback: Any = None) -> None:
    """Copy the sampled live set at each new peak above *above_bytes* (a count level).

    A copy is made at the first new peak above the level and again each time
    the peak reaches *growth* times the last copy's level. *callback(level)*,
    if given, then runs in the main thread as a pending call, between two
    bytecodes: as soon after the new peak as the interpreter allows. Pass
    ``above_bytes=-1`` to stop. One capture is set at a time, process-wide.
    """
    with _lock:
        _require().set_capture(int(above_bytes), float(growth), callback)


def captured(*, live: bool = False) -> SampledSet | None:
    """The sampled live set at the highest copy (or now, with *live*); ``None`` if none."""
    with _lock:
        module = _module
        if module is None or not _windows:
            return None
        level, rows, interval, dropped = module.sampled_live() if live else module.captured()
    if level < 0:
        return None
    samples = tuple(Sample(size, tuple(frames)) for size, frames in rows)
    return SampledSet(level, samples, interval, dropped)


def estimate(size_bytes: int, interval_bytes: float) -> float:
    """The bytes one sampled block of *size_bytes* stands for (unbiased).

    A block of :data:`SURE_FACTOR` intervals or more is always sampled, and
    stands for its own size.

    Example:
        >>> round(estimate(1_000_000, 256 * 1024))
        1022541
        >>> round(estimate(100, 256 * 1024))
        262194
    """
    import math

    if interval_bytes <= 0 or size_bytes >= SURE_FACTOR * interval_bytes:
        return float(size_bytes)  # sampled for sure: it stands for itself
    probability = -math.expm1(-size_bytes / interval_bytes)
    return size_bytes / probability if probability > 0 else interval_bytes


@contextmanager
def excluded() -> Iterator[None]:
    """Leave memguard's own work inside the block out of every open window's peak.

    The peak so far is folded into every open window first; the peak of the
    body (building a report, say) is then dropped by restarting the counter's
    peak at the current count.
    """
    with _lock:
        module = _module
        if module is None or not _windows:
            yield
            return
        _fold(module.peak())
        try:
            yield
        finally:
            module.reset_peak()
