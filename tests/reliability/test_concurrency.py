"""Every guard from 8 threads at once and from many asyncio tasks.

The measurements memguard reads are process-wide (tracemalloc's traces and
peak, gc's generations, the RSS, descriptors and threads), so guards in
several threads share them. These tests pin down what that means: no crash,
no corrupted global state, and tracemalloc, gc (enabled state and
``gc.freeze`` count), sys.gettrace and the thread count back to what they
were once every block has ended.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator

import pytest

import memguard
from memguard import LeakDetected, LeakReport, _tracing
from tests import helpers
from tests.reliability._ledger import tried

THREADS = 8
ROUNDS = 1
#: What one thread's guard block allocates, and what the others can free meanwhile
#: (their blocks' allocations plus slack): a block's process-wide figure is at
#: least the first minus the second.
OWN = 2_000_000
OTHERS_FREE = (THREADS - 1) * 300_000
TASKS = 40


class Session:
    """A small weak-referenceable object for watch()."""


@pytest.fixture
def global_state() -> Iterator[None]:
    """Assert tracemalloc, gc, the freeze count, the tracer and the threads come back."""
    before = (tracemalloc.is_tracing(), gc.isenabled(), gc.get_freeze_count(), sys.gettrace())
    threads = helpers.threads_now()
    yield
    after = (tracemalloc.is_tracing(), gc.isenabled(), gc.get_freeze_count(), sys.gettrace())
    assert after == before
    assert helpers.threads_left_behind(threads) == []
    assert _tracing.open_windows() == 0


def _join(threads: list[threading.Thread], seconds: float = 600.0) -> None:
    """Join every thread within one shared deadline; a thread still alive is a hang.

    The deadline is a guard against a hang, far beyond what the work takes on
    a busy machine (seconds), not a figure under test."""
    deadline = time.monotonic() + seconds
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    assert not [t.name for t in threads if t.is_alive()], "threads still running: a hang"


def _every_guard(index: int) -> dict[str, object]:
    """One use of every public guard; returns what each measured."""
    seen: dict[str, object] = {}
    with memguard.limit(mb=500) as guard:
        block = bytearray(OWN)
        del block
    seen["limit"] = guard.peak_above_start_bytes
    with memguard.track_leaks(fail=False, signals=["python", "fds", "threads"]) as leaks:
        kept = [object() for _ in range(3)]
        del kept
    seen["track_leaks"] = leaks.report
    report = memguard.track_leaks(repeat=5, warmup=1, fail=False, signals=["python"]).check(
        lambda: bytes(100))
    seen["check_leaks"] = report
    with memguard.record(rss=False) as recording:
        block = bytearray(OWN)
        del block
    seen["record"] = recording.traced_peak_above_start_bytes
    first = memguard.snapshot(census=False)
    second = memguard.snapshot(census=False)
    seen["diff"] = memguard.diff(first, second)
    with memguard.watch() as watched:
        session = watched.add(Session())
        del session
    seen["watch"] = watched.report
    seen["expect_collected"] = memguard.expect_collected(Session())
    return seen


def test_every_guard_from_eight_threads_at_once(global_state: None) -> None:
    """8 threads run limit, track_leaks (with and repeated), record, snapshot+diff and watch.

    Semantics: the figures of ``limit`` and ``record`` are process-wide: the
    traced peak above the level at the block's start, so other threads'
    allocations at the same moment add to it and their frees of memory
    allocated before the block subtract from it (a block of 2 MB reads at
    least 2 MB less what the 7 others can free meanwhile). Leak checks are
    process-wide too, so an allocation another thread keeps meanwhile can
    be reported as the checked code's (they run with ``fail=False`` here:
    the verdict is noise, the state is not). ``watch`` and
    ``expect_collected`` judge only their own objects and pass. Tracing is
    started by the first block and stopped by the last. Cost: while one
    leak check has frozen the heap, an overlapping one falls back to a full
    object census, serialized with the others' under the GIL (seconds per
    block with 8 threads on a test suite's heap), so the leak checks here
    leave the objects signal out.
    """
    barrier = threading.Barrier(THREADS)
    results: dict[int, list[dict[str, object]]] = {}
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = [_every_guard(index) for _ in range(ROUNDS)]
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,), name=f"rel-{i}") for i in range(THREADS)]
    for thread in threads:
        thread.start()
    _join(threads)
    tried(THREADS * ROUNDS * 7)
    assert errors == []
    assert sorted(results) == list(range(THREADS))
    for rounds in results.values():
        for seen in rounds:
            assert isinstance(seen["limit"], int)
            assert seen["limit"] >= OWN - OTHERS_FREE
            assert isinstance(seen["record"], int)
            assert seen["record"] >= OWN - OTHERS_FREE
            assert seen["watch"].collected == 1  # type: ignore[attr-defined]
            assert seen["expect_collected"].leaked is False  # type: ignore[attr-defined]
            # The leak checks' verdicts are noise here (see above); what they
            # measured is not: one run of the block, five calls of the function.
            single = seen["track_leaks"]
            assert isinstance(single, LeakReport)
            assert (single.mode, single.iterations) == ("single", 1)
            assert [s.name for s in single.signals] == ["python", "fds", "threads"]
            repeated = seen["check_leaks"]
            assert isinstance(repeated, LeakReport)
            assert (repeated.mode, repeated.iterations, repeated.warmup) == ("repeated", 5, 1)
            # The "python" group's series, as documented (docs/guide/leaks.md):
            # the allocator's blocks always, and the traced bytes when
            # tracemalloc traces as the check begins, which here depends on
            # whether another thread's record() or track_leaks block is open.
            names = [s.name for s in repeated.signals]
            assert names in (["python", "blocks"], ["blocks"])
            for name in names:  # the level before, then one a call
                assert len(repeated.series[name]) == 6
            difference = seen["diff"]
            assert isinstance(difference, memguard.SnapshotDiff)
            assert difference.by == "lineno"
            assert difference.elapsed_seconds >= 0
            assert difference.types is None  # census=False on both sides, and it says so
            assert difference.reason("types") is not None


def test_guards_in_many_asyncio_tasks(global_state: None) -> None:
    """40 asyncio tasks interleave limit and record blocks (and 5 track_leaks) across awaits.

    Semantics: blocks that span an ``await`` overlap with the other tasks'
    blocks; each sees at least its own allocation (tasks of one thread free
    nothing while another runs, unlike threads), and nothing is left open
    when the loop ends.
    """

    async def task(n: int) -> tuple[int, int]:
        with memguard.limit(mb=200) as guard, memguard.record(interval=0.005,
                                                              rss=False) as recording:
            data = bytearray(20_000 * (n + 1))
            await asyncio.sleep(0.001)
            if n % 8 == 0:  # each overlapping single-run check costs a full census
                with memguard.track_leaks(fail=False):
                    await asyncio.sleep(0)
            del data
        return guard.peak_above_start_bytes, recording.traced_peak_above_start_bytes

    async def main() -> list[tuple[int, int]]:
        return await asyncio.gather(*(task(n) for n in range(TASKS)))

    results = asyncio.run(main())
    tried(TASKS * 2 + TASKS // 8)
    for n, (peak, recorded) in enumerate(results):
        assert peak >= 20_000 * (n + 1)
        assert recorded >= 20_000 * (n + 1)


def test_leak_checks_in_threads_keep_a_callers_gc_freeze(global_state: None) -> None:
    """With objects frozen by the caller (``gc.freeze()``), 8 threads' leak checks keep them frozen.

    Semantics: memguard freezes the heap for a leak check only when nothing
    is frozen yet, and unfreezes only what it froze; a caller's frozen
    generation (as in pre-fork servers) is never thawed. With a frozen heap
    the objects signal is a full census per reading, so it is used here in
    the single-run check only.
    """
    keep = [object() for _ in range(1000)]
    gc.freeze()
    frozen = gc.get_freeze_count()
    try:
        errors: list[BaseException] = []

        def work() -> None:
            try:
                memguard.track_leaks(repeat=3, warmup=1, fail=False,
                                     signals=["python"]).check(lambda: None)
                with memguard.track_leaks(fail=False, signals=["objects"]):
                    pass
            except BaseException as error:  # pragma: no cover - reported below
                errors.append(error)

        threads = [threading.Thread(target=work) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        _join(threads)
        tried(THREADS * 2)
        assert errors == []
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
    del keep


def test_a_leak_in_one_thread_is_found_while_others_work(global_state: None) -> None:
    """A function leaking 64 KiB a call is found while 7 threads allocate and free under limit().

    Semantics: a leak check's signals are process-wide, so the other
    threads' steady work (allocations freed again) is noise the verdict
    method absorbs. Several leak checks at once disturb each other more
    (each one's bookkeeping shows in the others' signals; in 1 of 10 trial
    runs a 64 KiB leak checked beside 7 other checks was missed): run one
    check at a time for a verdict you rely on.
    """
    cache: list[bytes] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            while not stop.is_set():
                with memguard.limit(mb=100):
                    block = bytearray(4096)
                    del block
                time.sleep(0.0005)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(THREADS - 1)]
    for thread in threads:
        thread.start()
    try:
        # "native" as well as "python": untraced, the python group screens
        # the allocator's count of blocks, where a 64 KiB leak is one block a
        # call, and the other threads' limits move that count by dozens of
        # blocks (their own objects, and the spares memguard frees to keep
        # the collector's count, issue 21): at 40 calls it was missed in 2 of
        # 6 runs. malloc's bytes see 64 KiB a call, above that noise.
        report = memguard.track_leaks(repeat=40, warmup=2, fail=False,
                                      signals=["python", "native"]).check(
            lambda: cache.append(bytes(65536)))
    finally:
        stop.set()
        _join(threads)
    tried(THREADS)
    cache.clear()
    assert errors == []
    assert report.leaked is True


def test_leak_detected_in_a_thread_is_that_threads_exception(global_state: None) -> None:
    """A LeakDetected raised in a worker thread stays in that thread; the others finish."""
    leaks: list[BaseException] = []
    done: list[int] = []
    cache: list[bytes] = []

    def leaky() -> None:
        try:
            memguard.track_leaks(repeat=20, warmup=1, signals=["python"]).check(
                lambda: cache.append(bytes(8192)))
        except LeakDetected as error:
            leaks.append(error)

    def clean(index: int) -> None:
        with memguard.limit(mb=100):
            bytes(1000)
        done.append(index)

    threads = [threading.Thread(target=leaky)]
    threads += [threading.Thread(target=clean, args=(i,)) for i in range(THREADS - 1)]
    for thread in threads:
        thread.start()
    _join(threads)
    tried(THREADS)
    cache.clear()
    assert len(leaks) == 1
    assert sorted(done) == list(range(THREADS - 1))
