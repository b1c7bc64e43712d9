"""L2 measurement: the gc census, live objects counted by type name.

:func:`count_types` counts every object the cyclic garbage collector tracks
(``gc.get_objects()``) and, by default, the objects it does not track
(``str``, ``bytes``, ``int``, ``float``, ``bytearray``, numpy arrays, dicts
and tuples of atoms the collector untracked, ...) held by tracked containers
or by the untracked dicts and tuples among them, level by level, each
object once.

The census leaves out its own bookkeeping: a result is a plain ``dict`` of
``str`` to ``int``, which the collector does not track, so an earlier result
kept to compare against adds nothing but itself (one ``dict``, and only if a
tracked container refers to it) to a later census. Each result has keys of
its own (not shared with memguard's values). memguard's other objects (an earlier
snapshot, its sites, a report) and the data only they hold are left out too
(:func:`_memguards_own`).

The work is done in C: by memguard's extension where it is built (one walk
that makes no Python object per object counted, so a tracemalloc trace
running meanwhile costs it nothing: the issue-19 case), else by the
interpreter's (``gc.get_objects``, ``gc.get_referents``,
``collections.Counter`` over ``map``), where Python code runs once per
distinct type, not once per object. The two paths count alike. Imports the
standard library, and the extension through :mod:`memguard._counter`.
"""

from __future__ import annotations

import gc
import operator
import sys
import tracemalloc
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping
from itertools import compress, filterfalse
from typing import Any

__all__ = ["count_types", "count_types_of", "tracked_count", "type_name"]

# Counter.update asks whether a ``map`` is a Mapping; the first answer fills
# the ABCs' caches (sets of weakrefs), which would show as growth between the
# first census and the second. Ask once here (microseconds).
isinstance(map(type, ()), Mapping)

#: ``sys.getrefcount`` of an untracked object held by one container only, as
#: seen from inside :func:`_count_untracked` (the container, the list of
#: referents, and the call's own argument).
_ONE_HOLDER = 3

#: Referents are fetched this many containers at a time, to bound the
#: temporary list that ``gc.get_referents`` builds on a large heap.
_CHUNK = 20_000


def type_name(cls: type) -> str:
    """The census name of *cls*: bare for builtins, else ``module.qualname``.

    Example:
        >>> import collections
        >>> type_name(collections.OrderedDict), type_name(dict)
        ('collections.OrderedDict', 'dict')
    """
    module = getattr(cls, "__module__", None)
    qualname = getattr(cls, "__qualname__", None) or cls.__name__
    if not isinstance(module, str) or module == "builtins":
        return sys.intern(str(qualname))
    return sys.intern(f"{module}.{qualname}")


def _tally(by_type: Counter[type], items: Iterable[object]) -> None:
    """Add the objects of *items* to *by_type*, by type.

    ``Counter.update`` makes a new ``int`` at each increment past 256, a
    traced allocation per object while tracemalloc runs (a census under a
    trace took six times as long). Traced, the types are numbered with
    existing ``int`` objects, the numbers sorted (no allocation per object),
    and each type's count read off by bisection.
    """
    if not tracemalloc.is_tracing():
        by_type.update(map(type, items))
        return
    types = list(map(type, items))
    distinct = list(set(types))
    number = {cls: index for index, cls in enumerate(distinct)}
    order = sorted(map(number.__getitem__, types))
    del types
    low = 0
    for index, cls in enumerate(distinct):
        high = bisect_right(order, index, low)
        by_type[cls] += high - low
        low = high


def _count_untracked(tracked: list[object], by_type: Counter[type]) -> None:
    """Add the untracked objects reachable from *tracked* to *by_type*, each object once.

    First the untracked direct referents of tracked containers; then, level
    by level, the items of the untracked containers among them: a dict whose
    keys and values are all atoms (``{1: bytearray(512)}``) and a tuple of
    atoms are not tracked by the collector, yet what they hold is alive.
    Untracked containers hold only untracked objects, so there are no cycles
    to guard against.

    Deduplicating by ``id()`` would allocate an ``int`` per object (slow, and
    slower still while tracemalloc traces). Instead, an object whose
    reference count shows a single holder (the container, plus the two
    references this function itself holds while asking) is counted at once;
    only the others are deduplicated by id.
    """
    shared: dict[int, object] = {}
    nested: dict[int, object] = {}
    _count_referents(tracked, by_type, shared, nested)
    level = list(nested.values())
    while level:
        nested = {}
        _count_referents(level, by_type, shared, nested)
        level.clear()
        level = list(nested.values())
    _tally(by_type, shared.values())
    shared.clear()


#: Objects of these types can belong to memguard's own values (their fields).
_DATA = frozenset({str, int, float, bytes, tuple, list, dict, set, frozenset})
_DATA_CONTAINERS = frozenset({tuple, list, dict, set, frozenset})
#: ``sys.getrefcount`` of an object inside :func:`_memguards_own`'s loop,
#: beyond its holders: the ``found`` dict, the loop variable, the call's
#: argument (and, for a tracked object, the list of tracked objects).
_OWN_EXTRA = 3


def _is_memguards(cls: type) -> bool:
    """Whether *cls* is one of memguard's classes (defined at the top of one of its modules)."""
    module = getattr(cls, "__module__", None)
    if not isinstance(module, str) or not (module == "memguard" or module.startswith("memguard.")):
        return False
    # A class whose module only says memguard (one made in a doctest of
    # memguard's, say) is the user's.
    top = str(getattr(cls, "__qualname__", "")).partition(".")[0]
    return getattr(sys.modules.get(module), top, None) is not None


def _memguards_own(tracked: list[object]) -> Counter[type]:
    """Counts by type of memguard's own objects among *tracked* and what they hold.

    memguard's own objects are the instances of its classes (an earlier
    snapshot's sites, a report, a guard) and the data only they hold: their
    tuples, strings and numbers, level by level, an object being memguard's
    when all its holders are (its reference count says how many it has).
    Data shared with the program (a file name its code objects hold too)
    stays the program's. So a census never counts what memguard keeps for
    the user, whatever its size (issue 14: a diff after a snapshot listed
    the first snapshot's 933 sites as growth).
    """
    ours = {cls for cls in set(map(type, tracked)) if _is_memguards(cls)}
    if not ours:
        return Counter()
    level = list(compress(tracked, map(ours.__contains__, map(type, tracked))))
    owned: Counter[type] = Counter(map(type, level))
    seen = set(map(id, level))
    while level:
        referents = gc.get_referents(*level)
        level = []
        holders = Counter(map(id, referents))
        found = {id(obj): obj for obj in referents if type(obj) in _DATA}
        del referents
        for key in list(found):
            if key in seen:
                continue
            obj = found[key]
            # A tracked object is also in *tracked*, the caller's list of them.
            extra = _OWN_EXTRA + 1 if gc.is_tracked(obj) else _OWN_EXTRA
            if sys.getrefcount(obj) - extra == holders[key]:
                seen.add(key)
                owned[type(obj)] += 1
                if type(obj) in _DATA_CONTAINERS:
                    level.append(obj)
            del obj
        found.clear()
    return owned


#: Untracked objects of these types may hold others (their items).
_CONTAINERS = (dict, tuple)


def _count_referents(holders: list[object], by_type: Counter[type], shared: dict[int, object],
                     nested: dict[int, object]) -> None:
    """Count the untracked referents of *holders*; note the untracked containers among them."""
    for start in range(0, len(holders), _CHUNK):
        referents = gc.get_referents(*holders[start:start + _CHUNK])
        untracked = list(filterfalse(gc.is_tracked, referents))
        del referents
        single = list(map(_ONE_HOLDER.__eq__, map(sys.getrefcount, untracked)))
        _tally(by_type, compress(untracked, single))
        several = list(compress(untracked, map(operator.not_, single)))
        shared.update(zip(map(id, several), several, strict=True))
        holding = list(compress(untracked, map(_CONTAINERS.__contains__, map(type, untracked))))
        nested.update(zip(map(id, holding), holding, strict=True))
        del untracked, single, several, holding


def _native_census() -> Any:
    """memguard's extension when it is built and not switched off, else ``None``."""
    from . import _counter

    return None if _counter.unavailable_reason() else _counter._native()


def _census(tracked: list[object], untracked: bool, *,
            native: bool = True) -> Counter[type]:
    """The objects of *tracked* and (if *untracked*) the untracked ones they hold, by type.

    In C where memguard's extension is built (no Python object made per
    object counted, so a trace running meanwhile costs it nothing), else
    in Python; the two walk the heap the same way and give the same counts.
    """
    module = _native_census() if native else None
    if module is not None:
        return Counter(module.census(tracked, untracked))
    by_type: Counter[type] = Counter()
    _tally(by_type, tracked)
    if untracked:
        _count_untracked(tracked, by_type)
    return by_type


def count_types(*, untracked: bool = True, collect: bool = True) -> dict[str, int]:
    """Count live objects by type name.

    Args:
        untracked: Also count objects the collector does not track (``str``,
            ``int``, ``bytes``, ``bytearray``, numpy arrays, ...) held by
            tracked containers, or by untracked dicts and tuples they hold
            (the ``bytearray`` values of a ``dict`` of ints to buffers).
        collect: Run ``gc.collect()`` first, so that garbage in reference
            cycles is not counted as live.

    Returns:
        A ``dict`` from type name to count: builtins
        bare (``"dict"``, ``"str"``), others module-qualified
        (``"collections.OrderedDict"``, ``"app.Session"``).

    Note:
        The count is a snapshot of the whole process, other threads included.
        Earlier results are left out (they are untracked dicts).

    Example:
        >>> class Session:
        ...     pass
        >>> before = count_types()
        >>> sessions = [Session() for _ in range(100)]
        >>> after = count_types()
        >>> after[type_name(Session)] - before.get(type_name(Session), 0)
        100

    .. versionadded:: 0.1.0
    """
    if collect:
        gc.collect()
    return count_types_of(gc.get_objects(), untracked=untracked)


def count_types_of(tracked: list[object], *, untracked: bool = True) -> dict[str, int]:
    """:func:`count_types` of a list made earlier by :func:`gc.get_objects`.

    For ``memguard run``'s agent, which lists the program's objects at its
    end, before memguard is imported (:mod:`memguard.program.child`), and
    counts them after: objects made since are not in the list.

    Example:
        >>> import gc
        >>> listed = gc.get_objects()
        >>> made_after = [object() for _ in range(3)]
        >>> count_types_of(listed)["list"] >= 1
        True
    """
    try:
        by_type = _census(tracked, untracked)
        by_type.subtract(_memguards_own(tracked))
    finally:
        del tracked
    # A dict of str to int stays untracked by the collector (see the module docstring).
    result: dict[str, int] = {}
    for cls, count in by_type.items():
        if count <= 0:
            continue  # a type all of whose objects are memguard's
        # A key of the result's own, not the interned name: a value of
        # memguard's that keeps a census (a snapshot) would otherwise share
        # its names with every result the program keeps, and they would no
        # longer be memguard's alone to leave out.
        name = (type_name(cls) + " ")[:-1]
        result[name] = result.get(name, 0) + count
    by_type.clear()
    return result


def tracked_count(*, collect: bool = False) -> int:
    """How many objects the cyclic garbage collector tracks right now.

    Cheaper than :func:`count_types` (no names, no referents): a leak check
    reads it after every call.

    Example:
        >>> tracked_count() > 0
        True
    """
    if collect:
        gc.collect()
    return len(gc.get_objects())
