"""limit() under threads, asyncio, interrupts, forks and missing /proc (issue 7)."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import threading
import tracemalloc

import pytest

from memguard import MeasurementUnavailable, MemoryLimitExceeded, _tracing, limit, process
from tests import helpers

MB = 1_000_000


def test_eight_threads_at_once() -> None:
    """Each thread's block sees at least its own allocation; state is restored after."""
    barrier = threading.Barrier(8)
    peaks: dict[int, int] = {}
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            for _ in range(25):
                with limit(mb=500) as guard:
                    barrier.wait(timeout=10)
                    data = bytearray((index + 1) * 100_000)
                    del data
                peaks[index] = max(peaks.get(index, 0), guard.peak_above_start_bytes)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for index, peak in peaks.items():
        assert peak >= (index + 1) * 100_000
    assert _tracing.open_windows() == 0
    assert not tracemalloc.is_tracing()


def test_many_asyncio_tasks() -> None:
    @limit(mb=100)
    async def task(n: int) -> int:
        data = bytearray(n)
        await asyncio.sleep(0.001)
        return len(data)

    async def main() -> list[int]:
        return await asyncio.gather(*(task(10_000 * (i + 1)) for i in range(50)))

    assert asyncio.run(main()) == [10_000 * (i + 1) for i in range(50)]
    assert _tracing.open_windows() == 0
    assert not tracemalloc.is_tracing()


def test_asyncio_task_over_its_limit_fails_alone() -> None:
    @limit(mb=1)
    async def greedy() -> None:
        data = bytearray(2 * MB)
        await asyncio.sleep(0.001)
        del data

    @limit(mb=100)
    async def modest() -> int:
        await asyncio.sleep(0.001)
        return 1

    async def main() -> list[object]:
        return await asyncio.gather(greedy(), modest(), return_exceptions=True)

    first, second = asyncio.run(main())
    assert isinstance(first, MemoryLimitExceeded)
    assert second == 1


@pytest.mark.parametrize("source", ["python", "rss"])
def test_keyboard_interrupt_restores_everything(source: str) -> None:
    threads = helpers.threads_now()
    with pytest.raises(KeyboardInterrupt), limit(mb=5, source=source):  # type: ignore[arg-type]
        data = bytearray(MB)
        raise KeyboardInterrupt
    del data
    assert helpers.threads_left_behind(threads) == []
    assert _tracing.open_windows() == 0
    assert not tracemalloc.is_tracing()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_fork_inside_a_traced_block_leaves_a_usable_child() -> None:
    read_end, write_end = os.pipe()
    with limit(mb=50) as guard:
        pid = os.fork()
        if pid == 0:  # the child: finish the block, report, never return to pytest
            status = 1
            try:
                os.close(read_end)
                data = bytearray(MB)
                del data
                status = 0
            finally:
                if status == 0:
                    try:
                        guard.__exit__(None, None, None)
                        with limit(mb=5) as again:
                            data = bytearray(MB)
                            del data
                        held = again.peak_above_start_bytes >= MB
                        status = 0 if held and not tracemalloc.is_tracing() else 2
                    except BaseException:
                        status = 3
                os.write(write_end, bytes([status]))
                os._exit(status)
        os.close(write_end)
    _, code = os.waitpid(pid, 0)
    reported = os.read(read_end, 1)
    os.close(read_end)
    assert reported == b"\x00"
    assert os.waitstatus_to_exitcode(code) == 0


def test_gc_disabled_is_left_disabled() -> None:
    gc.disable()
    try:
        with limit(mb=5) as guard:
            data = bytearray(MB)
            del data
        assert not gc.isenabled()
        assert guard.peak_above_start_bytes >= MB
    finally:
        gc.enable()


def test_tracemalloc_with_100_frames() -> None:
    tracemalloc.start(100)
    try:
        with pytest.raises(MemoryLimitExceeded) as info, limit(mb=1):
            data = bytearray(2 * MB)
        del data
        assert tracemalloc.get_traceback_limit() == 100
        assert info.value.details.sites[0].size_bytes >= 2 * MB
    finally:
        tracemalloc.stop()


def test_tracing_stopped_by_someone_else_inside_the_block() -> None:
    from memguard import TracingError

    # sites="exact" measures with tracemalloc, which memguard starts here
    with pytest.raises(TracingError, match="stopped by someone else"), limit(mb=5, sites="exact"):
        tracemalloc.stop()
    assert _tracing.open_windows() == 0


def test_an_earlier_trace_stopped_inside_a_counted_block() -> None:
    from memguard import TracingError, _counter

    if not _counter.available():
        pytest.skip(f"the native counter is unavailable: {_counter.unavailable_reason()}")
    tracemalloc.start()
    try:
        # stopping tracemalloc restores the allocator it found, and takes the
        # counter's hooks, installed on top of it, with it: memguard says so
        with pytest.raises(TracingError, match="unhooked"), limit(mb=5, sites=False):
            tracemalloc.stop()
    finally:
        if tracemalloc.is_tracing():
            tracemalloc.stop()
    assert _counter.open_windows() == 0


# --- portability: each absence simulated --------------------------------------


def test_no_proc_status_falls_back_to_psutil(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process, "STATUS_PATH", process.Path("/nonexistent/status"))
    monkeypatch.setattr(process, "_hwm_state", None)
    assert not process.hwm_available()
    assert process.rss_bytes() > 0
    with limit(mb=500, source="rss") as guard:
        pass
    assert guard.report is not None
    assert guard.report.method == "sampled"


def test_clear_refs_refused_falls_back_to_sampling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process, "CLEAR_REFS_PATH", process.Path("/proc/self/status"))
    monkeypatch.setattr(process, "_hwm_state", None)
    assert not process.hwm_available()  # /proc/self/status is not writable


def test_no_proc_and_no_psutil_says_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process, "STATUS_PATH", process.Path("/nonexistent/status"))
    monkeypatch.setattr(process, "_hwm_state", None)
    monkeypatch.setattr(process, "_process", None)
    monkeypatch.setitem(sys.modules, "psutil", None)
    with pytest.raises(MeasurementUnavailable, match="process RSS is not available"):
        process.rss_bytes()
    with pytest.raises(MeasurementUnavailable, match="process RSS is not available"):
        limit(mb=5, source="rss").__enter__()
    with limit(mb=5) as guard:  # the Python heap needs neither, and is measured
        data = bytearray(MB)
        del data
    assert guard.report is not None
    assert guard.report.source == "python"
    assert MB <= guard.report.peak_above_start_bytes <= MB + 16 * 1024


def test_uss_unavailable_is_an_error_not_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process, "_process", None)
    monkeypatch.setitem(sys.modules, "psutil", None)
    with pytest.raises(MeasurementUnavailable, match="USS is not available"):
        process.uss_bytes()
