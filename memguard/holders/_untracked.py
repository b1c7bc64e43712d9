"""L2 measurement: holders gc does not track, for :mod:`memguard.holders`.

gc does not track a dict or tuple that holds only atomic values (``str``,
``bytes``, numbers), so :func:`gc.get_referrers` cannot see a cache of
strings. When the object looked for is itself untracked and the search
through gc found no root, such containers are looked for here: first among
module globals and what they hold (:func:`namespace_holders`, cheap), then
among the referents of every object (:func:`untracked_holders`, one pass over
the heap).

Both often run while tracemalloc traces (a leak check describing its
sample), where every allocation is traced and slow: they allocate a handful
of lists, never an object per item (no ``id()``, no counters, no generators).
"""

from __future__ import annotations

import gc
import sys
import time
import types

__all__ = ["namespace_holders", "untracked_holders"]

_CHUNK = 100
_SCAN_CHUNK = 10_000
# Values that hold nothing, skipped without a call while looking for caches.
_SKIPPED = frozenset({int, float, complex, bool, str, bytes, type(None), types.ModuleType})


def namespace_holders(target: object, deadline: float) -> list[object]:
    """Untracked dicts and tuples holding *target* that are module globals, or
    one or two references away from one (a class's or an instance's
    attribute, a function's default): the usual caches, found without a
    pass over the whole heap.

    It works level by level with :func:`gc.get_referents` over many
    objects at once, so it allocates a handful of lists: it often runs
    while tracemalloc traces (a leak check's sample), where every traced
    allocation is slow.
    """
    modules: list[object] = list(sys.modules.values())  # not all are modules
    level = gc.get_referents(*[m.__dict__ for m in modules if isinstance(m, types.ModuleType)])
    candidates: list[object] = []
    for depth in range(3):
        following: list[object] = []
        # No id(), no counters: under tracemalloc each new int is a traced allocation.
        for value in level:
            kind = type(value)
            if kind in _SKIPPED:
                continue
            if kind is dict or kind is tuple:
                if not gc.is_tracked(value):
                    candidates.append(value)
                elif not (kind is dict and "__builtins__" in value):  # not a module's globals
                    following.append(value)
            elif depth == 0:
                following.append(value)  # globals, then the dicts and tuples they hold
        level = gc.get_referents(*following) if depth < 2 else []
        del following
        if time.perf_counter() > deadline:
            break
    del level, modules
    holders: list[object] = []
    _holding(candidates, target, holders)
    del candidates
    return holders


def untracked_holders(target: object, deadline: float) -> list[object]:
    """Untracked dicts and tuples that hold *target*: one pass over all referents."""
    holders: list[object] = []
    everything = gc.get_objects()
    try:
        for start in range(0, len(everything), _SCAN_CHUNK):
            if time.perf_counter() > deadline:
                break
            referents = gc.get_referents(*everything[start:start + _SCAN_CHUNK])
            candidates = [r for r in referents
                          if type(r) in (dict, tuple) and not gc.is_tracked(r)]
            del referents
            _holding(candidates, target, holders)
            del candidates
    finally:
        del everything
    return holders


def _holding(candidates: list[object], target: object, holders: list[object]) -> None:
    """Add to *holders* the *candidates* (dicts, tuples) that hold *target*.

    Candidates are asked in chunks with one :func:`gc.get_referents` each,
    so that few objects are allocated (see :func:`namespace_holders`).
    """
    for start in range(0, len(candidates), _CHUNK):
        chunk = candidates[start:start + _CHUNK]
        if _any_is(gc.get_referents(*chunk), target):
            holders.extend(c for c in chunk if _contains(c, target)
                           and not _any_is(holders, c))


def _any_is(values: list[object], target: object) -> bool:
    """Whether *target* itself is in *values* (no ``==``, no allocation)."""
    for value in values:  # noqa: SIM110 - any() would allocate a generator
        if value is target:
            return True
    return False


def _contains(container: object, target: object) -> bool:
    """Whether *container* (a dict or tuple) holds *target*; allocates nothing."""
    if isinstance(container, tuple):
        for item in container:  # noqa: SIM110 - any() would allocate a generator per call
            if item is target:
                return True
        return False
    if isinstance(container, dict):
        try:
            for key, value in container.items():
                if value is target or key is target:
                    return True
        except RuntimeError:  # resized by another thread: not a holder we can name
            return False
    return False
