"""memguard checks itself: many uses of each guard leak nothing, and what tracing and a census cost.

Each public guard is used many times inside a function that memguard's own
leak check (``track_leaks(...).check``, adaptive: 40 calls, more while a
signal still grows) calls over and over; the verdict must be "no growth" on
the Python heap and the object count. The uses per call are chosen so that
the check makes at least a thousand uses in all where that is cheap.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable

import pytest

import memguard
from memguard import objects
from tests.reliability._ledger import tried


class Session:
    """A weak-referenceable object for watch()."""


def _limit() -> None:
    with memguard.limit(mb=50):
        bytearray(1000)


def _track_leaks_block() -> None:
    # Single-run mode without the objects census (a census per use would
    # dominate: the outer check has frozen the heap, see the concurrency page).
    with memguard.track_leaks(signals=["python", "fds", "threads"]):
        bytearray(1000)


def _watch() -> None:
    with memguard.watch() as watched:
        watched.add(Session())
    memguard.expect_collected(Session())


def _record() -> None:
    with memguard.record(interval=0.05, rss=False):
        bytearray(1000)


def _snapshot_diff() -> None:
    memguard.diff(memguard.snapshot(census=False), memguard.snapshot(census=False))


def _fill() -> None:
    block = bytearray(1000)
    del block


def _profile_lines() -> None:
    memguard.profile_lines(_fill)


#: Uses of each guard per call of the checked function. The check makes 45
#: calls (5 warm-up, 40 measured). ``limit`` gets 25 per call (over a thousand uses, about 5 s); the
#: others cost more per use inside a leak check (measured: track_leaks block
#: 9 ms, watch + expect_collected 3-15 ms, record 130 ms as its sampler thread
#: starts and stops, snapshot + diff 20 ms and growing with the traces,
#: profile_lines 7 ms), so they get fewer to keep the suite fast; the docs
#: page shows each total.
GUARDS: dict[str, tuple[Callable[[], None], int]] = {
    "limit": (_limit, 25),
    "track_leaks (with block)": (_track_leaks_block, 8),
    "watch + expect_collected": (_watch, 4),
    "record": (_record, 1),
    "snapshot + diff": (_snapshot_diff, 1),
    "profile_lines": (_profile_lines, 4),
}



# snapshot + diff and record once grew ~100 traced bytes per use: each read
# /proc/self/status as text, and io's decoder churn left blocks behind; the
# reads are bytes now (memguard/process.py), and these are ordinary tests.
@pytest.mark.parametrize("name", list(GUARDS))
def test_many_uses_of_each_guard_leave_no_growth(name: str) -> None:
    """memguard's own leak check over many uses of one guard finds no growth (python, objects)."""
    use, per_call = GUARDS[name]
    uses = 0

    def batch() -> None:
        nonlocal uses
        for _ in range(per_call):
            use()
        uses += per_call

    started = time.perf_counter()
    # A fixed number of calls: the check's own sizing by time would make fewer
    # on a loaded machine, and the point is many uses.
    report = memguard.track_leaks(signals=["python", "objects"], repeat=40).check(batch)
    elapsed = time.perf_counter() - started
    tried(uses)
    print(f"\n{name}: {uses} uses in {elapsed:.2f} s, {report.iterations} measured calls: "
          f"{report}")
    assert not report.leaked
    assert uses >= 45 * per_call


#: Measured upper bounds (with margin) of memguard's own memory; see the tests.
LIMIT_OVERHEAD_BYTES = 16 * 1024
CENSUS_PEAK_PER_OBJECT = 64.0


def test_limit_adds_little_beyond_the_blocks_own_allocations() -> None:
    """``limit``'s traced overhead: its peak minus the block's 1 MB, over 200 blocks.

    The figure is what the guard itself allocates while its window is open
    (the window record, the report), read from tracemalloc's peak around the
    block by an outer trace. Measured at most 5.6 KiB; bounded here by 16 KiB.
    """
    tracemalloc.start()
    try:
        worst = 0
        for _ in range(200):
            tracemalloc.reset_peak()
            start = tracemalloc.get_traced_memory()[0]
            with memguard.limit(mb=50):
                block = bytearray(1_000_000)
                del block
            peak = tracemalloc.get_traced_memory()[1] - start
            worst = max(worst, peak - 1_000_000)
    finally:
        tracemalloc.stop()
    tried(200)
    print(f"\nlimit overhead: at most {worst:,} bytes traced beyond the block's own 1 MB")
    assert 0 < worst < LIMIT_OVERHEAD_BYTES


def test_census_peak_memory_on_a_heap_of_100k_objects() -> None:
    """``count_types`` peak traced memory with 100,000 extra objects alive.

    The census walks the gc-tracked objects and their direct referents; its
    peak is the list of tracked objects gc hands back (8 bytes a slot) plus
    the per-type counters and the referent pass. Measured 38 bytes per
    tracked object (5.5 MB for 143,000 objects in a pytest process);
    bounded here by 64 bytes per object.
    """
    heap = [[i] for i in range(100_000)]
    gc.collect()
    live = len(gc.get_objects())
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        counts = objects.count_types(collect=False)
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    tried()
    assert counts["list"] >= 100_000
    print(f"\ncensus: peak {peak:,} bytes for {live:,} tracked objects "
          f"({peak / live:.1f} bytes per object)")
    assert peak < CENSUS_PEAK_PER_OBJECT * live
    del heap
