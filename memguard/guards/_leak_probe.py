"""L5 guards: the readings a leak check takes, and what it names when it finds a leak.

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
import sys
import sysconfig
import tracemalloc
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from .. import process
from ..objects import type_name
from ..values.site import AllocationSite, Frame, is_internal

__all__ = [
    "UNITS",
    "RssReader",
    "TraceSummary",
    "container_sizes",
    "count_fds",
    "describe_sample",
    "global_name",
    "growing_containers",
    "grown_resources",
    "new_untracked_items",
    "newest_entry",
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


def _mallinfo2() -> Callable[[], Any]:
    """glibc's ``mallinfo2``; raises OSError or AttributeError where there is none."""
    import ctypes  # only when a leak check reads native memory

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
            "fordblks", "keepcost")]

    function = ctypes.CDLL(None).mallinfo2
    function.restype = MallInfo2
    function.argtypes = []
    function()
    return function


class RssReader:
    """Reads the process's native memory after every call.

    Where glibc offers ``mallinfo2`` (Linux, glibc 2.33+), the figure is the
    bytes ``malloc`` has handed out and not had back (``uordblks + hblkhd``):
    native allocations are seen even when they reuse freed pages, and
    fragmentation (freed memory the allocator keeps) is not counted. Elsewhere
    it is the resident set size, from ``/proc/self/statm`` kept open and
    re-read with ``os.pread`` (opening a file per call leaves a few dozen
    traced bytes behind for a while), or :func:`memguard.process.rss_bytes`.
    """

    def __init__(self) -> None:
        self._fd: int | None = None
        self._page = 4096
        self._mallinfo: Any = None
        self.method = "rss"

    def open(self) -> None:
        try:
            mallinfo = _mallinfo2()
        except (OSError, AttributeError):
            self._mallinfo = None
        else:
            self._mallinfo, self.method = mallinfo, "malloc in use (mallinfo2)"
            return
        try:
            self._fd = os.open("/proc/self/statm", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            self._page = os.sysconf("SC_PAGE_SIZE")
            self.method = "RSS (/proc/self/statm)"
        except (OSError, AttributeError, ValueError):
            self._fd = -1
            self.method = "RSS"

    def read(self) -> float:
        if self._mallinfo is None and self._fd is None:
            self.open()
        if self._mallinfo is not None:
            info = self._mallinfo()
            return float(info.uordblks + info.hblkhd)
        if self._fd is not None and self._fd >= 0:
            return float(int(os.pread(self._fd, 128, 0).split()[1]) * self._page)
        return float(process.rss_bytes())

    def close(self) -> None:
        if self._fd is not None and self._fd >= 0:
            os.close(self._fd)
        self._fd = None
        self._mallinfo = None


def count_fds() -> float:
    """How many descriptors are open: a listing of /proc/self/fd, no link reads (cheap)."""
    try:
        return float(len(os.listdir("/proc/self/fd")))
    except OSError:
        return float(len(process.open_fds()))


_CONTAINERS = (list, dict, set, deque)
_CHUNK = 10_000
_HOLDER_SECONDS = 3.0
#: Types whose instances are shared singletons, never leaked one per call.
_SHARED = (type(None), bool, type(Ellipsis), type(NotImplemented))


def _containers() -> dict[int, object]:
    """Every list, dict, set and deque: tracked ones, and untracked dicts they refer to."""
    objs = gc.get_objects()
    try:
        found: dict[int, object] = {id(o): o for o in objs if isinstance(o, _CONTAINERS)}
        for start in range(0, len(objs), _CHUNK):
            referents = gc.get_referents(*objs[start:start + _CHUNK])
            found.update((id(r), r) for r in referents
                         if type(r) is dict and not gc.is_tracked(r))
            del referents
    finally:
        del objs
    return found


def container_sizes() -> dict[int, int]:
    """``id -> len`` of every container (see :func:`growing_containers`); an untracked dict."""
    found = _containers()
    try:
        return {key: len(o) for key, o in found.items()}  # type: ignore[arg-type]
    finally:
        found.clear()


def growing_containers(before: dict[int, int],
                       own: Iterable[object] = ()) -> list[tuple[int, object]]:
    """Containers that grew since *before*, as ``(growth, container)``, most growth first.

    Lists, dicts, sets and deques the collector tracks, and the dicts of
    atoms it does not track (a cache of ``str`` to ``bytes``), found as
    referents. *own* are memguard's containers (left out: one of them may
    have the address, so the id, of a container freed since *before*). The
    caller must drop the returned list as soon as it is done.
    """
    found = _containers()
    for mine in own:
        found.pop(id(mine), None)
    try:
        grown = [(len(o) - before[key], o) for key, o in found.items()  # type: ignore[arg-type]
                 if key in before and len(o) > before[key]]  # type: ignore[arg-type]
    finally:
        found.clear()
    grown.sort(key=lambda pair: -pair[0])
    return grown


def new_untracked_items(grown: list[tuple[int, object]]) -> dict[str, int]:
    """Untracked objects among the items last added to growing lists, deques and dicts.

    The collector does not see ``str``, ``bytes``, numbers and dicts of atoms;
    the items a container gained (its last ones, for ordered containers) are
    where a leak of them shows. Sets have no order and are skipped.
    """
    counts: dict[str, int] = {}
    for growth, container in grown:
        added: list[object] = []
        if isinstance(container, dict):
            keys = list(container)[-growth:]
            added = keys + [container[key] for key in keys]
        elif isinstance(container, list | deque):
            added = list(container)[-growth:]
        for item in added:
            if not gc.is_tracked(item) and type(item) not in _SHARED:
                name = type_name(type(item))
                counts[name] = counts.get(name, 0) + 1
        added.clear()
    return counts


def newest_entry(container: object) -> tuple[object, str] | None:
    """The item most recently added to a list, deque or dict (any item of a set), and its edge.

    The edge names how the container holds the item: ``"['key']"``,
    ``"[12]"`` or ``" (set member)"``.
    """
    try:
        if isinstance(container, dict) and container:
            key = next(reversed(container))
            return container[key], f"[{key!r}]"
        if isinstance(container, list | deque) and container:
            return container[-1], f"[{len(container) - 1}]"
        if isinstance(container, set) and container:
            return next(iter(container)), " (set member)"
    except (StopIteration, RuntimeError, KeyError, IndexError):
        return None
    return None


def global_name(container: object) -> str | None:
    """``module.NAME`` or ``module.Class.attr`` holding *container*, if a module global does."""
    for module_name, module in list(sys.modules.items()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for name, value in list(namespace.items()):
            if value is container:
                return f"{module_name}.{name}"
            if isinstance(value, type) and value.__module__ == module_name:
                for attr, held in list(vars(value).items()):
                    if held is container:
                        return f"{module_name}.{name}.{attr}"
    return None


def describe_sample(obj: object, container: object = None, edge: str = "") -> str:
    """``repr (type), held by <chain>`` for a leaked object; keeps no reference.

    The holder search gets a few seconds: an object in a dict the collector
    does not track is found only after the ordinary search is exhausted, and
    a leak report is worth the wait. When it finds nothing and *container*
    (the growing container *obj* was taken from, holding it by *edge*) is a
    module global or class attribute, that is named instead.
    """
    from .. import holders

    text = f"{holders.safe_repr(obj)} ({type_name(type(obj))})"
    frame = sys._getframe()
    # This frame and its caller's hold *obj* only to describe it.
    frames = (frame,) if frame.f_back is None else (frame, frame.f_back)
    try:
        search = holders.search_holders(obj, max_seconds=_HOLDER_SECONDS, excused_frames=frames)
    except Exception as error:  # a report must not fail for want of a chain
        return f"{text}; holder search failed: {type(error).__name__}: {error}"
    finally:
        del frame, frames
    if search.steps is not None:
        return f"{text}, held by {search.text}"
    name = global_name(container) if container is not None else None
    if name is not None:
        return f"{text}, held by {name}{edge}"
    return f"{text}; {search.text}"


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
