"""@profile and profile_lines on real allocations of known size per line."""

from __future__ import annotations

import asyncio
import io
import sys
import threading
import tracemalloc
from types import FrameType
from typing import Any

import pytest

import memguard
from memguard import LineProfile
from memguard.lines import profile, profile_lines
from memguard.values.lineprofile import UNATTRIBUTED_FLOOR

# Every test here runs with the native counter and without it (the fallback).
pytestmark = pytest.mark.usefixtures("measure")


def size_of(n: int) -> int:
    """Traced bytes of a bytearray(n): its object and its buffer."""
    return sys.getsizeof(bytearray(n))


def first_line(fn: Any) -> int:
    return int(fn.__code__.co_firstlineno)


def known_sizes() -> tuple[bytearray, list[None]]:
    a = bytearray(100_000)
    b = bytearray(200_000)
    c = [None] * 10_000
    x = 1  # noqa: F841
    del a
    t = bytearray(300_000); del t  # noqa: E702
    return b, c


def test_each_line_gets_exactly_what_it_allocated() -> None:
    result = profile_lines(known_sizes)
    base = first_line(known_sizes)
    row = {r.lineno - base: r for r in result.rows}
    assert result.function == "known_sizes"
    assert result.calls == 1
    assert row[1].allocated_bytes == size_of(100_000)
    assert row[2].allocated_bytes == size_of(200_000)
    assert 80_000 <= row[3].allocated_bytes <= 80_000 + 72  # a list object may be recycled
    assert row[4].allocated_bytes == 0
    assert row[5].allocated_bytes == 0
    # A temporary freed within its line still counts as allocated there.
    assert row[6].allocated_bytes == size_of(300_000)
    assert row[7].allocated_bytes <= sys.getsizeof((1, 2)) + 16  # the returned tuple, if new
    assert [row[i].hits for i in range(1, 8)] == [1] * 7
    # The def line runs only the frame's set-up: what tracing costs is not shown there.
    assert (row[0].hits, row[0].allocated_bytes, row[0].retained_bytes) == (0, 0, 0)


def test_retained_is_what_is_still_alive_at_return() -> None:
    result = profile_lines(known_sizes)
    base = first_line(known_sizes)
    row = {r.lineno - base: r for r in result.rows}
    assert row[1].retained_bytes == 0  # deleted on line 5
    assert row[2].retained_bytes == size_of(200_000)
    assert row[3].retained_bytes == row[3].allocated_bytes
    assert row[6].retained_bytes == 0
    assert result.retained_bytes == size_of(200_000) + row[3].retained_bytes
    # The counters agree, within what the tracer's own bookkeeping moves.
    assert abs(result.unattributed_bytes) < UNATTRIBUTED_FLOOR
    assert "could not be traced back" not in result.table()


def test_peak_shares_add_up_to_the_peak() -> None:
    result = profile_lines(known_sizes)
    base = first_line(known_sizes)
    row = {r.lineno - base: r for r in result.rows}
    # The peak is inside line 6: a, b and c are gone or alive as the lines left them.
    assert row[1].peak_share_bytes == size_of(100_000)
    assert row[5].peak_share_bytes == -size_of(100_000)  # `del a` freed it
    assert row[6].peak_share_bytes == size_of(300_000)
    assert sum(r.peak_share_bytes for r in result.rows) == result.peak_bytes
    expected = size_of(200_000) + row[3].allocated_bytes + size_of(300_000)
    assert result.peak_bytes == expected


def loop_of_lists(n: int) -> list[list[int]]:
    out = []
    for _ in range(n):
        out.append([0] * 100)
    return out


def test_loops_sum_hits_and_bytes() -> None:
    result = profile_lines(loop_of_lists, 50)
    base = first_line(loop_of_lists)
    append = result.row(base + 3)
    assert append.hits == 50
    assert result.row(base + 2).hits == 51
    # 50 lists of 100 slots, plus the growth of `out` (never more than 1 KiB here).
    assert 50 * 800 <= append.allocated_bytes <= 50 * (800 + 72) + 1024
    assert append.retained_bytes >= 50 * 800


def helper_block(n: int) -> bytearray:
    return bytearray(n)


def calls_helper() -> bytearray:
    kept = helper_block(40_000)
    helper_block(60_000)
    return kept


def test_calls_roll_up_into_the_calling_line() -> None:
    deep = profile(show=False, nframes=4)(calls_helper)
    deep()  # the first traced run builds CPython's line tables
    deep()
    result = deep.last_profile
    base = first_line(calls_helper)
    # While tracing, CPython gives every running call a frame object (~170 B),
    # so a line that calls a Python function may show that much more.
    for line, size in ((1, size_of(40_000)), (2, size_of(60_000))):
        assert size <= result.row(base + line).allocated_bytes <= size + 256
    assert result.row(base + 1).peak_share_bytes == size_of(40_000)
    # With 4 frames per trace, retained memory allocated in the callee is
    # traced back to the calling line.
    assert result.row(base + 1).retained_bytes == size_of(40_000)
    assert result.row(base + 2).retained_bytes == 0
    assert abs(result.unattributed_bytes) < UNATTRIBUTED_FLOOR
    assert result.callees == ()


def test_with_one_frame_callee_memory_is_reported_unattributed(measure: str) -> None:
    result = profile_lines(calls_helper)
    kept = result.row(first_line(calls_helper) + 1)
    if measure == "counter":
        # Line tags follow the calls however deep: the callee's block is the
        # calling line's, with no traceback at all.
        assert (result.method, result.nframes) == ("counter", 0)
        assert kept.retained_bytes == size_of(40_000)
        assert abs(result.unattributed_bytes) < UNATTRIBUTED_FLOOR
        assert "memguard's allocation counter" in result._repr_markdown_()
        return
    assert (result.method, result.nframes) == ("tracemalloc", 1)
    assert kept.retained_bytes == 0
    assert abs(result.unattributed_bytes - size_of(40_000)) < UNATTRIBUTED_FLOOR
    assert "could not be traced back to a line" in result.table()


def test_expand_lists_the_callees_own_lines() -> None:
    decorated = profile(expand=1, show=False)(calls_helper)
    decorated()
    decorated()
    result = decorated.last_profile
    assert isinstance(result, LineProfile)
    (callee,) = result.callees
    assert callee.function == "helper_block"
    assert callee.calls == 2
    line = callee.row(first_line(helper_block) + 1)
    assert line.hits == 2
    assert line.allocated_bytes == size_of(40_000) + size_of(60_000)
    assert line.retained_bytes == size_of(40_000)
    # Exclusive figures: the calling lines no longer hold the callee's bytes.
    assert result.row(first_line(calls_helper) + 1).allocated_bytes < 1024
    assert "expanded callees" in result.table()


def build_recursively(n: int) -> list[bytearray]:
    if n == 0:
        return []
    out = build_recursively(n - 1)
    out.append(bytearray(10_000))
    return out


def test_recursion_is_counted_once() -> None:
    decorated = profile(show=False)(build_recursively)
    assert len(decorated(5)) == 5
    result = decorated.last_profile
    base = first_line(build_recursively)
    assert result.calls == 1
    assert result.row(base + 1).hits == 6
    append = result.row(base + 4)
    assert append.hits == 5
    assert 5 * size_of(10_000) <= append.allocated_bytes <= 5 * size_of(10_000) + 256
    assert append.retained_bytes >= 5 * size_of(10_000)
    assert result.peak_bytes < 5 * size_of(10_000) + 4096


def blocks(n: int) -> Any:
    for _ in range(n):
        block = bytearray(20_000)
        yield len(block)


def test_generators_are_traced_while_running_only() -> None:
    decorated = profile(show=False)(blocks)
    consumer = []
    for size in decorated(3):
        consumer.append(bytearray(500_000))  # the consumer's memory is not the generator's
        assert size == 20_000
    result = decorated.last_profile
    base = first_line(blocks)
    assert result.row(base + 2).hits == 3
    assert result.row(base + 2).allocated_bytes == 3 * size_of(20_000)
    assert result.allocated_bytes < 3 * size_of(20_000) + 1024
    # The previous block is freed only once the next one exists.
    assert result.peak_bytes >= 2 * size_of(20_000)
    assert result.peak_bytes < 2 * size_of(20_000) + 1024


async def two_blocks() -> int:
    first = bytearray(30_000)
    await asyncio.sleep(0)
    second = bytearray(40_000)
    return len(first) + len(second)


def test_async_functions() -> None:
    decorated = profile(show=False)(two_blocks)

    async def main() -> list[int]:
        noise = [bytearray(100_000) for _ in range(3)]
        result = await asyncio.gather(decorated(), decorated())
        del noise
        return list(result)

    assert asyncio.run(main()) == [70_000, 70_000]
    result = decorated.last_profile
    base = first_line(two_blocks)
    assert result.row(base + 1).allocated_bytes == size_of(30_000)
    assert result.row(base + 3).allocated_bytes == size_of(40_000)
    assert profile_lines(two_blocks).row(base + 3).allocated_bytes == size_of(40_000)


def fails_after_allocating() -> None:
    kept = bytearray(5_000)
    raise ValueError(f"failed with {len(kept)} bytes")


def test_an_exception_propagates_and_the_profile_comes_out() -> None:
    seen: list[LineProfile] = []
    decorated = profile(show=False, on_profile=seen.append)(fails_after_allocating)
    with pytest.raises(ValueError, match="failed with 5000 bytes") as caught:
        decorated()
    (result,) = seen
    assert caught.value.memguard_profile is result  # type: ignore[attr-defined]
    assert decorated.last_profile is result
    assert result.row(first_line(fails_after_allocating) + 1).allocated_bytes == size_of(5_000)
    assert any("memguard line profile" in note for note in caught.value.__notes__)
    with pytest.raises(ValueError) as again:
        profile_lines(fails_after_allocating)
    assert isinstance(again.value.memguard_profile, LineProfile)  # type: ignore[attr-defined]


def test_the_table_is_printed_to_the_stream() -> None:
    out = io.StringIO()
    profile(stream=out)(known_sizes)()
    text = out.getvalue()
    assert text.startswith("known_sizes (")
    assert "    b = bytearray(200_000)" in text
    assert "native allocations are not seen" in text


def test_previous_trace_function_keeps_its_events_and_is_restored() -> None:
    events: list[tuple[str, int]] = []

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if frame.f_code is known_sizes.__code__:
            events.append((event, frame.f_lineno))
        return local

    def global_trace(frame: FrameType, event: str, arg: Any) -> Any:
        return local if frame.f_code is known_sizes.__code__ else None

    previous = sys.gettrace()
    sys.settrace(global_trace)
    try:
        result = profile_lines(known_sizes)
        assert sys.gettrace() is global_trace
    finally:
        sys.settrace(previous)
    base = first_line(known_sizes)
    assert [line - base for event, line in events if event == "line"] == [1, 2, 3, 4, 5, 6, 7]
    assert result.row(base + 2).allocated_bytes == size_of(200_000)


KEPT_BY_OUTER: list[bytearray | None] = [None]


def keeps_what_a_profiled_callee_made() -> None:
    KEPT_BY_OUTER[0] = inner_profiled()  # into a slot that exists: nothing else is kept


def test_an_outer_line_retains_what_a_profiled_callee_allocated(measure: str) -> None:
    """Each byte belongs to the innermost profiled line and, with the counter,
    to the outer profiles' running lines too (a context tag stands for them all);
    tracemalloc's tracebacks stop at memguard's wrapper between the two."""
    outer = profile_lines(keeps_what_a_profiled_callee_made)
    inner = inner_profiled.last_profile
    inner_first = first_line(inner_profiled.__wrapped__)  # type: ignore[attr-defined]
    assert inner.row(inner_first + 2).retained_bytes == size_of(30_000)
    calling = outer.row(first_line(keeps_what_a_profiled_callee_made) + 1)
    assert calling.retained_bytes == (size_of(30_000) if measure == "counter" else 0)
    KEPT_BY_OUTER[0] = None


def plain_then_profiled() -> int:
    helper_block(10)  # seen, and passed over, while the outer profile runs
    inner = profile_lines(helper_block, 20_000)
    return inner.row(first_line(helper_block) + 1).hits


def test_a_function_called_unprofiled_is_profiled_when_asked_later() -> None:
    """The trace function in C remembers the calls it passed over; a profile
    starting later in the thread must make it forget them."""
    hits: list[int] = []
    profile(show=False, on_profile=lambda _: None)(
        lambda: hits.append(plain_then_profiled()))()
    assert hits == [1]


HELD: list[bytearray | None] = [None, None]


@profile(show=False)
def holds(slot: int) -> None:
    HELD[slot] = bytearray(20_000)


def holds_twice() -> None:
    holds(0)
    holds(1)


def test_each_call_retains_only_its_own_memory_inside_an_outer_profile() -> None:
    """The second call's profile does not count what the first call's lines
    still hold (with the counter: its blocks carry the first call's tags,
    and the tracer, kept installed by the outer profile, still knows them)."""
    profile_lines(holds_twice)
    line = holds.last_profile.row(first_line(holds.__wrapped__) + 2)  # type: ignore[attr-defined]
    assert line.retained_bytes == size_of(20_000)
    HELD[:] = [None, None]


def sizer() -> int:
    return 12_000


def allocates_after_a_traced_callee_returns() -> bytearray:
    kept = bytearray(sizer())
    return kept


def test_a_line_allocating_after_a_traced_callee_returned_keeps_its_memory() -> None:
    """After the expanded callee's return event (memguard's bookkeeping), the
    rest of the calling line is still that line's."""
    result = profile(expand=1, show=False)(allocates_after_a_traced_callee_returns)
    result()
    line = result.last_profile.row(first_line(allocates_after_a_traced_callee_returns) + 1)  # type: ignore[attr-defined]
    assert line.retained_bytes == size_of(12_000)


def calls_a_fresh_function(fresh: Any) -> bytearray:
    kept = fresh(30_000)
    return kept


def test_a_callees_first_traced_run_leaves_its_line_table_out_with_the_counter(
        measure: str) -> None:
    """CPython builds a code object's line table the first time it runs under a
    trace function (2 bytes per code unit, kept for the code's life): tracing's
    cost, never the calling line's. The counter leaves it out of *retained*;
    tracebacks cannot tell it from the callee's own allocations."""
    namespace: dict[str, Any] = {}
    exec(compile("def fresh(n):\n    return bytearray(n)\n", "<fresh>", "exec"), namespace)
    fresh = namespace["fresh"]  # a new code object: never traced before
    result = profile(show=False, nframes=4)(calls_a_fresh_function)
    result(fresh)
    line = result.last_profile.row(first_line(calls_a_fresh_function) + 1)  # type: ignore[attr-defined]
    table = len(fresh.__code__.co_code)
    if measure == "counter":
        assert line.retained_bytes == size_of(30_000)
    else:
        assert size_of(30_000) <= line.retained_bytes <= size_of(30_000) + table


SAVED_TRACES: list[object] = []


def pauses_tracing_then_allocates() -> bytearray:
    saved = sys.gettrace()
    SAVED_TRACES.append(saved)
    sys.settrace(None)  # as a library that pauses tracing around its own work does
    sys.settrace(saved)
    kept = bytearray(40_000)
    return kept


def test_code_that_saves_and_restores_the_trace_function_stays_profiled() -> None:
    from memguard.lines._tracer import tracer

    SAVED_TRACES.clear()
    result = profile_lines(pauses_tracing_then_allocates)
    # What the function saw as the trace function is the profiler's own
    # on_call, in C (with the counter) as in Python: restoring it keeps going.
    assert [tracer().on_call] == SAVED_TRACES
    assert result.row(first_line(pauses_tracing_then_allocates) + 5).allocated_bytes == \
        size_of(40_000)
    assert sys.gettrace() is None


def test_the_trace_function_is_in_c_with_the_counter(measure: str) -> None:
    from memguard.lines._tracer import tracer

    seen: list[bool] = []

    def look() -> None:
        seen.append(tracer().c_traced)

    profile_lines(look)
    assert seen == [measure == "counter"]


def test_each_thread_profiles_its_own_calls() -> None:
    before = sys.gettrace()
    results: list[LineProfile] = []
    decorated = profile(show=False, on_profile=results.append)(known_sizes)
    threads = [threading.Thread(target=decorated) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2
    base = first_line(known_sizes)
    for result in results:
        assert result.calls == 1
        assert result.row(base + 2).hits == 1
        assert result.row(base + 2).allocated_bytes >= size_of(200_000)
    assert sys.gettrace() is before  # this thread's tracer was never touched


def test_a_foreign_trace_keeps_running_and_earlier_memory_is_left_out(measure: str) -> None:
    tracemalloc.start(4)
    try:
        earlier = calls_helper()
        result = profile_lines(calls_helper)
        assert tracemalloc.is_tracing()
        assert result.nframes == (0 if measure == "counter" else 4)
        line = result.row(first_line(calls_helper) + 1)
        assert line.retained_bytes == size_of(40_000)  # ...but not counted again
        del earlier
    finally:
        tracemalloc.stop()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="expand must be a non-negative int, got -1"):
        profile(expand=-1)
    with pytest.raises(ValueError, match="nframes must be a positive int, got 0"):
        profile(nframes=0)
    with pytest.raises(TypeError, match="fn must be a Python function"):
        profile_lines(len, [1])

    async def agen() -> Any:
        yield 1

    with pytest.raises(TypeError, match="async generator"):
        profile(agen)


def test_public_names() -> None:
    assert memguard.profile is profile
    assert memguard.profile_lines is profile_lines
    assert memguard.LineProfile is LineProfile


def test_a_generator_closed_early_still_gives_its_profile() -> None:
    decorated = profile(show=False)(blocks)
    iterator = decorated(10)
    assert next(iterator) == 20_000
    iterator.close()
    result = decorated.last_profile
    assert result.row(first_line(blocks) + 2).hits == 1
    assert result.row(first_line(blocks) + 2).allocated_bytes == size_of(20_000)
    assert profile_lines(blocks, 2).row(first_line(blocks) + 2).hits == 2


def test_inside_a_limit_the_peaks_stay_right() -> None:
    with memguard.limit(mb=50) as guard:
        result = profile_lines(known_sizes)
    # The profiler restarts tracemalloc's peak at every line; the limit's
    # window still sees the peak of the profiled call.
    assert guard.peak_above_start_bytes >= result.peak_bytes >= size_of(300_000)


@profile(show=False)
def inner_profiled() -> bytearray:
    return bytearray(30_000)


def outer_calls_profiled() -> int:
    kept = inner_profiled()
    other = bytearray(10_000)
    return len(kept) + len(other)


def test_a_profiled_call_inside_a_profiled_line(measure: str) -> None:
    outer = profile_lines(outer_calls_profiled)
    inner = inner_profiled.last_profile
    base = first_line(outer_calls_profiled)
    inner_first = first_line(inner_profiled.__wrapped__)  # type: ignore[attr-defined]
    assert inner.row(inner_first + 2).allocated_bytes == size_of(30_000)
    # The call rolls up into the calling line as any call does; the inner
    # profile's own work (its snapshot, its table) is left out, but for the
    # frame objects of memguard's wrapper, freed in the calling line.
    calling = outer.row(base + 1)
    assert size_of(30_000) <= calling.allocated_bytes <= size_of(30_000) + 256
    # Nothing of the inner profile's own work (memguard's objects, the line
    # tables CPython builds for memguard's functions run under tracing) is
    # retained by the calling line; at most the line table of the profiled
    # callee itself, one entry per code unit, when this is its first traced run.
    callee = inner_profiled.__wrapped__.__code__  # type: ignore[attr-defined]
    assert calling.retained_bytes <= (0 if measure == "counter" else len(callee.co_code))
    assert abs(calling.peak_share_bytes - size_of(30_000)) <= 2048
    assert outer.row(base + 2).allocated_bytes == size_of(10_000)
