"""L5 guards: naming a leak once it is found — growing sites, types and a holder.

After a repeated check finds a leak, a few more calls are made while
:class:`Naming` watches: the live traces, the sizes of every container and
the objects created (the heap is frozen first, so the collector shows only
new objects). What grew over those calls is what the leak is made of, in the
steady state: a cache that filled during the measured calls is not named.
"""

from __future__ import annotations

import gc
import weakref
from collections import Counter

from .. import _tracing
from ..objects import count_types, type_name
from ..values.site import AllocationSite
from . import _leak_probe as probe

__all__ = ["MIN_PER_CALL", "Naming", "describe_one", "type_growth", "user_first"]

#: The smallest growth per call of a type that is named.
MIN_PER_CALL = 0.05


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
        self.traces: probe.TraceSummary = ({}, {}, {})
        self.sizes: dict[int, int] = {}
        self.sites: tuple[AllocationSite, ...] = ()
        self.types: tuple[tuple[str, float], ...] = ()
        self.sample: str | None = None

    def clear(self) -> None:
        self.census, self.halfway, self.sizes = {}, {}, {}
        self.traces = ({}, {}, {})
        if self.frozen:
            gc.unfreeze()
            self.frozen = False

    def begin(self) -> None:
        self.started = True
        with _tracing.excluded():
            gc.collect()
            self.sizes = probe.container_sizes()
            self.traces = probe.summarize_traces()
            if gc.get_freeze_count() == 0:
                gc.freeze()
                self.frozen = True
            else:
                self.census = count_types(collect=False)

    def half(self) -> None:
        if self.frozen:
            with _tracing.excluded():
                self.halfway = _new_types()

    def end(self, calls: int) -> None:
        with _tracing.excluded():
            gc.collect()
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
            grown = probe.growing_containers(self.sizes, (self.census, self.halfway, final,
                                                          self.sizes, *self.traces))
            for name, count in probe.new_untracked_items(grown).items():
                final[name] = final.get(name, 0) + count
                steady.add(name)
            self.types = tuple((name, per) for name, per in type_growth({}, final, calls)
                               if name in steady)
            self.sites = probe.site_growth(self.traces, probe.summarize_traces(), calls, 20)
            entries = [(entry[0], container, entry[1]) for _, container in grown[:50]
                       if (entry := probe.newest_entry(container)) is not None]
            del grown
            self.sample = describe_one(entries, [name for name, _ in self.types])
            self.clear()


def _new_types() -> dict[str, int]:
    """Tracked objects created since ``gc.freeze()`` and alive, by type name."""
    objs = gc.get_objects()
    try:
        counts: dict[str, int] = {}
        for cls, count in Counter(map(type, objs)).items():
            name = type_name(cls)
            counts[name] = counts.get(name, 0) + count
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


def user_first(names: list[str]) -> list[str]:
    return [n for n in names if "." in n] + [n for n in names if "." not in n]


def describe_one(entries: list[tuple[object, object, str]], type_names: list[str]) -> str | None:
    """Describe one item of *entries* (``(item, container, edge)`` of growing containers).

    Module-qualified (user) types first, then the growing types in order,
    then any item; weak references are never chosen (a set of them, such as
    a ``WeakSet``'s, keeps nothing alive). *entries* is emptied.
    """
    strong = [entry for entry in entries if not isinstance(entry[0], weakref.ref)]
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
    return probe.describe_sample(obj, container, edge)
