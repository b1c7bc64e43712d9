"""KeyboardInterrupt inside every guard, Ctrl-C at random moments, and os.fork in a block.

After an interrupt, tracemalloc, gc (enabled state and ``gc.freeze``
count), ``sys.gettrace()`` and the thread count are what they were before
the guard, and the interrupt reaches the caller unchanged. A fork inside a
``record()`` block leaves a child that can finish the block and use
memguard again; sampler threads never outlive their block.
"""

from __future__ import annotations

import _thread
import gc
import os
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator

import pytest

import memguard
from memguard import _counter, _tracing
from tests import helpers
from tests.reliability._ledger import tried

#: Delays (seconds) after which a real Ctrl-C (``_thread.interrupt_main``)
#: lands in a running leak check: in the warm-up, the measured calls, the
#: verdict or the clean-up, wherever it falls.
CTRL_C_DELAYS = (0.0, 0.003, 0.01, 0.02, 0.04, 0.08, 0.15, 0.3)


def _state() -> tuple[object, ...]:
    return (tracemalloc.is_tracing(), gc.isenabled(), gc.get_freeze_count(), sys.gettrace())




@pytest.fixture
def restored() -> Iterator[None]:
    before, threads = _state(), helpers.threads_now()
    yield
    assert _state() == before
    # No thread left behind; a thread of an earlier test (IPython's history
    # saver, say) may end meanwhile, which is not ours to judge.
    assert helpers.threads_left_behind(threads) == []
    assert _tracing.open_windows() == 0
    assert _counter.open_windows() == 0
    assert not _counter.hooks_installed()  # the allocators as they were


class Boom:
    """Raises KeyboardInterrupt on its *n*-th call."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt


@pytest.mark.parametrize("call", [1, 3, 8, 20])
def test_interrupt_in_track_leaks_repeated_loop(call: int, restored: None) -> None:
    """KeyboardInterrupt raised by the checked function on call 1 (warm-up), 3, 8 or 20."""
    tried()
    boom = Boom(call)
    with pytest.raises(KeyboardInterrupt):
        memguard.track_leaks(repeat=30, warmup=2).check(boom)
    assert boom.calls == call


def test_interrupt_in_track_leaks_with_block(restored: None) -> None:
    """KeyboardInterrupt inside ``with track_leaks():``: no verdict, state restored."""
    tried()
    with pytest.raises(KeyboardInterrupt), memguard.track_leaks():
        raise KeyboardInterrupt


def test_interrupt_in_record(restored: None) -> None:
    """KeyboardInterrupt inside ``record()``: the sampler thread is gone, tracing stopped."""
    tried()
    with pytest.raises(KeyboardInterrupt), memguard.record(interval=0.001) as recording:
        block = bytearray(100_000)
        time.sleep(0.01)
        del block
        raise KeyboardInterrupt
    assert recording.traced_peak_above_start_bytes >= 100_000


def test_interrupt_in_profile_lines(restored: None) -> None:
    """KeyboardInterrupt in a line-profiled function: sys.gettrace() and tracing restored."""
    tried()

    def work() -> None:
        block = bytearray(10_000)
        del block
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as info:
        memguard.profile_lines(work)
    assert hasattr(info.value, "memguard_profile")


def test_interrupt_in_watch(restored: None) -> None:
    """KeyboardInterrupt inside ``watch()``: no check is made, the interrupt goes through."""
    tried()

    class Session:
        pass

    with pytest.raises(KeyboardInterrupt), memguard.watch() as watched:
        keep = watched.add(Session())
        raise KeyboardInterrupt
    del keep


def test_interrupt_in_limit_and_snapshot(restored: None) -> None:
    """KeyboardInterrupt inside nested ``limit`` blocks around a snapshot."""
    tried()
    with pytest.raises(KeyboardInterrupt), memguard.limit(mb=50), memguard.limit(mb=10):
        memguard.snapshot(census=False)
        raise KeyboardInterrupt


def test_interrupt_while_a_leak_check_opens_its_readers(
        monkeypatch: pytest.MonkeyPatch, restored: None) -> None:
    """A Ctrl-C that lands as the readers are made: the counter's window, made first, closes.

    (A real Ctrl-C 3 ms into a check landed there once the suite's heap was
    large, and left the counter counting for the rest of the process.)
    """
    from memguard.leaks import collector

    def interrupted() -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(collector.process, "fd_count", interrupted)
    with pytest.raises(KeyboardInterrupt):
        memguard.track_leaks(signals=["python", "fds"], warmup=0).check(lambda: None)


def _interrupt_after(delay: float, run: Callable[[], object]) -> bool:
    """Run *run* with a real Ctrl-C sent to the main thread after *delay*; True if it landed."""
    timer = threading.Timer(delay, _thread.interrupt_main)
    # Python drops a KeyboardInterrupt raised inside a gc callback (it is an
    # "unraisable" exception there); other libraries' callbacks (hypothesis
    # installs one) are set aside so the interrupt lands in memguard's code.
    callbacks = gc.callbacks[:]
    gc.callbacks.clear()
    try:
        timer.start()
        run()
        time.sleep(1.0)  # the interrupt lands here if the run ended first
    except KeyboardInterrupt:
        return True
    finally:
        timer.join()
        gc.callbacks[:] = callbacks
    return False  # pragma: no cover - the sleep always outlasts the timer


@pytest.mark.parametrize("delay", CTRL_C_DELAYS)
def test_real_ctrl_c_at_any_moment_of_a_leak_check(delay: float, restored: None) -> None:
    """A real Ctrl-C (SIGINT to the main thread) lands anywhere in a check_leaks run.

    Wherever it lands, memguard's own code included, the interrupt reaches
    the caller and the state is restored; a sampler or timer thread is not
    left behind.
    """
    tried()

    def slow() -> None:
        time.sleep(0.0005)

    assert _interrupt_after(delay, lambda: memguard.track_leaks(warmup=2, fail=False).check(slow))


@pytest.mark.parametrize("delay", CTRL_C_DELAYS[:4])
def test_real_ctrl_c_at_any_moment_of_a_recording(delay: float, restored: None) -> None:
    """A real Ctrl-C lands anywhere in a ``record()`` block or its start and end."""
    tried()

    def run() -> None:
        with memguard.record(interval=0.001):
            time.sleep(0.03)

    assert _interrupt_after(delay, run)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_fork_inside_record_leaves_a_usable_child(restored: None) -> None:
    """os.fork() inside ``record()``: the child ends the block and records again."""
    tried()
    read_end, write_end = os.pipe()
    with memguard.record(interval=0.001) as recording:
        pid = os.fork()
        if pid == 0:  # the child: never return into pytest
            status = 1
            try:
                os.close(read_end)
                block = bytearray(200_000)
                del block
                with memguard.record(interval=0.001) as again:
                    block = bytearray(300_000)
                    del block
                samplers = [t for t in threading.enumerate() if t is not threading.main_thread()]
                status = 0 if again.traced_peak_above_start_bytes >= 300_000 else 2
                if samplers:
                    status = 4
            except BaseException:
                status = 3
            finally:
                os.write(write_end, bytes([status]))
                os._exit(status)
        os.close(write_end)
        block = bytearray(100_000)
        del block
    _, code = os.waitpid(pid, 0)
    reported = os.read(read_end, 1)
    os.close(read_end)
    assert reported == b"\x00"
    assert os.waitstatus_to_exitcode(code) == 0
    assert recording.traced_peak_above_start_bytes >= 100_000


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_fork_inside_limit_while_a_thread_allocates_leaves_a_usable_child(
        restored: None) -> None:
    """os.fork() inside ``limit()`` (the counter where built) while another thread allocates.

    The other thread's allocations go through the counter's hooks and locks;
    the child (only the forking thread) must find them released, count its
    own block exactly and end it, ten forks in a row.
    """
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            kept = [bytearray(64) for _ in range(100)]
            del kept

    other = threading.Thread(target=churn, name="rel-churn")
    other.start()
    try:
        for _ in range(10):
            tried()
            read_end, write_end = os.pipe()
            with memguard.limit(mb=100) as guard:
                pid = os.fork()
                if pid == 0:  # the child: never return into pytest
                    status = 1
                    try:
                        os.close(read_end)
                        with memguard.limit(mb=100) as again:
                            block = bytearray(300_000)
                            del block
                        status = 0 if again.peak_above_start_bytes >= 300_000 else 2
                    except BaseException:
                        status = 3
                    finally:
                        os.write(write_end, bytes([status]))
                        os._exit(status)
                os.close(write_end)
                block = bytearray(100_000)
                del block
            _, code = os.waitpid(pid, 0)
            reported = os.read(read_end, 1)
            os.close(read_end)
            assert reported == b"\x00"
            assert os.waitstatus_to_exitcode(code) == 0
            # The count is process-wide: the churning thread's blocks, counted
            # when made before the window's start was read and freed inside it,
            # lower the level by up to its live set (100 bytearrays of 64 B and
            # their list, about 13 KB; 2.2 KB in one run).
            assert guard.peak_above_start_bytes >= 100_000 - 16 * 1024
    finally:
        stop.set()
        other.join()


def test_sampler_threads_never_outlive_their_block(restored: None) -> None:
    """After 50 record() blocks, ended normally or by an exception, no memguard thread remains."""
    base = helpers.threads_now()
    for index in range(50):
        tried()
        try:
            with memguard.record(interval=0.001):
                if index % 2:
                    raise ValueError("boom")
        except ValueError:
            pass
        assert helpers.threads_left_behind(base) == []
