"""LineTarget (for ``memguard run --lines``) and functions defined in IPython cells."""

from __future__ import annotations

import linecache
import runpy
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from memguard.lines import LineTarget, profile_lines
from memguard.lines._tracer import tracer

#: What a line run in a second thread may be charged for the main thread's own
#: allocations and frees at the same time (see the test below).
THREAD_SLACK = 1024



# Every test here runs with the native counter and without it (the fallback).
pytestmark = pytest.mark.usefixtures("measure")


def size_of(n: int) -> int:
    return sys.getsizeof(bytearray(n))


SCRIPT = """\
import threading

KEPT = []

def main():
    for _ in range(3):
        work(10_000)
    thread = threading.Thread(target=work, args=(20_000,))
    thread.start()
    thread.join()

def work(n):
    temporary = bytearray(n)
    KEPT.append(bytearray(1_000))
    return len(temporary)

if __name__ == "__main__":
    main()
"""


def test_parse_reads_file_or_module_and_function() -> None:
    target = LineTarget.parse("app/jobs.py:Job.run")
    assert (target.where, target.function, target.is_path) == ("app/jobs.py", "Job.run", True)
    target = LineTarget.parse("app.jobs:load", expand=1)
    assert (target.where, target.function, target.is_path, target.expand) == (
        "app.jobs", "load", False, 1)
    for bad in ("nofunction", ":f", "mod:"):
        with pytest.raises(ValueError, match="MODULE_OR_FILE:FUNCTION"):
            LineTarget.parse(bad)


def test_script_run_as_main_profiles_a_function_defined_later(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    before = sys.gettrace()
    target = LineTarget.parse(f"{script}:work")
    target.attach()
    try:
        namespace = runpy.run_path(str(script), run_name="__main__")
    finally:
        target.detach()
    assert sys.gettrace() is before
    assert threading.gettrace() is None
    (result,) = target.results()
    assert result.function == "work"
    assert result.calls == 4  # three in the main thread, one in a thread started later
    temporary = result.row(13)
    assert temporary.source == "    temporary = bytearray(n)"
    assert temporary.hits == 4
    # tracemalloc's counters are process-wide: while the thread runs work(),
    # the main thread is finishing Thread.start() (its Event wait frees and
    # allocates a lock and a deque entry, ~200 bytes) and entering join(),
    # and whatever it does meanwhile is charged to the line the thread is
    # on. The three calls in the main thread ran alone: THREAD_SLACK bounds
    # the other thread's share, in either direction (a free lowers it).
    assert abs(temporary.allocated_bytes - (3 * size_of(10_000) + size_of(20_000))) \
        <= THREAD_SLACK
    assert temporary.retained_bytes == 0
    kept = result.row(14)
    assert kept.allocated_bytes >= 4 * size_of(1_000) - THREAD_SLACK
    # Retained means still alive at detach: the four blocks in KEPT.
    assert kept.retained_bytes >= 4 * size_of(1_000)
    assert kept.retained_bytes <= 4 * size_of(1_000) + 256  # plus the list's growth
    assert result.peak_bytes >= size_of(20_000)
    namespace.clear()


def test_module_target_matches_by_module_name(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lt_sample_mod.py").write_text(textwrap.dedent("""\
        class Loader:
            def load(self, n):
                return bytearray(n)

        def load(n):
            return [0] * n
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    target = LineTarget.parse("lt_sample_mod:Loader.load")
    target.attach()
    try:
        import lt_sample_mod

        lt_sample_mod.Loader().load(50_000)
        lt_sample_mod.load(10)  # same plain name, other qualified name: not matched
    finally:
        target.detach()
        sys.modules.pop("lt_sample_mod", None)
    (result,) = target.results()
    assert result.function == "Loader.load"
    assert result.row(3).allocated_bytes == size_of(50_000)


def test_attach_twice_and_detach_unattached_are_refused() -> None:
    target = LineTarget.parse("x.py:f")
    with pytest.raises(RuntimeError, match="not attached"):
        target.detach()
    target.attach()
    try:
        with pytest.raises(RuntimeError, match="already attached"):
            target.attach()
    finally:
        target.detach()
    assert target.results() == ()


def test_functions_defined_in_an_ipython_cell() -> None:
    interactiveshell = pytest.importorskip("IPython.core.interactiveshell")
    shell = interactiveshell.InteractiveShell()
    try:
        result = shell.run_cell(textwrap.dedent("""\
            def cell_function():
                block = bytearray(64_000)
                return len(block)
            """))
        assert result.success
        fn = shell.user_ns["cell_function"]
        profile = profile_lines(fn)
        assert profile.filename == fn.__code__.co_filename
        block = profile.row(2)
        assert block.source == "    block = bytearray(64_000)"
        assert block.allocated_bytes == size_of(64_000)
    finally:
        shell.user_ns.clear()
        interactiveshell.InteractiveShell.clear_instance()


def test_code_from_an_ipykernel_style_cell_file_via_linecache() -> None:
    filename = "/tmp/ipykernel_4242/1234567.py"  # never on disk: like ipykernel's cells
    source = "def from_kernel():\n    data = [0] * 5_000\n    return len(data)\n"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {}
    try:
        exec(compile(source, filename, "exec"), namespace)
        profile = profile_lines(namespace["from_kernel"])
        assert profile.filename == filename
        assert profile.row(2).source == "    data = [0] * 5_000"
        assert 40_000 <= profile.row(2).allocated_bytes <= 40_000 + 72
    finally:
        linecache.cache.pop(filename, None)
        namespace.clear()


def test_detach_while_another_thread_still_calls_the_function(tmp_path: Path) -> None:
    (tmp_path / "lt_busy_mod.py").write_text(textwrap.dedent("""\
        def step():
            return bytearray(2_000)
        """))
    sys.path.insert(0, str(tmp_path))
    try:
        import lt_busy_mod

        stop = threading.Event()
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                while not stop.is_set():
                    lt_busy_mod.step()
            except BaseException as error:  # pragma: no cover - the failure this test looks for
                errors.append(error)

        target = LineTarget.parse("lt_busy_mod:step")
        target.attach()
        thread = threading.Thread(target=worker)
        thread.start()
        while not target._collectors:  # wait for the worker's first call
            threading.Event().wait(0.001)
        target.detach()
        for _ in range(100):  # the thread keeps calling after detach
            lt_busy_mod.step()
        stop.set()
        thread.join()
        assert errors == []
        (result,) = target.results()
        assert result.calls >= 1
        assert result.row(2).allocated_bytes >= size_of(2_000)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("lt_busy_mod", None)


def _first(n: int) -> bytearray:
    return bytearray(n)


def _second(n: int) -> bytearray:
    return bytearray(n)


def test_a_function_turned_down_by_one_target_is_found_by_the_next() -> None:
    """Calls a target turned down are passed over cheaply; a new target asks again."""
    one = LineTarget.parse(f"{__file__}:_first")
    one.attach()
    try:
        _second(1_000)  # turned down by the first target
        _first(2_000)
    finally:
        one.detach()
    two = LineTarget.parse(f"{__file__}:_second")
    two.attach()
    try:
        _second(30_000)
        _first(1_000)
    finally:
        two.detach()
    [first] = one.results()
    [second] = two.results()
    assert (first.function, first.calls) == ("_first", 1)
    assert (second.function, second.calls) == ("_second", 1)
    line = _second.__code__.co_firstlineno + 1
    assert second.row(line).allocated_bytes == size_of(30_000)


TRACED_DURING: list[object] = []


def target_function() -> bytearray:
    TRACED_DURING.append(sys.gettrace())
    return bytearray(5_000)


def test_between_calls_of_the_target_nothing_traces_lines(measure: str) -> None:
    """With the counter the target's tracer sleeps while none of its frames
    runs: a profile function in C watches calls only (no per-line tracing of
    the rest of the program) and the trace function runs inside the target."""
    from memguard.lines._tracer import tracer

    TRACED_DURING.clear()
    target = LineTarget.parse(f"{__file__}:target_function")
    target.attach()
    try:
        between = (sys.gettrace(), sys.getprofile())
        kept = [target_function() for _ in range(3)]
        after = (sys.gettrace(), sys.getprofile())
    finally:
        target.detach()
    on_call = tracer().on_call
    if measure == "counter":
        assert between == after == (None, on_call)
    else:
        assert between == after == (on_call, None)
    assert [on_call] * 3 == TRACED_DURING
    (result,) = target.results()
    assert result.calls == 3
    assert result.row(result.first_lineno + 2).retained_bytes == 3 * size_of(5_000)
    assert (sys.gettrace(), sys.getprofile()) == (None, None)
    del kept


def test_a_profile_function_already_set_keeps_its_events(measure: str) -> None:
    calls: list[str] = []

    def watcher(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code is target_function.__code__:
            calls.append(event)

    sys.setprofile(watcher)
    try:
        target = LineTarget.parse(f"{__file__}:target_function")
        target.attach()
        try:
            kept = [target_function() for _ in range(2)]
        finally:
            target.detach()
        assert sys.getprofile() is watcher
    finally:
        sys.setprofile(None)
    assert calls == ["call", "call"]
    (result,) = target.results()
    assert result.calls == 2
    del kept


class Worker(threading.Thread):
    def run(self) -> None:
        self.kept = bytearray(7_000)
        self.frames = [entry.frame for entry in tracer().stack]


def test_a_threads_first_frame_can_be_the_target() -> None:
    """A thread's first traced call reaches the tracer through threading's
    hook, not through the profile function: its lines are traced all the same."""
    target = LineTarget.parse(f"{__file__}:Worker.run")
    target.attach()
    try:
        worker = Worker()
        worker.start()
        worker.join()
    finally:
        target.detach()
    (result,) = target.results()
    assert result.calls == 1
    assert result.row(result.first_lineno + 1).retained_bytes == size_of(7_000)
    # the frame was entered once (the profile function, called for the same
    # event, left it to the trace function the tracer had just woken)
    assert len(worker.frames) == 1
