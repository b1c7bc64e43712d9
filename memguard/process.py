"""L2 measurement: process memory through the kernel and psutil.

Two ways to know a process's peak resident memory (RSS), best first:

* ``"kernel-hwm"`` (Linux): the kernel keeps a high-water mark of RSS,
  ``VmHWM`` in ``/proc/self/status``; writing ``5`` to
  ``/proc/self/clear_refs`` resets it to the current RSS. Exact, free, and it
  catches a spike of a microsecond, native allocations included.
* ``"sampled"``: a background thread reads RSS through psutil every
  ``interval`` seconds. It can miss a spike shorter than the interval, and
  results say so.

Like the tracemalloc peak, the kernel's mark is one per process: open
windows are kept in a registry and each is given the mark so far before it
is reset, so nested windows keep their own figures.

psutil is imported on first use, never at ``import memguard``.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _watcher
from ._optional import require
from .exceptions import MeasurementUnavailable

if TYPE_CHECKING:
    import psutil

__all__ = [
    "RssWindow",
    "allocated_blocks",
    "begin_rss",
    "end_rss",
    "fd_count",
    "hwm_available",
    "malloc_reader",
    "open_fds",
    "rss_bytes",
    "rss_reader",
    "thread_names",
    "uss_bytes",
]

STATUS_PATH = Path("/proc/self/status")
STATM_PATH = "/proc/self/statm"
FD_PATH = Path("/proc/self/fd")
CLEAR_REFS_PATH = Path("/proc/self/clear_refs")

_lock = threading.Lock()
_rss_windows: list[RssWindow] = []
_hwm_state: bool | None = None
_process: Any = None


def _psutil_process() -> psutil.Process:
    global _process
    if _process is None or _process.pid != os.getpid():
        _process = require("psutil").Process()
    return _process  # type: ignore[no-any-return]


def _status_field(name: str) -> int:
    """Read one ``kB`` field of /proc/self/status, in bytes."""
    try:
        # Bytes, not text: a text read builds a decoder per call, and that
        # churn showed as growth in memguard's own leak checks of itself.
        data = STATUS_PATH.read_bytes()
    except OSError as error:
        raise MeasurementUnavailable(f"cannot read {STATUS_PATH}: {error}") from error
    key = name.encode("ascii") + b":"
    for line in data.splitlines():
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    raise MeasurementUnavailable(f"{STATUS_PATH} has no {name} field")


def _reset_hwm() -> None:
    # A raw write: text-mode files left blocks behind in io's decoder state,
    # which memguard's self-check of record() reported as growth.
    fd = os.open(CLEAR_REFS_PATH, os.O_WRONLY)
    try:
        os.write(fd, b"5")
    finally:
        os.close(fd)


def hwm_available() -> bool:
    """Whether the kernel's RSS high-water mark can be read and reset here.

    The answer is probed once (a read of ``VmHWM`` and one reset) and cached.
    """
    global _hwm_state
    if _hwm_state is None:
        try:
            _status_field("VmHWM")
            _reset_hwm()
        except (OSError, MeasurementUnavailable):
            _hwm_state = False
        else:
            _hwm_state = True
    return _hwm_state


def _psutil_rss() -> int:
    """RSS through psutil, or MeasurementUnavailable saying why not."""
    try:
        return int(_psutil_process().memory_info().rss)
    except Exception as error:
        raise MeasurementUnavailable(f"process RSS is not available: {error}") from error


def rss_bytes() -> int:
    """The process's resident set size now, in bytes.

    Raises:
        MeasurementUnavailable: Neither /proc nor psutil can tell.
    """
    try:
        return _status_field("VmRSS")
    except MeasurementUnavailable:
        return _psutil_rss()


def uss_bytes() -> int:
    """The process's unique set size (memory only it uses), in bytes.

    Raises:
        MeasurementUnavailable: psutil cannot read it on this platform, or
            is refused.
    """
    try:
        return int(_psutil_process().memory_full_info().uss)
    except Exception as error:
        raise MeasurementUnavailable(f"process USS is not available: {error}") from error


def open_fds() -> dict[int, str]:
    """Open file descriptors of this process and what each points at.

    Returns:
        Descriptor number to a path, ``socket:[inode]``, ``pipe:[inode]`` and
        so on, as the kernel names them.

    Raises:
        MeasurementUnavailable: /proc/self/fd cannot be read (not Linux, or
            refused); psutil's ``open_files`` is used as the fallback.
    """
    fd_dir = FD_PATH
    try:
        names = os.listdir(fd_dir)
    except OSError:
        try:
            return {f.fd: f.path for f in _psutil_process().open_files()}
        except Exception as error:
            raise MeasurementUnavailable(f"open descriptors are not available: {error}") from error
    found: dict[int, str] = {}
    for name in names:
        try:
            found[int(name)] = os.readlink(fd_dir / name)
        except OSError:
            continue  # closed between listing and reading, such as listdir's own
    return found


def thread_names() -> dict[int, str]:
    """Live Python threads, by ident, with their names."""
    return {t.ident: t.name for t in threading.enumerate() if t.ident is not None}


@dataclass(eq=False, slots=True)
class RssWindow:
    """One user's view of the process's peak RSS while a block runs."""

    start_bytes: int
    """RSS when the window opened."""
    peak_total_bytes: int
    """The highest RSS seen while the window was open."""
    method: str
    """``"kernel-hwm"`` or ``"sampled"``."""
    interval_seconds: float = 0.0
    """The sampling interval, for ``"sampled"``."""
    _task: _watcher.Task | None = None

    @property
    def peak_bytes(self) -> int:
        """The peak above the starting level, in bytes."""
        return max(0, self.peak_total_bytes - self.start_bytes)


def _fold_hwm() -> None:
    peak = _status_field("VmHWM")
    for window in _rss_windows:
        if window.method == "kernel-hwm" and peak > window.peak_total_bytes:
            window.peak_total_bytes = peak


def _sample(window: RssWindow) -> None:
    """A task of the watcher thread: fold one RSS reading into *window*."""
    try:
        rss = _psutil_rss()
    except MeasurementUnavailable:
        return  # the figure went away mid-block; end_rss reads it once more
    window.peak_total_bytes = max(window.peak_total_bytes, rss)


def begin_rss(*, interval: float = 0.001, force_sampling: bool = False) -> RssWindow:
    """Open an RSS peak window.

    Args:
        interval: Sampling interval in seconds when the kernel's mark is not
            available.
        force_sampling: Sample with psutil even where the kernel's mark works.

    Returns:
        The open window; pass it to :func:`end_rss`.

    Raises:
        MeasurementUnavailable: RSS cannot be read at all.
    """
    if not interval > 0:
        raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
    if not force_sampling and hwm_available():
        with _lock:
            _fold_hwm()
            _reset_hwm()
            start = rss_bytes()
            window = RssWindow(start, start, "kernel-hwm")
            _rss_windows.append(window)
            return window
    start = _psutil_rss()
    window = RssWindow(start, start, "sampled", interval_seconds=interval)
    window._task = _watcher.watch(lambda: _sample(window), interval)
    return window


def end_rss(window: RssWindow) -> RssWindow:
    """Close *window* and fix its peak; stops its sampling task if any."""
    if window.method == "kernel-hwm":
        with _lock:
            _fold_hwm()
            if window in _rss_windows:
                _rss_windows.remove(window)
        return window
    assert window._task is not None
    _watcher.unwatch(window._task)
    window._task = None
    window.peak_total_bytes = max(window.peak_total_bytes, _psutil_rss())
    return window


# -- cheap readers for repeated use (a leak check, a recording) ----------------
#
# One reader per quantity; every part of memguard that reads one of these
# quantities more than once reads it here.


_DIGITS = b"0123456789"


def rss_reader() -> tuple[Callable[[], int] | None, Callable[[], None], str | None]:
    """A cheap RSS reader for repeated use, its closer, and why RSS is absent.

    ``/proc/self/statm`` is opened once and re-read with ``os.pread`` (a
    file opened per read leaves traced bytes behind for a while); elsewhere
    :func:`rss_bytes`. RSS is page-granular: a reading moves by whole pages.

    Returns:
        ``(read, close, reason)``: *read* is ``None`` and *reason* says why
        when RSS cannot be read here.

    Example:
        >>> read, close, reason = rss_reader()
        >>> (read() > 0) if read else isinstance(reason, str)
        True
        >>> close()
    """
    try:
        fd = os.open(STATM_PATH, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        try:
            rss_bytes()
        except MeasurementUnavailable as error:
            return None, _nothing, str(error)
        return rss_bytes, _nothing, None
    page = os.sysconf("SC_PAGE_SIZE")

    def read() -> int:
        # The second field, cut with lstrip() and read digit by digit: split()
        # would make a list, and index() and int() a tuple of their arguments,
        # containers the program's collector counts (read on the watcher thread).
        data = os.pread(fd, 128, 0)
        rest = data.lstrip(_DIGITS).lstrip()
        pages = 0
        for index in range(len(rest) - len(rest.lstrip(_DIGITS))):
            pages = pages * 10 + rest[index] - 48
        return pages * page

    return read, lambda: os.close(fd), None


def _nothing() -> None:
    return None


def _mallinfo2() -> Callable[[], Any]:
    """glibc's ``mallinfo2``; raises OSError or AttributeError where there is none."""
    import ctypes  # only when native memory is read

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
            "fordblks", "keepcost")]

    function = ctypes.CDLL(None).mallinfo2
    function.restype = MallInfo2
    function.argtypes = []
    function()
    return function


_malloc: list[Callable[[], Any]] = []


def malloc_reader() -> Callable[[], int]:
    """A reader of the bytes ``malloc`` has handed out and not had back (glibc ``mallinfo2``).

    The figure is ``uordblks + hblkhd``: exact to the byte (plus malloc's
    per-block header), so a native leak of 128 bytes per call shows at once;
    freed memory the allocator keeps (fragmentation) is not counted. Python's
    own arenas (``mmap``) are not malloc's and do not count either.

    Raises:
        MeasurementUnavailable: Not glibc 2.33 or later (macOS, musl, Windows).

    Example:
        >>> try:
        ...     read = malloc_reader()
        ... except MeasurementUnavailable:
        ...     read = lambda: 1
        >>> read() > 0
        True
    """
    if not _malloc:
        try:
            _malloc.append(_mallinfo2())
        except (OSError, AttributeError) as error:
            raise MeasurementUnavailable(f"malloc's counters are not available (no glibc "
                                         f"mallinfo2): {error}") from error
    function = _malloc[0]

    def read() -> int:
        info = function()
        return int(info.uordblks + info.hblkhd)

    return read


def allocated_blocks() -> int:
    """Blocks Python's small-object allocator has handed out (``sys.getallocatedblocks()``).

    Free to read and untraced: a count of blocks of up to 512 bytes, every
    object and small buffer Python allocates (larger ones come from
    ``malloc``, see :func:`malloc_reader`).
    """
    return sys.getallocatedblocks()


def fd_count() -> int:
    """How many descriptors are open: a listing of /proc/self/fd, no link reads (cheap).

    Raises:
        MeasurementUnavailable: Neither /proc nor psutil can tell.
    """
    try:
        return len(os.listdir(FD_PATH))
    except OSError:
        return len(open_fds())
