"""The second generation's scenarios (issue 15): caches that fill, rare leaks, costly calls.

Bounded caches of 128 to 4,096 entries filled one key per call must be
judged clean with the defaults; leaks on one call in 10 to 1,000 must be
caught and named; a function that makes 20,000 small tuples per call, and
one that takes 5 ms per call, must be judged in reasonable time; one
object gc does not track kept per call, and a list of cached small ints
growing by 8 bytes per call, are leaks.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from typing import Any

from .base import Scenario


# -- bounded caches filled one key per call -------------------------------------------------------
def _lru(size: int) -> tuple[Callable[[], None], Callable[[], None]]:
    counter = [0]

    @functools.lru_cache(maxsize=size)
    def render(n: int) -> str:
        return f"<li>item {n}</li>"

    def fill() -> None:
        counter[0] += 1
        render(counter[0])

    def reset() -> None:
        render.cache_clear()
        counter[0] = 0

    fill.__qualname__ = f"lru_cache_{size}"
    return fill, reset


def _evicting(size: int) -> tuple[Callable[[], None], Callable[[], None]]:
    table: dict[int, bytes] = {}
    counter = [0]

    def fill() -> None:
        counter[0] += 1
        table[counter[0]] = b"row %d" % counter[0]
        if len(table) > size:
            del table[next(iter(table))]  # the oldest key

    def reset() -> None:
        table.clear()
        counter[0] = 0

    fill.__qualname__ = f"dict_evicting_{size}"
    return fill, reset


_patterns = [0]


def compile_unique_pattern() -> None:
    """``re`` keeps the last 512 compiled patterns (``re._MAXCACHE``)."""
    _patterns[0] += 1
    re.compile(f"user-{_patterns[0]}-[a-z]+")


def _reset_patterns() -> None:
    re.purge()
    _patterns[0] = 0


# -- the 20,000-tuple fragmentation pattern -------------------------------------------------------
_LAST: list[Any] = []


def many_tuples_keep_200() -> None:
    made = [(i, i + 1) for i in range(20_000)]
    _LAST[:] = made[:200]


# -- 5 ms per call -------------------------------------------------------------------------------
def five_ms() -> None:
    deadline = time.perf_counter() + 0.005
    while time.perf_counter() < deadline:
        pass


# -- rare leaks ----------------------------------------------------------------------------------
class PendingRequest:
    """What a rarely taken error path keeps."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.body = bytearray(64)


RARE_KEPT: list[PendingRequest] = []


def _rare(every: int) -> Callable[[], None]:
    counter = [0]

    def call() -> None:
        counter[0] += 1
        if counter[0] % every == 0:
            RARE_KEPT.append(PendingRequest(counter[0]))

    call.__qualname__ = f"leak_one_call_in_{every}"
    return call


# -- one untracked object per call, and small ints --------------------------------------------
KEPT_OBJECTS: list[object] = []


def keep_plain_object() -> None:
    KEPT_OBJECTS.append(object())


SMALL_INTS: list[int] = []


def keep_small_int() -> None:
    SMALL_INTS.append(7)


SIZES = (128, 512, 1024, 4096)

CLEAN_SECOND: tuple[Scenario, ...] = (
    *(Scenario(f"lru_filled_{n}", f"lru_cache(maxsize={n}) filled one key per call", False,
               run, reset=reset) for n, (run, reset) in ((n, _lru(n)) for n in SIZES)),
    *(Scenario(f"dict_evicting_{n}", f"dict of {n} keys, oldest evicted", False,
               run, reset=reset) for n, (run, reset) in ((n, _evicting(n)) for n in SIZES)),
    Scenario("re_compile_unique", "re.compile of unique patterns (re keeps 512)", False,
             compile_unique_pattern, reset=_reset_patterns),
    Scenario("tuples_20000_keep_200", "20,000 small tuples per call, 200 kept in place", False,
             many_tuples_keep_200, reset=_LAST.clear),
    Scenario("five_ms_per_call", "a call that takes 5 ms", False, five_ms),
)

LEAKY_SECOND: tuple[Scenario, ...] = (
    *(Scenario(f"rare_1_in_{n}", f"leak on one call in {n}", True, _rare(n), "RARE_KEPT",
               RARE_KEPT.clear, "python") for n in (10, 100, 500, 1000)),
    Scenario("untracked_object", "object() kept per call (16 B + slot)", True,
             keep_plain_object, "KEPT_OBJECTS", KEPT_OBJECTS.clear, "python"),
    Scenario("small_ints_list", "a list of cached small ints (8 B per call)", True,
             keep_small_int, "SMALL_INTS", SMALL_INTS.clear, "rss"),
)
