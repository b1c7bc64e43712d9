"""L6 leak checks: naming a leak once it is found — growing sites, types and a holder.

After a repeated check finds a leak, a few more calls are made while
:class:`Naming` watches: the live traces, the sizes of every container and
the objects created (the heap is frozen first, so the collector shows only
new objects). What grew over those calls is what the leak is made of, in the
steady state: a cache that filled during the measured calls is not named.
"""

from __future__ import annotations

import gc
import os
import sys
import sysconfig
import time
import tracemalloc
import weakref
from collections import Counter
from collections.abc import Callable
from types import FrameType, MethodType

from .. import _tracing
from ..holders import containers as probe
from ..objects import count_types, type_name
from ..values.site import AllocationSite, Frame, is_internal, with_source

__all__ = ["MIN_PER_CALL", "Naming", "TraceSummary", "describe_one", "site_growth",
           "summarize_traces", "type_growth", "user_first"]

#: The smallest growth per call of a type that is named.
MIN_PER_CALL = 0.0005


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


def _site(key: str, tracebacks: dict[str, str], size_bytes: int,
          count: int) -> AllocationSite:
    """The site of a summary *key* (``filename\0line``), with its traceback."""
    filename, _, line = key.rpartition("\0")
    frames = tuple(Frame(filename=f.rpartition("\0")[0], lineno=int(f.rpartition("\0")[2]))
                   for f in tracebacks.get(key, "").splitlines() if f)
    return AllocationSite(filename=filename, lineno=int(line), size_bytes=size_bytes,
                          count=count, traceback=frames)


def _biggest(found: list[AllocationSite], top: int) -> list[AllocationSite]:
    """The *top* biggest sites, less those under a hundredth of the biggest (noise)."""
    found.sort(key=lambda s: (-s.size_bytes, s.filename, s.lineno))
    return [s for s in found[:top] if s.size_bytes * 100 >= found[0].size_bytes]


def site_growth(before: TraceSummary, after: TraceSummary, calls: int,
                top: int) -> tuple[AllocationSite, ...]:
    """Sites whose live size grew from *before* to *after*, biggest first.

    ``size_bytes`` and ``count`` are the growth over all *calls* (a leak on
    one call in 1,000 grows by a few blocks over thousands of calls; per
    call it would round to nothing); the report divides by its
    ``site_calls``.
    """
    sizes, counts, tracebacks = after
    found: list[AllocationSite] = []
    for key, size in sizes.items():
        grown = size - before[0].get(key, 0)
        if grown <= 0 or calls <= 0:
            continue
        blocks = counts.get(key, 0) - before[1].get(key, 0)
        found.append(_site(key, tracebacks, grown, max(0, blocks)))
    # One block over all the calls is a one-off (a frame, a cache entry), not a leak's site.
    return tuple(with_source(s) for s in _biggest(found, top) if s.count >= 2 or calls == 1)


def grown_in_place(before: TraceSummary, halfway: TraceSummary, after: TraceSummary,
                   scale: float, top: int) -> tuple[AllocationSite, ...]:
    """Sites whose blocks grew in size, not in number, in both halves of the calls.

    A buffer that grows by realloc (a ``bytearray`` extended, a list's array)
    leaks bytes in the same block: no new block marks its site, and the block
    untraced before the calls is traced whole at its first realloc. Its site
    is the one whose size rose from the start to halfway and again to the
    end, with as many blocks at the end as halfway. ``size_bytes`` is the
    second half's growth times *scale* (all the calls over the second half's),
    so that per call it reads like :func:`site_growth`'s; ``count`` is 0.
    """
    found: list[AllocationSite] = []
    for key, size in after[0].items():
        middle = halfway[0].get(key, 0)
        if before[0].get(key, 0) < middle < size and after[1].get(key, 0) == halfway[1].get(key, 0):
            found.append(_site(key, after[2], round((size - middle) * scale), 0))
    return tuple(with_source(s) for s in _biggest(found, top))


class Naming:
    """Extra calls after a leak is found, to name growing sites, types and a holder.

    Before the calls: the sizes of all containers and a trace summary, then
    ``gc.freeze()``. After them, the tracked objects the collector still
    sees are exactly the new ones alive, counted by type (also halfway: a
    type must grow in both halves, so a cache the interpreter fills once is
    not named); new untracked objects (``str``, ``bytes``) are counted among
    the items added to the containers that grew. The biggest-growing
    container's newest item is the sample. All of it costs a few passes over
    the heap, and only once a leak was found. Where the caller has frozen
    objects itself, two full censuses are compared instead.
    """

    def __init__(self) -> None:
        self.started = False
        self.frozen = False
        self.census: dict[str, int] = {}
        self.halfway: dict[str, int] = {}
        self.traces: TraceSummary = ({}, {}, {})
        self.halfway_traces: TraceSummary = ({}, {}, {})
        self.halfway_calls = 0
        self.sizes: dict[int, int] = {}
        self.sites: tuple[AllocationSite, ...] = ()
        self.types: tuple[tuple[str, float], ...] = ()
        self.sample: str | None = None
        self.unreachable = ""
        self.skipped = ""
        self.scan_seconds = 0.0
        self.c_calls = CCalls()
        self.calls_into_c: tuple[str, ...] = ()

    def clear(self) -> None:
        self.c_calls.stop()
        self.c_calls.counts.clear()
        self.census, self.halfway, self.sizes = {}, {}, {}
        self.traces = self.halfway_traces = ({}, {}, {})
        if self.frozen:
            gc.unfreeze()
            self.frozen = False

    def begin(self, start_tracing: Callable[[], None] = lambda: None) -> None:
        """Take the before-state; *start_tracing* is called once the untraced part is done.

        The container sizes are taken before tracing starts, so memguard's
        own table of them (an ``int`` per container) is not in the trace the
        sites are read from.
        """
        self.started = True
        gc.collect(0)  # the readings collected the rest
        begun = time.perf_counter()
        self.sizes = probe.container_sizes()
        self.scan_seconds = time.perf_counter() - begun
        start_tracing()
        with _tracing.excluded():
            self.traces = summarize_traces()
            if gc.get_freeze_count() == 0:
                gc.freeze()
                self.frozen = True
            else:
                self.census = count_types(collect=False)

    def profile_begin(self) -> None:
        """Start noting C calls: after :meth:`end`, for a few calls of their own,
        so the profiler's own objects are in no census."""
        self.c_calls.counts.clear()
        self.c_calls.start()

    def profile_end(self, calls: int) -> None:
        """Stop noting C calls; name those of the growing sites' lines and of every call."""
        self.c_calls.stop()
        at_sites = [f"{site.filename}:{site.lineno} -> {name}" for site in self.sites[:10]
                    for name in self.c_calls.at(site.filename, site.lineno)[:2]]
        self.calls_into_c = tuple(dict.fromkeys([*at_sites, *self.c_calls.each_call(calls)]))
        self.c_calls.counts.clear()

    def half(self, calls: int = 0) -> None:
        """Take the halfway state, after *calls* of the naming calls."""
        with _tracing.excluded():
            if self.frozen:
                self.halfway = _new_types()
            # after the census, which is not to count the summary's own objects
            self.halfway_traces = summarize_traces()
            self.halfway_calls = calls

    def end(self, calls: int, *, deadline: float | None = None,
            stop_tracing: Callable[[], None] = lambda: None) -> None:
        """Name what grew over *calls* calls; the holder search stops by *deadline*.

        *stop_tracing* is called once the sites are read: the scans that
        follow allocate an ``int`` per container, which a trace would slow
        several times over (a trace the caller started goes on, shared).
        """
        with _tracing.excluded():
            gc.collect()
            # The sites first: the scans below allocate, and may be traced.
            final_traces = summarize_traces()
            self.sites = site_growth(self.traces, final_traces, calls, 20)
            if not self.sites and 0 < self.halfway_calls < calls:
                self.sites = grown_in_place(self.traces, self.halfway_traces, final_traces,
                                            calls / (calls - self.halfway_calls), 20)
            # memguard's own: gone before the census of what the calls made
            self.halfway_traces = ({}, {}, {})
            del final_traces
        stop_tracing()
        with _tracing.excluded():
            if self.frozen:
                final = _new_types()
                steady = {name for name, count in final.items()
                          if self.halfway.get(name, 0) > 0 and count > self.halfway[name]}
                gc.unfreeze()
                self.frozen = False
            else:
                final = {name: count - self.census.get(name, 0)
                         for name, count in count_types(collect=False).items()}
                steady = set(final)
            if deadline is not None and time.perf_counter() + self.scan_seconds > deadline:
                # The budget is a promise: no second pass over the heap past it.
                grown = []
                self.skipped = (f"the growing containers were not looked for: a pass over "
                                f"the heap takes {self.scan_seconds:.1f} s and the time "
                                f"budget ran out (raise max_seconds)")
            else:
                grown = probe.growing_containers(self.sizes, (
                    self.census, self.halfway, final, self.sizes, *self.traces,
                    self.c_calls.counts))
            for name, count in probe.new_untracked_items(grown).items():
                final[name] = final.get(name, 0) + count
                steady.add(name)
            self.types = tuple((name, per) for name, per in type_growth({}, final, calls)
                               if name in steady and not name.startswith("memguard."))
            entries = [(entry[0], container, entry[1]) for _, container in grown[:50]
                       if (entry := probe.newest_entry(container)) is not None]
            del grown
            left = 3.0 if deadline is None else max(0.2, min(3.0, deadline - time.perf_counter()))
            self.sample = describe_one(entries, [name for name, _ in self.types],
                                       max_seconds=left)
            if not self.types and self.sample is None and not self.skipped:
                self.unreachable = self._nothing_named()
            self.clear()

    def _nothing_named(self) -> str:
        """Why no type is named: a buffer grown in place, or memory no referrer shows."""
        if self.sites and all(site.count == 0 for site in self.sites):
            return ("no new object grew: the leaked bytes are in a block made before the "
                    "calls and grown in place (a bytearray, list or dict extended), at the "
                    "site named")
        return ("no object that grew could be reached from the heap: the leaked memory has "
                "no referrer memguard can see (a reference or buffer leaked in C code?), so "
                "no type is named")


class CCalls:
    """Which C functions the measured code calls, and from which line (``sys.setprofile``).

    On during the naming calls only, and only when no other profiler is set
    (memguard does not replace a profiler it did not install): a ``c_call``
    event gives the innermost Python frame and the C function it calls, so a
    site or a native leak is named by the call, ``msgpack.Decoder.decode``,
    not only by the line. memguard's own frames are left out.
    """

    def __init__(self) -> None:
        # Keys are strings, not tuples: the collector does not track them, so
        # they never show among the types the calls made.
        self.counts: dict[str, int] = {}
        self.on = False

    def start(self) -> None:
        if sys.getprofile() is not None:
            return
        self.on = True
        sys.setprofile(self._event)

    def stop(self) -> None:
        if self.on:
            self.on = False
            sys.setprofile(None)

    def _event(self, frame: FrameType, event: str, arg: object) -> None:
        if event != "c_call":
            return
        filename = frame.f_code.co_filename
        if is_internal(filename):
            return
        key = f"{filename}\0{frame.f_lineno}\0{c_function_name(arg)}"
        self.counts[key] = self.counts.get(key, 0) + 1

    def at(self, filename: str, lineno: int) -> list[str]:
        """The C functions called from *filename*:*lineno*, most called first."""
        prefix = f"{filename}\0{lineno}\0"
        found = [(count, key[len(prefix):]) for key, count in self.counts.items()
                 if key.startswith(prefix)]
        return [name for _, name in sorted(found, reverse=True)]

    def each_call(self, calls: int, top: int = 5) -> tuple[str, ...]:
        """C functions called at least once per call, from user code first, as
        ``file:line -> module.function``."""
        found = []
        for key, count in self.counts.items():
            if count >= calls:
                file, line, name = key.split("\0")
                found.append((file.startswith(_LIBRARY), -count, file, int(line), name))
        found.sort()
        return tuple(f"{file}:{line} -> {name}" for _, _, file, line, name in found[:top])


def c_function_name(function: object) -> str:
    """``module.Class.method`` of a C function or method (``builtins.list.append``).

    Example:
        >>> c_function_name(len), c_function_name([].append)
        ('builtins.len', 'builtins.list.append')
    """
    qualname = getattr(function, "__qualname__", None) or getattr(function, "__name__", "?")
    owner = getattr(function, "__self__", None)
    module = getattr(function, "__module__", None)
    if module is None and owner is not None:
        cls = owner if isinstance(owner, type) else type(owner)
        module = getattr(cls, "__module__", None)
        if "." not in str(qualname):
            qualname = f"{cls.__qualname__}.{qualname}"
    return f"{module}.{qualname}" if module else str(qualname)


def _new_types() -> dict[str, int]:
    """Tracked objects created since ``gc.freeze()`` and alive, by type name."""
    objs = gc.get_objects()
    try:
        counts: dict[str, int] = {}
        for cls, count in Counter(map(type, objs)).items():
            name = type_name(cls)
            counts[name] = counts.get(name, 0) + count
        # memguard's own bound methods and closures, made while it names the leak.
        own = sum(1 for obj in objs if type(obj) is MethodType and _own(obj.__self__))
        if own:
            counts["method"] -= own
        return counts
    finally:
        del objs


def type_growth(before: dict[str, int], after: dict[str, int], calls: int, *,
                minimum: int = 2) -> tuple[tuple[str, float], ...]:
    """Types whose count grew by at least *minimum* and 0.05 per call, most first."""
    grown = [(name, (count - before.get(name, 0)) / calls) for name, count in after.items()
             if count - before.get(name, 0) >= minimum]
    grown = [(name, per) for name, per in grown if per >= MIN_PER_CALL]
    grown.sort(key=lambda pair: (-pair[1], pair[0]))
    return tuple(grown[:20])


def _own(obj: object) -> bool:
    """Whether *obj* is one of memguard's own objects (never reported as leaked)."""
    module = getattr(type(obj), "__module__", "") or ""
    return module == "memguard" or module.startswith("memguard.")


def user_first(names: list[str]) -> list[str]:
    """*names* with module-qualified (user) type names first, the order kept otherwise."""
    return [n for n in names if "." in n] + [n for n in names if "." not in n]


def describe_one(entries: list[tuple[object, object, str]], type_names: list[str], *,
                 max_seconds: float = 3.0) -> str | None:
    """Describe one item of *entries* (``(item, container, edge)`` of growing containers).

    Module-qualified (user) types first, then the growing types in order,
    then any item; weak references are never chosen (a set of them, such as
    a ``WeakSet``'s, keeps nothing alive). *entries* is emptied.
    """
    strong = [entry for entry in entries if not isinstance(entry[0], weakref.ref)
              and not _own(entry[0])]
    entries.clear()
    wanted = user_first(type_names)
    items = [item for item, _, _ in strong]
    chosen = probe.pick_by_type(items, wanted) if wanted else None
    items.clear()
    found = None  # never test an item's truth: a numpy array has none
    if chosen is not None:
        found = next((entry for entry in strong if entry[0] is chosen), None)
    if found is None and strong:
        found = strong[0]
    strong.clear()
    del chosen
    if found is None:
        return None
    obj, container, edge = found
    del found
    return probe.describe_sample(obj, container, edge, max_seconds=max_seconds)
