"""L4 guards: the readings a leak check takes, and what it names when it finds a leak.

* :func:`summarize_traces` groups the live traces by the innermost frame of
  *user* code (not memguard, not the standard library or site-packages), so
  a leak through ``dict.__setitem__`` or ``logging.getLogger`` is named by
  the caller's line. The summary is dicts of ``str`` to ``int``, which the
  collector does not track, so keeping it does not show up in a census.
* :func:`growing_containers` and :func:`describe_sample` find a leaked object
  and say who holds it.
"""

from __future__ import annotations

import gc
import os
import sysconfig
import tracemalloc
from collections import deque
from collections.abc import Callable, Iterable

from .. import process
from ..objects import type_name
from ..values.site import AllocationSite, Frame, is_internal

__all__ = [
    "UNITS",
    "RssReader",
    "TraceSummary",
    "container_sizes",
    "describe_sample",
    "growing_containers",
    "grown_resources",
    "newest_item",
    "pick_by_type",
    "site_growth",
    "summarize_traces",
]

UNITS: dict[str, str] = {
    "python": "bytes", "objects": "objects", "rss": "bytes", "fds": "fds", "threads": "threads",
}


def _library_prefixes() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    found = {os.path.realpath(paths[key]) + os.sep for key in
             ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    found |= {paths[key] + os.sep for key in ("stdlib", "platstdlib", "purelib", "platlib")
              if key in paths}
    return tuple(sorted(found))


_LIBRARY = _library_prefixes()

#: (sizes by site key, block counts by site key, traceback text by site key).
TraceSummary = tuple[dict[str, int], dict[str, int], dict[str, str]]


def _chosen_frame(traceback: tracemalloc.Traceback) -> tracemalloc.Frame | None:
    """The innermost user frame of *traceback*; ``None`` for memguard's own allocations.

    Library frames (standard library, site-packages) are skipped, so an
    allocation inside ``dict.__setitem__`` or ``logging.getLogger`` is named by
    its caller. Walking outwards, a memguard frame met before any user frame
    means memguard allocated the block itself.
    """
    innermost_library = None
    for frame in reversed(traceback):  # iteration is oldest first
        if is_internal(frame.filename):
            return None
        if frame.filename.startswith(_LIBRARY) or frame.filename.startswith("<frozen "):
            innermost_library = innermost_library or frame
            continue
        return frame
    return innermost_library


def summarize_traces() -> TraceSummary:
    """Live traced memory grouped by the innermost user frame; empty when not tracing."""
    sizes: dict[str, int] = {}
    counts: dict[str, int] = {}
    tracebacks: dict[str, str] = {}
    if not tracemalloc.is_tracing():
        return sizes, counts, tracebacks
    snapshot = tracemalloc.take_snapshot()
    try:
        for stat in snapshot.statistics("traceback"):
            frame = _chosen_frame(stat.traceback)
            if frame is None:
                continue
            key = f"{frame.filename}\0{frame.lineno}"
            sizes[key] = sizes.get(key, 0) + stat.size
            counts[key] = counts.get(key, 0) + stat.count
            if key not in tracebacks:
                tracebacks[key] = "\n".join(f"{f.filename}\0{f.lineno}" for f in stat.traceback)
    finally:
        del snapshot
    return sizes, counts, tracebacks


def site_growth(before: TraceSummary, after: TraceSummary, calls: int,
                top: int) -> tuple[AllocationSite, ...]:
    """Sites whose live size grew from *before* to *after*, per call, biggest first."""
    sizes, counts, tracebacks = after
    found: list[AllocationSite] = []
    for key, size in sizes.items():
        grown = size - before[0].get(key, 0)
        if grown <= 0 or calls <= 0:
            continue
        filename, _, line = key.rpartition("\0")
        blocks = counts.get(key, 0) - before[1].get(key, 0)
        frames = tuple(Frame(filename=f.rpartition("\0")[0], lineno=int(f.rpartition("\0")[2]))
                       for f in tracebacks.get(key, "").splitlines() if f)
        found.append(AllocationSite(filename=filename, lineno=int(line),
                                    size_bytes=round(grown / calls),
                                    count=max(1, round(blocks / calls)) if blocks > 0 else 0,
                                    traceback=frames))
    found.sort(key=lambda s: (-s.size_bytes, s.filename, s.lineno))
    return tuple(s for s in found[:top] if s.size_bytes > 0)


class RssReader:
    """Reads the process's RSS after every call without allocating Python objects that linger.

    ``/proc/self/statm`` is kept open and re-read with ``os.pread``: opening a
    file through :func:`open` per call leaves a few dozen traced bytes behind
    for the first few hundred calls, which would read as Python growth.
    Elsewhere it falls back to :func:`memguard.process.rss_bytes`.
    """

    def __init__(self) -> None:
        self._fd: int | None = None
        self._page = 4096

    def read(self) -> float:
        if self._fd is None:
            try:
                self._fd = os.open("/proc/self/statm", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
                self._page = os.sysconf("SC_PAGE_SIZE")
            except (OSError, AttributeError, ValueError):
                self._fd = -1
        if self._fd < 0:
            return float(process.rss_bytes())
        return float(int(os.pread(self._fd, 128, 0).split()[1]) * self._page)

    def close(self) -> None:
        if self._fd is not None and self._fd >= 0:
            os.close(self._fd)
        self._fd = None


_CONTAINERS = (list, dict, set, deque)


def container_sizes() -> dict[int, int]:
    """``id -> len`` of every tracked list, dict, set and deque (an untracked dict)."""
    objs = gc.get_objects()
    try:
        return {id(o): len(o) for o in objs if isinstance(o, _CONTAINERS)}
    finally:
        del objs


def growing_containers(before: dict[int, int]) -> list[object]:
    """Containers that grew since *before*, most growth first.

    The caller must drop the returned list as soon as it is done with it.
    """
    objs = gc.get_objects()
    try:
        grown = [(len(o) - before[id(o)], o) for o in objs
                 if isinstance(o, _CONTAINERS) and id(o) in before and len(o) > before[id(o)]]
    finally:
        del objs
    grown.sort(key=lambda pair: -pair[0])
    return [o for _, o in grown]


def newest_item(container: object) -> object | None:
    """The item most recently added to a list, deque or dict; any item of a set."""
    try:
        if isinstance(container, dict):
            return container[next(reversed(container))] if container else None
        if isinstance(container, list | deque):
            return container[-1] if container else None
        if isinstance(container, set):
            return next(iter(container), None)
    except (StopIteration, RuntimeError, KeyError, IndexError):
        return None
    return None


def describe_sample(obj: object) -> str:
    """``repr (type), held by <chain>`` for a leaked object; keeps no reference."""
    from .. import holders

    text = f"{holders.safe_repr(obj)} ({type_name(type(obj))})"
    try:
        steps = holders.find_holder_chain(obj, max_seconds=1.0)
    except Exception as error:  # a report must not fail for want of a chain
        return f"{text}; holder search failed: {type(error).__name__}: {error}"
    if steps is None:
        return f"{text}; no holder chain found from a root"
    return f"{text}, held by {holders.format_chain(steps)}"


def pick_by_type(objs: Iterable[object], names: list[str]) -> object | None:
    """The first object in *objs* whose type name comes first in *names*."""
    rank = {name: i for i, name in enumerate(names)}
    best: tuple[int, object] | None = None
    for obj in objs:
        position = rank.get(type_name(type(obj)))
        if position is not None and (best is None or position < best[0]):
            best = (position, obj)
            if position == 0:
                break
    return None if best is None else best[1]


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
