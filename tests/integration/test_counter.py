"""The native allocation counter (memguard._native) against tracemalloc, to the byte.

The counter counts the requested size of every block allocated since the
count began, as tracemalloc traces every block allocated since it started.
Each test starts tracemalloc, opens the counter (whose hooks then wrap
tracemalloc's, so both see every allocation in the same order, and
tracemalloc's own tables, allocated beneath, are seen by neither), clears
tracemalloc's traces so that both begin at zero, runs a deterministic
workload and compares the two peaks: they must be equal.
"""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import tracemalloc
from collections.abc import Callable, Iterator

import pytest

from memguard import _counter

native = pytest.importorskip("memguard._native", reason="the native counter is not built here")
if not _counter.available():  # built, but switched off (MEMGUARD_NO_NATIVE=1)
    pytest.skip(f"the native counter is off: {_counter.unavailable_reason()}",
                allow_module_level=True)


@pytest.fixture(autouse=True)
def _no_count_left_open() -> Iterator[None]:
    yield
    assert native.sessions() == 0, "a native count was left open"
    assert not native.installed(), "the counter's hooks were left installed"


def peaks(workload: Callable[[], object]) -> tuple[int, int, int, int]:
    """(counter peak, tracemalloc peak, counter current, tracemalloc current) for *workload*.

    Both begin at zero: the counter from ``begin()``, tracemalloc from
    ``clear_traces()`` (nothing is allocated between the two calls). The workloads
    free what they made at their peak, so that the readings, which allocate,
    come well below it.
    """
    tracemalloc.start()
    native.begin()
    tracemalloc.clear_traces()
    try:
        workload()
        traced, traced_peak = tracemalloc.get_traced_memory()
        counted, counted_peak, lost = native.counts()
    finally:
        native.end()
        tracemalloc.stop()
    assert lost == 0
    return counted_peak, traced_peak, counted, traced


def test_bytearrays() -> None:
    def work() -> None:
        a = bytearray(1_000_000)
        b = bytearray(3_000_000)
        del a
        c = bytearray(2_500_000)
        del b, c
    counted, traced, _, _ = peaks(work)
    assert traced >= 5_500_000
    assert counted == traced


def test_lists_and_dicts() -> None:
    def work() -> None:
        rows = [{"id": i, "name": f"row-{i}", "tags": [i, i + 1]} for i in range(20_000)]
        index = {row["name"]: row for row in rows}
        del rows, index
    counted, traced, _, _ = peaks(work)
    assert traced > 2_000_000
    assert counted == traced


def test_realloc_growth_of_a_list_made_before_the_count() -> None:
    before = list(range(1000))  # its item array was allocated before the count

    def work() -> None:
        before.extend(range(200_000))  # realloc of a block the counter never saw
        before.append(-1)
        del before[1000:]  # shrinks it again
    counted, traced, _, _ = peaks(work)
    assert traced > 1_600_000
    assert counted == traced


def test_frees_of_blocks_made_before_the_count_do_not_lower_it() -> None:
    old = [bytearray(100_000) for _ in range(20)]
    old_dict = {i: str(i) * 10 for i in range(10_000)}

    def work() -> None:
        old.clear()  # 2 MB freed that the count never saw
        old_dict.clear()
        fresh = bytearray(500_000)
        del fresh
    counted, traced, counted_now, traced_now = peaks(work)
    assert traced >= 500_000
    assert counted == traced
    assert counted_now >= 0
    assert counted_now - traced_now < 1000  # the readings' own small objects, see peaks()


def test_several_threads() -> None:
    ready = threading.Barrier(5)
    hold = threading.Event()
    sizes = [1_000_000 * (n + 1) for n in range(4)]

    def allocate(size: int) -> None:
        block = bytearray(size)
        ready.wait()  # all four blocks are live together
        hold.wait()
        del block

    def work() -> None:
        threads = [threading.Thread(target=allocate, args=(s,)) for s in sizes]
        for thread in threads:
            thread.start()
        ready.wait()
        hold.set()
        for thread in threads:
            thread.join()
    counted, traced, _, _ = peaks(work)
    assert traced >= sum(sizes)
    assert counted == traced


def test_raw_domain_without_the_gil_is_counted() -> None:
    # bytes.join of big parts releases no GIL, but zlib and hashlib work on
    # RAW buffers; a thread pool's queue and the thread states are RAW too.
    import zlib

    payload = os.urandom(200_000) * 5

    def work() -> None:
        compressed = zlib.compress(payload, 1)
        out = zlib.decompress(compressed)
        del compressed, out
    counted, traced, _, _ = peaks(work)
    assert traced >= len(payload)
    assert counted == traced


def test_counts_ended_while_a_thread_allocates_without_the_gil_leave_no_stale_record() -> None:
    """end() clears the record while zlib, in another thread, allocates RAW blocks
    without the GIL: the clear waits for any such call inside the record, so no
    record outlives its count. A stale one (a block recorded after the clear)
    would be met again when its address is reused by a later count, which
    would then read the old size as replaced and count too little: the later
    counts below are checked to the byte against tracemalloc."""
    import zlib

    payload = os.urandom(4096) * 64
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            zlib.decompress(zlib.compress(payload, 1))

    thread = threading.Thread(target=churn)
    thread.start()
    try:
        for _ in range(300):
            native.begin()
            keep = [bytearray(1000 + i) for i in range(20)]
            native.end()
            del keep
    finally:
        stop.set()
        thread.join()

    def work() -> None:
        for round_ in range(20):
            # RAW blocks of the sizes the churn used, at addresses it freed
            blocks = [zlib.compressobj(1) for _ in range(4)]
            data = [bytearray(1000 + 37 * round_ + i) for i in range(50)]
            del blocks, data
    counted, traced, _, _ = peaks(work)
    assert counted == traced


#: CPython gh-121390: tracemalloc's stop freed its traceback table without the
#: tracebacks, fixed in 3.12.5 and 3.13.
_TRACEBACKS_LEAK = sys.version_info < (3, 12, 5)


def test_the_counter_sees_the_tracebacks_tracemalloc_stop_leaves_behind() -> None:
    """Each start/stop of a trace that records one new one-frame traceback leaves
    those 24 bytes allocated on Pythons with gh-121390 (what made the leak
    check's counted series grow for code opening memguard's tracing guards,
    see memguard.leaks.collector.USE_COUNTER), and nothing on fixed ones; the
    counter reads it to the byte."""
    if tracemalloc.is_tracing():
        pytest.skip("a trace runs already: starting and stopping one here would stop it")
    gc.disable()
    try:
        def cycle() -> None:
            tracemalloc.start(1)
            block = bytearray(10)  # one traceback: this line
            del block
            tracemalloc.stop()
        for _ in range(20):
            cycle()  # the first traces' one-time tables
        native.begin()
        try:
            before = native.counts()[0]
            for _ in range(1000):
                cycle()
            grown = native.counts()[0] - before
        finally:
            native.end()
    finally:
        gc.enable()
    expected = 1000 * 24 if _TRACEBACKS_LEAK else 0
    assert expected <= grown <= expected + 256, grown


def test_sampled_blocks_freed_leave_the_sampled_set_through_the_filter() -> None:
    """A free finds its sample through the lock-free filter while others come and go.

    With a 1-byte interval every block is sampled. 1,200 blocks (2,400 of
    the filter's 65,536 slots) are held while batches of 400 others are
    sampled and freed (their slots meet the held ones' dozens of times),
    then freed in turn: the sampled set holds exactly the 50 blocks held at
    the end. A filter count lowered too far (a live sample's slot read as
    empty) or a free that skipped the set leaves more.
    """
    size = 1000  # bytearray(1000) asks for 1001 bytes; nothing else here does
    window = _counter.begin()
    try:
        _counter.sample(1, seed=7)
        first = [bytearray(size) for _ in range(1200)]
        for _ in range(10):
            batch = [bytearray(size) for _ in range(400)]
            del batch
        del first
        held = [bytearray(size) for _ in range(50)]
        live = _counter.captured(live=True)
    finally:
        _counter.end(window)
    assert live is not None
    assert live.dropped == 0
    assert sum(1 for s in live.samples if s.size_bytes == size + 1) == len(held) == 50


def test_tracemalloc_started_and_stopped_inside_keeps_working() -> None:
    window = _counter.begin()
    tracemalloc.start()
    block = bytearray(2_000_000)
    assert tracemalloc.get_traced_memory()[0] >= 2_000_000
    tracemalloc.stop()
    more = bytearray(1_000_000)
    window = _counter.end(window)
    del block, more
    assert 3_000_000 <= window.peak_bytes < 3_000_000 + 4096


def test_tracemalloc_outliving_the_count_is_never_broken() -> None:
    window = _counter.begin()
    tracemalloc.start()  # wraps the counter's hooks
    try:
        _counter.end(window)  # the hooks stay in the chain as pass-through
        assert native.installed()
        block = bytearray(1_000_000)
        assert tracemalloc.get_traced_memory()[0] >= 1_000_000
        del block
        # a new count reuses the hooks where they are
        window = _counter.begin()
        block = bytearray(500_000)
        window = _counter.end(window)
        assert 500_000 <= window.peak_bytes < 500_000 + 4096
        del block
    finally:
        tracemalloc.stop()  # restores the counter's pass-through hooks
    window = _counter.begin()  # ... which the next count finds, and removes at its end
    _counter.end(window)


def test_a_callers_trace_is_never_stopped() -> None:
    tracemalloc.start()
    try:
        window = _counter.begin()  # the counter wraps tracemalloc's hooks
        block = bytearray(1_000_000)
        window = _counter.end(window)  # and unwraps them: tracemalloc still traces
        assert tracemalloc.is_tracing()
        del block
        block = bytearray(1_000_000)
        assert tracemalloc.get_traced_memory()[0] >= 1_000_000
        del block
    finally:
        tracemalloc.stop()
    assert 1_000_000 <= window.peak_bytes < 1_000_000 + 4096


def test_stopping_an_earlier_trace_inside_the_count_is_reported() -> None:
    from memguard.exceptions import TracingError

    tracemalloc.start()
    window = _counter.begin()  # on top of tracemalloc's hooks
    tracemalloc.stop()  # restores what tracemalloc found, taking the counter with it
    with pytest.raises(TracingError, match="unhooked"):
        _counter.end(window)


def test_memguard_stopping_its_own_trace_keeps_an_open_count() -> None:
    # A limit() in one thread opens a count while a memguard trace (a leak
    # check naming its culprit, in another thread) runs; the trace ends first.
    from memguard import _tracing

    trace = _tracing.begin()  # memguard starts tracemalloc
    window = _counter.begin()  # the counter wraps tracemalloc's hooks
    _tracing.end(trace)  # memguard stops it: the counter is put back on top
    assert not tracemalloc.is_tracing()
    assert native.intact()
    block = bytearray(2_000_000)
    del block
    window = _counter.end(window)  # no TracingError: the count went on
    assert 2_000_000 <= window.peak_bytes < 2_000_000 + 4096


def test_nested_windows_keep_their_own_peaks() -> None:
    outer = _counter.begin()
    spike = bytearray(3_000_000)
    del spike
    inner = _counter.begin()
    small = bytearray(1_000_000)
    inner = _counter.end(inner)
    outer = _counter.end(outer)
    del small
    assert 1_000_000 <= inner.peak_bytes < 1_000_000 + 4096
    assert 3_000_000 <= outer.peak_bytes < 3_000_000 + 4096


def test_numpy_array_data_is_tracemallocs_only() -> None:
    """numpy gives its array data to tracemalloc with PyTraceMalloc_Track, not the allocators.

    The counter cannot see it (documented in docs/how-it-measures.md): the two
    peaks differ by exactly the array's data. Use ``sites="exact"`` (tracemalloc)
    or ``source="rss"`` to count numpy's buffers.
    """
    np = pytest.importorskip("numpy")
    nbytes = 8 * 1_000_000

    def work() -> None:
        array = np.ones(1_000_000)
        assert array.nbytes == nbytes
        top = bytearray(2_000_000)  # both peaks are made here, with the array alive
        del top, array
    counted, traced, _, _ = peaks(work)
    assert counted >= 2_000_000
    assert traced - counted == nbytes


def test_the_counters_records_are_not_in_mallocs_figures() -> None:
    """The leak check reads malloc's bytes in use while a count is open.

    The counter records every counted block in a table of its own, 512 B for
    each 4 KiB page that holds one (about 800 KB for the 6.4 MB of small
    tuples here); kept in libc's heap, that table read as a native leak of a
    clean function. It is mapped from the kernel instead: with the tuples
    made and freed inside the count, malloc's bytes in use are back where
    they were (pymalloc's arenas are mapped too; the list that held the
    tuples went back to malloc), within 64 KiB of libc's own noise.
    """
    from memguard import process
    from memguard.exceptions import MeasurementUnavailable

    try:
        malloc_bytes = process.malloc_reader()
    except MeasurementUnavailable as error:
        pytest.skip(f"no malloc figures here: {error}")
    gc.collect()  # no other test's garbage freed meanwhile
    was_enabled = gc.isenabled()
    gc.disable()
    window = _counter.begin()
    try:
        before = malloc_bytes()
        made = [(i, -i) for i in range(100_000)]
        del made
        after = malloc_bytes()
    finally:
        _counter.end(window)
        if was_enabled:
            gc.enable()
    assert abs(after - before) < 64 * 1024, (before, after)


def test_disabled_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_counter.ENV_DISABLE, "1")
    assert not _counter.available()
    assert _counter.measurement() == "tracemalloc"
    assert _counter.unavailable_reason() == "MEMGUARD_NO_NATIVE is set"
    monkeypatch.delenv(_counter.ENV_DISABLE)
    assert _counter.measurement() == "counter"


def _sampled_small_and_big(with_big: bool) -> tuple[int, int]:
    """Sampled 10-byte buffers and 1,033-byte bytes objects, seeded, with or
    without a big block after every fifth small one."""
    big: list[bytes | None] = [None] * 60  # made first: nothing grows while sampling
    small: list[bytearray | None] = [None] * 300
    gc.disable()
    window = _counter.begin()
    try:
        _counter.sample(64, seed=7)
        for index in range(300):
            small[index] = bytearray(9)  # a 10-byte buffer
            if with_big and index % 5 == 0:
                big[index // 5] = bytes(1000)  # one block of 1,033 bytes: 16 intervals
        live = _counter.captured(live=True)
    finally:
        _counter.end(window)
        gc.enable()
    assert live is not None
    sizes = [sample.size_bytes for sample in live.samples]
    return sizes.count(10), sizes.count(1033)


def test_blocks_of_four_intervals_are_always_sampled_and_spend_no_budget() -> None:
    """A block of SURE_FACTOR mean intervals or more is sampled for sure, stands
    for itself, and leaves the other blocks' sampling as it was: the small
    blocks sampled are the same, seeded, with big blocks among them or not
    (49 and 45 before: each big block spent the budget). By chance, one 2 MB
    buffer in two thousand went unsampled at 256 KiB, and a limit named no
    site for it."""
    assert native.SURE_FACTOR == _counter.SURE_FACTOR
    alone, _ = _sampled_small_and_big(with_big=False)
    among, bigs = _sampled_small_and_big(with_big=True)
    assert bigs == 60
    assert among == alone > 0
    assert _counter.estimate(1033, 64) == 1033
    assert _counter.estimate(4 * 64 - 1, 64) > 4 * 64 - 1  # below: an estimate, as before


@pytest.fixture
def tags() -> Iterator[Callable[[int], None]]:
    """A count window with line tags open; yields the tagger of this thread."""
    window = _counter.begin()
    _counter.lines_begin()
    tag = _counter.tagger()
    try:
        yield tag
    finally:
        tag(0)
        _counter.lines_end()
        _counter.end(window)


def test_line_tags_hold_exactly_each_tags_live_blocks(tags: Callable[[int], None]) -> None:
    tags(101)
    kept = bytearray(100_000)
    freed = bytearray(3_000)
    tags(102)
    second = bytearray(7_000)
    del freed  # a tagged block freed under another tag leaves its own
    tags(0)
    untagged = bytearray(9_000)
    totals = _counter.tag_totals()
    assert totals == {101: sys.getsizeof(kept), 102: sys.getsizeof(second)}
    del kept, second, untagged


def test_a_realloc_is_tagged_as_it_happens(tags: Callable[[int], None]) -> None:
    tags(103)
    grown = bytearray(10)
    tags(104)
    grown.extend(bytes(5_000))  # the buffer moves: a new block, under 104
    tags(0)
    empty = sys.getsizeof(bytearray())
    assert _counter.tag_totals() == {103: empty, 104: sys.getsizeof(grown) - empty}


def test_other_threads_blocks_carry_their_own_tags(tags: Callable[[int], None]) -> None:
    kept: list[bytearray] = []

    def untagged() -> None:
        kept.append(bytearray(50_000))

    def tagged() -> None:
        _counter.tagger()(106)
        kept.append(bytearray(20_000))
        _counter.tagger()(0)

    tags(105)
    for target in (untagged, tagged):
        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
    tags(0)
    totals = _counter.tag_totals()
    assert totals.get(106) == sys.getsizeof(kept[1])
    # this thread's 105 holds what it allocated meanwhile (thread objects,
    # the list's growth), never the other threads' buffers
    assert totals.get(105, 0) < 20_000


def test_memguards_own_code_never_tags_a_block(tags: Callable[[int], None]) -> None:
    from memguard.units import format_size

    tags(107)
    theirs = format_size(123_456_789)  # its string is made in memguard's frame
    tags(108)
    mine = "".join(["a", str(123_456_789)])  # the same kind of work in a test's frame
    tags(0)
    totals = _counter.tag_totals()
    assert 107 not in totals, totals
    assert totals[108] == sys.getsizeof(mine)
    del theirs


def test_tags_are_forgotten_when_the_last_line_profile_ends() -> None:
    window = _counter.begin()
    try:
        with pytest.raises(RuntimeError, match="without lines_begin"):
            native.lines_end()
        _counter.lines_begin()
        _counter.tagger()(109)
        kept = bytearray(1_000)
        _counter.tagger()(0)
        assert _counter.tag_totals() == {109: sys.getsizeof(kept)}
        _counter.lines_end()
        _counter.lines_begin()
        assert _counter.tag_totals() == {}  # the block lives on, its tag is gone
        _counter.lines_end()
    finally:
        _counter.end(window)
    with pytest.raises(RuntimeError, match="needs an open count window"):
        _counter.lines_begin()
    del kept


def test_the_line_reading_restarts_its_own_peak_not_the_windows() -> None:
    window = _counter.begin()
    _counter.lines_begin()
    read = _counter.line_reader()
    try:
        start, _ = read()
        block = bytearray(500_000)
        del block
        now, high = read()
        assert high - start >= 500_000 > now - start
        again, high_again = read()
        assert high_again - again < 1_000  # restarted at the last reading
    finally:
        _counter.lines_end()
        _counter.end(window)
    assert window.peak_bytes >= 500_000  # the window's peak is its own


_THREADED_WORKLOAD = """
import threading, zlib
from memguard import _counter
window = _counter.begin()
_counter.sample(64, seed=1)  # the sampled set and its filter, rebuilt as samples are freed
_counter.lines_begin()  # and the line tags: threads tag, free and realloc tagged blocks
def work(n):
    _counter.tagger()(n + 1)
    keep = []
    for i in range(300):
        keep.append(bytearray(1000 + i * n))
        keep.append({i: str(i)})
        if len(keep) > 50:
            del keep[:25]
    zlib.compress(bytes(20000))
threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
for t in threads: t.start()
for t in threads: t.join()
totals = _counter.tag_totals()
_counter.lines_end()
window = _counter.end(window)
assert window.peak_bytes > 0 and window.lost_blocks == 0
import json
from memguard import profile_lines  # the trace function in C, line tags, the line peak
def lines():
    text = json.dumps({"rows": list(range(200))})
    kept = [json.loads(text) for _ in range(5)]
    return len(kept)
line_profile = profile_lines(lines)
assert line_profile.method == "counter" and line_profile.allocated_bytes > 0, line_profile
from memguard import objects  # the extension's census too
census = objects._census(objects.gc.get_objects(), True, native=True)
assert census[str] > 1000 and census[type(objects)] > 10, census
print("ok", window.peak_bytes)
"""


def valgrind_errors(stderr: str) -> list[str]:
    """The error records in valgrind's output, one string each."""
    records, current = [], []
    for line in stderr.splitlines():
        text = line.split("== ", 1)[1] if line.startswith("==") and "== " in line else line
        if text.strip():
            current.append(text)
        elif current:
            records.append("\n".join(current))
            current = []
    if current:
        records.append("\n".join(current))
    kinds = ("Invalid ", "uninitialised", "Mismatched", "overlap", "free()")
    return [r for r in records if any(kind in r.splitlines()[0] for kind in kinds)]


# Memory errors that are the counter's, whoever reports them: a bad pointer,
# a double or mismatched free. The interpreter itself, without memguard, reports
# "uninitialised value" records under memcheck (CPython ships a suppression file
# for them, Misc/valgrind-python.supp, that Debian's python does not install):
# those are allowed unless the counter's own code is on the stack.
_ALWAYS_OURS = ("Invalid read", "Invalid write", "Invalid free", "Mismatched free")


def _a_slot_the_interpreter_reads_too(record: str) -> bool:
    """An uninitialised value the census was handed from an object's ``__slots__``.

    memcheck reports a value read from some objects' slots (made by
    ``int.from_bytes``, by its origin) as uninitialised wherever it is used,
    and the interpreter's own collector reads it the same way
    (``visit_decref`` under ``traverse_slots``, with no memguard loaded): a
    value handed to the census's visitor by ``traverse_slots`` is the
    interpreter's. The census's own memory is never read through a slot.
    """
    return "uninitialised" in record.splitlines()[0] and "traverse_slots" in record


@pytest.mark.skipif(shutil.which("valgrind") is None,
                    reason="valgrind is not installed (.ci/run installs it with apt)")
def test_threaded_workload_under_valgrind_has_no_errors() -> None:
    env = dict(os.environ, PYTHONMALLOC="malloc")  # let memcheck see every block
    env.pop(_counter.ENV_DISABLE, None)
    result = subprocess.run(
        ["valgrind", "--error-exitcode=99", "--num-callers=30", "-q",
         sys.executable, "-c", textwrap.dedent(_THREADED_WORKLOAD)],
        capture_output=True, text=True, env=env, timeout=None, check=False,
    )
    assert result.stdout.startswith("ok "), result.stderr[-4000:]
    errors = valgrind_errors(result.stderr)
    ours = [e for e in errors
            if ("_native" in e and not _a_slot_the_interpreter_reads_too(e))
            or e.splitlines()[0].startswith(_ALWAYS_OURS)]
    assert ours == [], "\n\n".join(ours)[:6000]
