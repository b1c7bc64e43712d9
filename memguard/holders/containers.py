"""L2 measurement: containers that grow, their newest items, and a leaked object's holder.

What a leak check uses to name a leak once one is found:

* :func:`container_sizes` and :func:`growing_containers`: the lengths of
  every list, dict, set and deque (tracked by the collector, and the dicts
  of atoms it does not track, found as referents), and which of them grew.
* :func:`new_untracked_items`: untracked objects (``bytes``, ``int``,
  ``bytearray``) among the items a growing container gained.
* :func:`describe_sample`: a leaked object's repr and the chain that holds it.
"""

from __future__ import annotations

import gc
import operator
import sys
from collections import deque
from collections.abc import Iterable
from itertools import compress, filterfalse, repeat

from ..objects import type_name

__all__ = [
    "container_sizes",
    "describe_sample",
    "global_name",
    "growing_containers",
    "new_untracked_items",
    "newest_entry",
    "pick_by_type",
]


_CHUNK = 10_000
_HOLDER_SECONDS = 3.0
#: Types whose instances are shared singletons, never leaked one per call.
_SHARED = (type(None), bool, type(Ellipsis), type(NotImplemented))


def _container_types() -> frozenset[type]:
    import collections

    return frozenset({list, dict, set, deque, collections.OrderedDict, collections.defaultdict,
                      collections.Counter})


_TYPES = _container_types()


def _containers() -> list[object]:
    """Every list, dict, set and deque: tracked ones, and untracked dicts they refer to.

    The work is done by C iterators (``map``, ``compress``, ``filterfalse``):
    on a heap of a million containers a Python loop over them took seconds,
    and longer while tracemalloc traced (an ``int`` per ``id()``).
    """
    objs = gc.get_objects()
    try:
        found = list(compress(objs, map(_TYPES.__contains__, map(type, objs))))
        for start in range(0, len(objs), _CHUNK):
            referents = gc.get_referents(*objs[start:start + _CHUNK])
            dicts = list(compress(referents, map(operator.is_, map(type, referents),
                                                  repeat(dict))))
            found.extend(filterfalse(gc.is_tracked, dicts))
            del referents, dicts
    finally:
        del objs
    return found


def container_sizes() -> dict[int, int]:
    """``id -> len`` of every container (see :func:`growing_containers`); an untracked dict."""
    found = _containers()
    try:
        return dict(zip(map(id, found), map(len, found), strict=True))  # type: ignore[arg-type]
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
    mine = {id(container) for container in own}
    try:
        # A container new since *before* counts from 0 would be wrong (it is
        # a new object, counted by type); unknown ids get an unreachable size.
        growth = list(map(operator.sub, map(len, found),  # type: ignore[arg-type]
                          map(before.get, map(id, found), repeat(1 << 62))))
        grown = [(change, container) for change, container in
                 zip(compress(growth, map((0).__lt__, growth)),
                     compress(found, map((0).__lt__, growth)), strict=True)
                 if id(container) not in mine]
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


def describe_sample(obj: object, container: object = None, edge: str = "", *,
                    max_seconds: float = _HOLDER_SECONDS) -> str:
    """``repr (type), held by <chain>`` for a leaked object; keeps no reference.

    The holder search gets a few seconds: an object in a dict the collector
    does not track is found only after the ordinary search is exhausted, and
    a leak report is worth the wait. When it finds nothing and *container*
    (the growing container *obj* was taken from, holding it by *edge*) is a
    module global or class attribute, that is named instead.
    """
    from . import safe_repr, search_holders

    text = f"{safe_repr(obj)} ({type_name(type(obj))})"
    if container is not None and _shared(obj):
        # A small int or an interned string is held by everyone; its
        # holders say nothing about the leak, the container it went into does.
        name = global_name(container)
        return f"{text}, held by {name or type_name(type(container))}{edge}"
    frame = sys._getframe()
    # This frame and its caller's hold *obj* only to describe it.
    frames = (frame,) if frame.f_back is None else (frame, frame.f_back)
    try:
        search = search_holders(obj, max_seconds=max_seconds, excused_frames=frames)
    except Exception as error:  # a report must not fail for want of a chain
        return f"{text}; holder search failed: {type(error).__name__}: {error}"
    finally:
        del frame, frames
    if search.steps is not None:
        return f"{text}, held by {search.text}"
    name = global_name(container) if container is not None else None
    if name is not None:
        return f"{text}, held by {name}{edge}"
    if container is not None and search.status == "exhausted":
        # The object's own holders led nowhere (too many of them, or too
        # wide a level): the container it was taken from has a chain.
        frame = sys._getframe()
        try:
            held = search_holders(container, max_seconds=max_seconds, excused_frames=(frame,))
        except Exception:  # a report must not fail for want of a chain
            held = None
        finally:
            del frame
        if held is not None and held.steps is not None:
            return f"{text}, held by {held.text}{edge}"
    return f"{text}; {search.text}"


def _shared(obj: object) -> bool:
    """Whether *obj* is one the interpreter shares: a cached small int, an interned string."""
    if type(obj) is int:
        return -5 <= obj <= 256
    if type(obj) is str:
        return sys.intern(obj) is obj
    return isinstance(obj, _SHARED)


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


