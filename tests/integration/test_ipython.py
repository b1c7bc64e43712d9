"""The IPython extension in a real InteractiveShell: every magic, its options and help.

The shell is IPython's own ``InteractiveShell`` (no mocks); cells run with
``run_cell(..., store_history=True)`` exactly as a notebook runs them, and
what they print is captured from stdout.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import os
import re
import shutil
import sys
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("IPython")

from IPython.core.error import UsageError
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell
from IPython.utils.capture import capture_output
from traitlets.config import Config

from memguard import _tracing
from memguard._ipython.holders import _chain_dot
from memguard.exceptions import LeakDetected, MemoryLimitExceeded
from memguard.report import render
from memguard.values.diff import SnapshotDiff
from memguard.values.leak import LeakReport
from memguard.values.lineprofile import LineProfile
from memguard.values.snapshot import Snapshot
from memguard.values.timeline import Timeline

MAGICS = {
    "line": ["memguard_cells", "memguard_diff", "memguard_holders", "memguard_lines",
             "memguard_snapshot"],
    "cell": ["memguard_leaks", "memguard_limit", "memguard_record"],
}

# Fresh anonymous pages, each touched: resident memory the process did not have
# before, whatever the allocator kept from earlier tests.
TOUCH_PAGES = """import mmap
pages = mmap.mmap(-1, %d)
for offset in range(0, len(pages), mmap.PAGESIZE):
    pages[offset] = 1
pages.close()"""

APP = """
class Session:
    def __init__(self, user):
        self.user = user
        self.buffer = bytearray(1000)

    def on_event(self, event):
        return event


class Bus:
    def __init__(self):
        self.handlers = {"request": []}

    def subscribe(self, kind, handler):
        self.handlers[kind].append(handler)


bus = Bus()


def handle_request(user):
    session = Session(user)
    bus.subscribe("request", session.on_event)
    return len(user)
"""


@pytest.fixture(scope="module")
def ipython(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InteractiveShell]:
    """One real shell for the module, with IPython's global changes undone after it."""
    saved_main = sys.modules["__main__"]
    saved_builtins = set(vars(builtins))
    saved_ps = {name: getattr(sys, name) for name in ("ps1", "ps2") if hasattr(sys, name)}
    saved_dir = os.environ.get("IPYTHONDIR")
    os.environ["IPYTHONDIR"] = str(tmp_path_factory.mktemp("ipython"))
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    config.InteractiveShell.colors = "nocolor"
    shell = InteractiveShell.instance(config=config)
    try:
        yield shell
    finally:
        shell.history_manager.end_session()
        InteractiveShell.clear_instance()
        sys.modules["__main__"] = saved_main
        for name in set(vars(builtins)) - saved_builtins:
            delattr(builtins, name)
        for name in ("ps1", "ps2"):
            if name in saved_ps:
                setattr(sys, name, saved_ps[name])
            elif hasattr(sys, name):
                delattr(sys, name)
        if saved_dir is None:
            os.environ.pop("IPYTHONDIR", None)
        else:
            os.environ["IPYTHONDIR"] = saved_dir


@pytest.fixture
def shell(ipython: InteractiveShell) -> Iterator[InteractiveShell]:
    """The shell with ``%load_ext memguard`` done, unloaded and cleaned after the test."""
    assert run(ipython, "%load_ext memguard").success
    try:
        yield ipython
    finally:
        run(ipython, "%unload_ext memguard")
        ipython.reset(new_session=False)


def run(shell: InteractiveShell, source: str) -> ExecutionResult:
    """Run one cell as a notebook does."""
    return shell.run_cell(source, store_history=True)


def magics(shell: InteractiveShell) -> Any:
    return shell.magics_manager.registry["MemguardMagics"]


# -- loading, help, usage errors ------------------------------------------


def test_load_ext_registers_every_magic_and_unload_removes_them(ipython: InteractiveShell) -> None:
    assert run(ipython, "%load_ext memguard").success
    registered = ipython.magics_manager.magics
    for kind, names in MAGICS.items():
        for name in names:
            assert name in registered[kind], f"%{name} ({kind}) is not registered"
    assert run(ipython, "%reload_ext memguard").success
    assert "memguard_limit" in registered["cell"]
    assert run(ipython, "%unload_ext memguard").success
    for kind, names in MAGICS.items():
        assert not set(names) & set(registered[kind])
    result = run(ipython, "%memguard_cells on")
    assert isinstance(result.error_in_exec, UsageError)


@pytest.mark.parametrize(("kind", "name"), [(k, n) for k, ns in MAGICS.items() for n in ns])
def test_every_magic_help_shows_options_and_an_example(shell: InteractiveShell, kind: str,
                                                       name: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    prefix = "%%" if kind == "cell" else "%"
    assert run(shell, f"{prefix}{name}?").success
    out = capsys.readouterr().out
    assert "Example::" in out
    assert f"usage: {prefix}{name} [-h]" in out
    assert "  -h, --help" in out


def test_dash_h_prints_the_help_and_runs_nothing(shell: InteractiveShell,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    result = run(shell, "%%memguard_limit -h\nran = True")
    assert result.success
    assert result.result is None
    assert "ran" not in shell.user_ns
    out = capsys.readouterr().out
    assert out.startswith("usage: %%memguard_limit [-h] [--source {python,rss}]")
    assert "--source {python,rss}" in out


def test_dash_h_of_an_expression_magic_prints_the_help(
        shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(shell, "%memguard_holders -h")
    assert result.success
    assert capsys.readouterr().out.startswith("usage: %memguard_holders [-h] [--depth DEPTH]")
    result = run(shell, "%memguard_lines")
    assert isinstance(result.error_in_exec, UsageError)
    assert str(result.error_in_exec).startswith(
        "%memguard_lines: the following arguments are required: CALL")


@pytest.mark.parametrize(("cell", "message"), [
    ("%%memguard_limit --bogus 10 MB\nx = 1",
     "%%memguard_limit: unrecognized arguments: --bogus\nusage: %%memguard_limit [-h]"),
    ("%%memguard_limit 10 mb\nx = 1",
     "%%memguard_limit: SIZE='10 mb' has an unknown unit 'mb' (a lower-case 'b' means bits)"),
    ("%%memguard_limit\nx = 1",
     "%%memguard_limit: the following arguments are required: SIZE\nusage:"),
    ("%%memguard_limit '10 MB\nx = 1",
     "%%memguard_limit: cannot split \"'10 MB\": No closing quotation"),
    ("%%memguard_limit 10 MB --source disk\nx = 1",
     "%%memguard_limit: argument --source: invalid choice: 'disk' (choose from "),
    ("%memguard_cells maybe",
     "%memguard_cells: argument state: invalid choice: 'maybe' (choose from "),
])
def test_bad_options_are_usage_errors(shell: InteractiveShell, cell: str, message: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    result = run(shell, cell)
    assert isinstance(result.error_in_exec, UsageError)
    assert str(result.error_in_exec).startswith(message)
    assert "x" not in shell.user_ns
    assert capsys.readouterr().err.startswith(f"UsageError: {message.splitlines()[0]}")


# -- %%memguard_limit -------------------------------------------------------


def test_limit_cell_under_the_limit_prints_the_peak_and_keeps_the_output(
        shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(shell, "%%memguard_limit 10 MB\nblock = bytearray(1_000_000)\nlen(block)")
    assert result.success
    assert result.result == 1_000_000
    assert len(shell.user_ns["block"]) == 1_000_000
    report = magics(shell).results["limit"]
    assert report.label == f"cell In[{result.execution_count}]"
    assert report.limit_bytes == 10_000_000
    assert 1_000_000 <= report.peak_above_start_bytes <= 1_000_000 + 32 * 1024
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"memguard: {report.summary}"
    # "counted" where memguard's native allocation counter is built, "traced" without it.
    assert re.fullmatch(r"memguard: cell In\[\d+\]: peak 9\d\d\.\d KiB <= limit 9\.5 MiB "
                        r"\(headroom 8\.\d MiB\), (counted|traced) Python heap",
                        out.splitlines()[0])
    assert out.splitlines()[1] == f"Out[{result.execution_count}]: 1000000"


def test_limit_cell_over_the_limit_fails_with_the_test_message(
        shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(shell, "%%memguard_limit 1 MB --label loader\nkept = bytearray(2_000_000)")
    error = result.error_in_exec
    assert isinstance(error, MemoryLimitExceeded)
    assert error.label == "loader"
    assert error.limit_bytes == 1_000_000
    assert 2_000_000 <= error.peak_above_start_bytes <= 2_000_000 + 32 * 1024
    assert magics(shell).results["limit"] is error.details
    first, sites_title, top_site = str(error).splitlines()[:3]
    peak_mib = error.peak_above_start_bytes / 1024**2
    over_kib = error.overshoot_bytes / 1024
    assert first == (f"Memory limit exceeded in loader: peak {peak_mib:.1f} MiB > limit "
                     f"976.6 KiB (+{over_kib:.1f} KiB), "
                     f"{error.details.measured}")
    assert error.details.measured in ("counted Python heap", "traced Python heap")
    assert sites_title.startswith("  top allocation sites (")
    assert "sites live at the peak" in sites_title
    # The cell's own line is named by its cell, numbered as the notebook shows
    # it (the magic is line 1), with its source.
    cell = result.execution_count
    assert re.fullmatch(rf"    In \[{cell}\], line 2: 1\.9 MiB in \d blocks"
                        r"(  kept = bytearray\(2_000_000\))?", top_site), top_site
    # What the notebook shows: the cell's code and the verdict, no frame of
    # memguard or IPython (no run_cell_magic, no guard __exit__).
    out = capsys.readouterr().out
    assert out.startswith(f"MemoryLimitExceeded\nCell In[{cell}]:\n"
                          "  1 %%memguard_limit 1 MB --label loader\n"
                          "  2 kept = bytearray(2_000_000)\n"
                          f"MemoryLimitExceeded: {first}\n"), out
    # The sites in the verdict are sampled: a sample may land on a block
    # IPython holds at the peak and name its file (interactiveshell.py, in 1
    # of 3 busy runs); frames are what must not show, outside the verdict.
    assert f"MemoryLimitExceeded: {error}\n" in out
    frames = out.replace(f"MemoryLimitExceeded: {error}", "")
    for frame in ("run_cell_magic", "__exit__", "limit.py", "magics.py", "interactiveshell"):
        assert frame not in frames, out


def test_limit_cell_error_propagates_unchanged(shell: InteractiveShell) -> None:
    result = run(shell, "%%memguard_limit 10 MB\n1 / 0")
    assert isinstance(result.error_in_exec, ZeroDivisionError)
    assert not getattr(result.error_in_exec, "__notes__", None)
    assert _tracing.open_windows() == 0


def test_limit_cell_rss_source_sees_native_memory(shell: InteractiveShell,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    result = run(shell, f"%%memguard_limit 1 GB --source rss -q\n{TOUCH_PAGES % 40_000_000}")
    assert result.success
    assert capsys.readouterr().out == ""
    report = magics(shell).results["limit"]
    assert report.source == "rss"
    # RSS is the whole process's: other pages may leave it while the cell runs.
    assert 40_000_000 - 1024**2 <= report.peak_above_start_bytes <= 40_000_000 + 4 * 1024**2


def test_limit_cell_syntax_error_points_at_the_cell(shell: InteractiveShell) -> None:
    result = run(shell, "%%memguard_limit 10 MB\nx = 1\ny = (\n")
    error = result.error_in_exec
    assert isinstance(error, SyntaxError)
    assert re.fullmatch(r"<ipython-input-\d+-\w+>", error.filename or "")
    assert error.lineno == 3, "the line as the notebook numbers it, the magic being line 1"
    assert "x" not in shell.user_ns
    assert _tracing.open_windows() == 0


def test_limit_cell_runs_magics_inside_the_cell(shell: InteractiveShell) -> None:
    result = run(shell, "%%memguard_limit 10 MB -q\nvalue = %time 6 * 7\nvalue")
    assert result.success
    assert result.result == 42


# -- %memguard_cells ----------------------------------------------------------


_CELL_LINE = re.compile(r"memguard: In\[(\d+)\] peak (\S+ \S+), retained ([+-]\S+ \S+) "
                        r"\(traced Python heap\)")


def test_cells_line_reports_each_cell_until_turned_off(
        shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    was_tracing = tracemalloc.is_tracing()
    assert run(shell, "%memguard_cells on").success
    assert capsys.readouterr().out == (
        "memguard: per-cell line on (traced Python heap), from the next cell\n")
    result = run(shell, "kept = bytearray(1_000_000)")
    monitor = magics(shell).monitor
    line = capsys.readouterr().out
    match = _CELL_LINE.fullmatch(line.strip())
    assert match, line
    assert int(match[1]) == result.execution_count
    cell = monitor.last
    assert line.strip() == str(cell)
    assert 1_000_000 <= cell.retained_bytes <= 1_000_000 + 16 * 1024
    assert cell.retained_bytes <= cell.peak_bytes <= 1_000_000 + 64 * 1024
    assert tracemalloc.is_tracing(), "tracing stays on while the line is on"

    result = run(shell, "spike = bytearray(3_000_000)\ndel spike")
    assert 3_000_000 <= monitor.last.peak_bytes <= 3_000_000 + 64 * 1024
    assert abs(monitor.last.retained_bytes) <= 16 * 1024
    capsys.readouterr()

    result = run(shell, "del kept")
    assert -1_000_000 - 16 * 1024 <= monitor.last.retained_bytes <= -1_000_000 + 16 * 1024
    assert "retained -97" in capsys.readouterr().out

    result = run(shell, "1 / 0")
    assert isinstance(result.error_in_exec, ZeroDivisionError)
    assert _CELL_LINE.search(capsys.readouterr().out), "a failed cell is reported too"

    assert run(shell, "%memguard_cells off").success
    assert capsys.readouterr().out == "memguard: per-cell line off\n"
    assert monitor.pre_run_cell not in shell.events.callbacks["pre_run_cell"]
    assert monitor.post_run_cell not in shell.events.callbacks["post_run_cell"]
    assert run(shell, "after = 1").success
    assert capsys.readouterr().out == ""
    assert _tracing.open_windows() == 0
    assert tracemalloc.is_tracing() == was_tracing
    assert run(shell, "%memguard_cells off").success
    assert capsys.readouterr().out == "memguard: the per-cell line is already off\n"


def test_cells_line_with_rss(shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(shell, "%memguard_cells on --rss").success
    run(shell, TOUCH_PAGES % 30_000_000)
    cell = magics(shell).monitor.last
    assert cell.rss_peak_bytes is not None
    assert 30_000_000 - 1024**2 <= cell.rss_peak_bytes <= 30_000_000 + 4 * 1024**2
    assert f"; RSS peak +{cell.rss_peak_bytes / 1024**2:.1f} MiB (" in capsys.readouterr().out
    assert run(shell, "%memguard_cells off").success


def test_unloading_turns_the_cells_line_off(ipython: InteractiveShell) -> None:
    assert run(ipython, "%load_ext memguard").success
    assert run(ipython, "%memguard_cells on").success
    monitor = magics(ipython).monitor
    assert run(ipython, "%unload_ext memguard").success
    assert not monitor.enabled
    assert monitor.post_run_cell not in ipython.events.callbacks["post_run_cell"]
    assert _tracing.open_windows() == 0


# -- snapshots, diffs and rich display ---------------------------------------


def test_snapshot_and_diff_name_the_growth(shell: InteractiveShell,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    was_tracing = tracemalloc.is_tracing()
    result = run(shell, "%memguard_snapshot before --trace")
    before = shell.user_ns["before"]
    assert isinstance(before, Snapshot)
    assert result.result is before
    assert magics(shell).snapshots["before"] is before
    assert tracemalloc.is_tracing()
    grow = run(shell, "kept = [bytearray(1000) for _ in range(500)]")
    assert run(shell, "%memguard_snapshot after --stop").success
    assert tracemalloc.is_tracing() == was_tracing
    capsys.readouterr()

    result = run(shell, "%memguard_diff before after")
    diff = result.result
    assert isinstance(diff, SnapshotDiff)
    assert (diff.before, diff.after) == ("before", "after")
    assert diff.sites is not None
    top = diff.sites[0]
    assert re.fullmatch(rf"<ipython-input-{grow.execution_count}-\w+>", top.filename)
    assert top.lineno == 1
    # 500 bytearrays of 1000 bytes (each with its object header), and the list.
    assert 500 * 1000 <= top.size_diff_bytes <= 500 * 1000 + 500 * 80 + 8 * 1024
    assert diff.types is not None
    assert {t.name: t.count_diff for t in diff.types}["bytearray"] >= 500
    out = capsys.readouterr().out
    assert out == f"Out[{result.execution_count}]: \n{render(diff, 'text')}"


COLD_START = """store = {}


def remember(i):
    store[i] = bytearray(512)
"""


def test_cold_start_hunt_names_the_storing_line_and_the_growing_type(
        shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    assert not tracemalloc.is_tracing()
    define = run(shell, COLD_START)
    capsys.readouterr()
    assert run(shell, "%memguard_snapshot before").success
    started = capsys.readouterr().out.splitlines()[0]
    # The first snapshot starts what the diff needs, in one line that says how
    # to turn it off.
    assert started == ("memguard: tracing Python allocations from now on, so that "
                       "%memguard_diff names the lines that allocate (allocation is slower "
                       "meanwhile); stop with `%memguard_snapshot NAME --stop`, or snapshot "
                       "with --no-trace to never start it")
    assert tracemalloc.is_tracing()
    assert run(shell, "for i in range(2000):\n    remember(i)").success
    assert run(shell, "%memguard_snapshot after").success
    assert "tracing Python allocations" not in capsys.readouterr().out, "said once"
    diff = run(shell, "%memguard_diff before after").result
    assert isinstance(diff, SnapshotDiff)
    assert diff.sites is not None
    assert diff.types is not None
    top = diff.sites[0]
    # The storing line, named by its cell: 2,000 bytearrays, each an object
    # (56 bytes on 64-bit CPython) and its 513-byte buffer, two blocks, plus
    # the dict's table that grew to hold them (under 96 KiB for 2,000 keys).
    assert top.where == f"In [{define.execution_count}], line 5"
    assert top.source == "store[i] = bytearray(512)"
    assert 2000 * (512 + 56) <= top.size_diff_bytes <= 2000 * (513 + 56) + 96 * 1024
    assert 4000 <= top.count_diff <= 4002
    text = render(diff, "text", width=120)
    assert re.search(rf"In \[{define.execution_count}\], line 5\s+store\[i\] = "
                     r"bytearray\(512\)", text), text
    assert "ipykernel" not in text
    assert "<ipython-input" not in text
    counts = {t.name: t.count_diff for t in diff.types}
    # The bytearrays sit in a dict of ints and bytearrays, which gc does not
    # track: the census still counts them (issue 18 point 3).
    assert 1990 <= counts.get("bytearray", 0) <= 2010, counts.get("bytearray")
    run(shell, "%memguard_snapshot done --stop --no-census")
    assert not tracemalloc.is_tracing()


def test_untraced_snapshots_say_how_to_trace_in_the_notebook(
        shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(shell, "%memguard_snapshot quiet --no-trace --no-census").success
    assert not tracemalloc.is_tracing()
    assert "tracing Python allocations" not in capsys.readouterr().out
    run(shell, "%memguard_snapshot quiet2 --no-trace --no-census")
    diff = run(shell, "%memguard_diff quiet quiet2").result
    assert diff.sites is None
    assert diff.reason("sites") == (
        "tracemalloc was not tracing; take the snapshots with `%memguard_snapshot NAME "
        "--trace` (the default unless --no-trace is given or tracing was stopped)")
    result = run(shell, "%memguard_snapshot x --trace --no-trace")
    assert str(result.error_in_exec) == (
        "%memguard_snapshot: --trace and --no-trace contradict each other")


def test_values_display_as_html_and_as_their_text_report(shell: InteractiveShell) -> None:
    run(shell, "%memguard_snapshot only --no-census")
    snapshot = shell.user_ns["only"]
    assert shell.display_formatter is not None
    data, _ = shell.display_formatter.format(snapshot)
    assert data["text/plain"] == render(snapshot, "text").rstrip("\n")
    # The same fragment with the extension loaded or not: one root element,
    # nothing a notebook's sanitizer strips, nothing that styles the page.
    fragment = data["text/html"]
    assert fragment.startswith('<div class="memguard-output memguard-snapshot ')
    assert fragment.endswith("</div>")
    for banned in ("<iframe", "<script", "<style", "<html", "<head", "<meta", "<body",
                   " onload=", " onerror="):
        assert banned not in fragment.lower(), banned
    assert "<table" in fragment
    assert re.sub(r"memguard-snapshot-[0-9a-f]+-\d+", "",
                  snapshot._repr_html_()) == re.sub(r"memguard-snapshot-[0-9a-f]+-\d+", "",
                                                    fragment)
    run(shell, "%unload_ext memguard")
    data, _ = shell.display_formatter.format(snapshot)
    assert data["text/plain"] == repr(snapshot)  # one short line without the extension
    assert data["text/plain"].startswith("<Snapshot ")
    assert data["text/html"].startswith('<div class="memguard-output memguard-snapshot ')
    run(shell, "%load_ext memguard")


@pytest.mark.parametrize(("line", "message"), [
    ("%memguard_diff nothing after", "%memguard_diff: no snapshot named 'nothing'; take one "
                                     "with: %memguard_snapshot nothing"),
    ("%memguard_diff number number", "%memguard_diff: 'number' is a int, not a Snapshot"),
    ("%memguard_snapshot 2x", "%memguard_snapshot: NAME must be a Python identifier, got '2x'"),
    ("%memguard_diff a b --by module", "%memguard_diff: argument --by: invalid choice: 'module'"),
])
def test_snapshot_and_diff_usage_errors(shell: InteractiveShell, line: str, message: str) -> None:
    shell.user_ns["number"] = 3
    result = run(shell, line)
    assert isinstance(result.error_in_exec, UsageError)
    assert str(result.error_in_exec).startswith(message)


# -- %%memguard_record ----------------------------------------------------------


def test_record_cell_returns_its_timeline(shell: InteractiveShell,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    result = run(shell, "%%memguard_record --interval 0.002 --no-rss\nimport time\n"
                        "block = bytearray(4_000_000)\ntime.sleep(0.03)\ndel block\n"
                        "time.sleep(0.01)\n'not shown'")
    timeline = result.result
    assert isinstance(timeline, Timeline)
    assert magics(shell).results["record"] is timeline
    assert timeline.label == f"cell In[{result.execution_count}]"
    assert timeline.interval_seconds == 0.002
    peak = timeline.traced_peak_above_start_bytes
    assert peak is not None
    assert 4_000_000 <= peak <= 4_000_000 + 64 * 1024
    assert {sample.rss_bytes for sample in timeline.samples} == {None}, "--no-rss samples"
    # The first and last samples; the thread's own come on top, as many as
    # the machine's load lets it take in the cell's 40 ms.
    assert len(timeline.samples) >= 2
    assert _tracing.open_windows() == 0
    out = capsys.readouterr().out
    assert out.startswith(f'Out[{result.execution_count}]: \nmemguard timeline "cell In[')
    assert "not shown" not in out


def test_record_cell_error_propagates(shell: InteractiveShell) -> None:
    result = run(shell, "%%memguard_record\nraise KeyError('boom')")
    assert isinstance(result.error_in_exec, KeyError)
    assert _tracing.open_windows() == 0


# -- %memguard_holders ----------------------------------------------------------

# No time budget for the searches here (--seconds inf): each ends on its depth
# bound, so what it finds does not depend on the machine's load.
UNTIMED = "--seconds inf"


def test_holders_names_the_chain_and_sets_the_notebooks_own_references_aside(
        shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch, tmp_path: Any,
        capsys: pytest.CaptureFixture[str]) -> None:
    # IPython binds `_` to the last output unless a `_` is in builtins (gettext's).
    monkeypatch.delattr(builtins, "_", raising=False)
    run(shell, APP)
    run(shell, "handle_request('alice')\nsession = bus.handlers['request'][0].__self__")
    shown = run(shell, "session")
    capsys.readouterr()
    monkeypatch.setenv("PATH", str(tmp_path))  # no Graphviz here
    assert run(shell, f"%memguard_holders {UNTIMED} session").success
    assert capsys.readouterr().out == (
        "who holds session (Session):\n"
        "  __main__.bus.handlers['request'][0] -> <bound method Session.on_event> -> Session\n"
        f"  not counted, the notebook's own references: session, _, _{shown.execution_count}, "
        f"Out[{shown.execution_count}]\n"
        "  no graph image: Graphviz's `dot` is not installed (install the graphviz package "
        "of your system to get one)\n")
    # Everything set aside is back.
    assert shell.user_ns["session"] is shell.user_ns["Out"][shown.execution_count]
    assert shell.user_ns["_"] is shell.user_ns["session"]
    assert shell.displayhook is not None
    assert shell.displayhook._ is shell.user_ns["session"]


def test_holders_of_an_unheld_object_and_bad_expressions(
        shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(shell, f"%memguard_holders {UNTIMED} --no-graph object()").success
    assert capsys.readouterr().out == (
        "who holds object() (object):\n"
        "  no holder reachable from a root (held by C code or a running frame's stack)\n")
    result = run(shell, "%memguard_holders --no-graph 1 +")
    assert isinstance(result.error_in_exec, UsageError)
    assert str(result.error_in_exec) == (
        "%memguard_holders: '1 +' is not a Python expression: invalid syntax")
    result = run(shell, "%memguard_holders nosuch")
    assert isinstance(result.error_in_exec, UsageError)
    assert str(result.error_in_exec) == (
        "%memguard_holders: cannot evaluate 'nosuch': NameError: name 'nosuch' is not defined")
    capsys.readouterr()
    run(shell, "%memguard_holders nosuch")
    out = capsys.readouterr()
    # One usage line, as the other magics give: no traceback through magics.py.
    assert (out.out + out.err).strip() == (
        "UsageError: %memguard_holders: cannot evaluate 'nosuch': NameError: name 'nosuch' "
        "is not defined")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_holders_draws_the_backrefs_with_graphviz(shell: InteractiveShell, tmp_path: Any,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    run(shell, APP)
    run(shell, "handle_request('bob')")
    with capture_output() as captured:
        assert run(shell, f"%memguard_holders {UNTIMED} "
                          "bus.handlers['request'][0].__self__").success
    assert captured.stdout.startswith("who holds bus.handlers['request'][0].__self__ (Session)")
    (image,) = captured.outputs
    png = base64.b64decode(image.data["image/png"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    # Only the answering chain (bus -> handlers -> the list -> the bound method
    # -> the session): a small image, readable at its own size in a cell, not
    # a graph of IPython's internals scaled down.
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert 150 <= width <= 950, width
    assert 100 <= height <= 600, height
    answer = magics(shell).results["holders"]
    dot = _chain_dot(answer)
    assert dot.count(" -> ") == len(answer.search.steps) - 2
    for internal in ("IPCompleter", "InteractiveShell", "_SetAside", "memguard", "frame"):
        assert internal not in dot
    assert image.data["text/plain"].startswith(
        "  graph of what holds bus.handlers['request'][0].__self__: PNG, ")

    target = tmp_path / "holders.png"
    assert run(shell, f"%memguard_holders {UNTIMED} --save {target} "
                  "bus.handlers['request'][0]").success
    assert target.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    out = capsys.readouterr().out
    assert out.endswith(f", written to {target}\n")
    assert "  graph of what holds bus.handlers['request'][0]: PNG, " in out


# -- %memguard_lines -------------------------------------------------------------


def test_lines_profiles_a_call_to_a_notebook_function(shell: InteractiveShell) -> None:
    run(shell, "def build(n, size=100):\n"
               "    rows = [bytearray(size) for _ in range(n)]\n"
               "    spike = bytearray(50_000)\n"
               "    del spike\n"
               "    return rows\n")
    shell.user_ns["count"] = 1000
    result = run(shell, "%memguard_lines build(count, size=200)")
    profile = result.result
    assert isinstance(profile, LineProfile)
    assert magics(shell).results["lines"] is profile
    assert profile.function == "build"
    rows = profile.row(2), profile.row(3)
    assert 1000 * 200 <= rows[0].allocated_bytes <= 1000 * (200 + 80) + 16 * 1024
    assert 50_000 <= rows[1].allocated_bytes <= 50_000 + 1024
    assert rows[1].retained_bytes == 0


def test_lines_profiles_an_async_function_outside_an_event_loop(
        shell: InteractiveShell) -> None:
    run(shell, "async def fetch(n):\n    return [bytes(100) for _ in range(n)]\n")
    result = run(shell, "%memguard_lines fetch(500)")
    assert result.success
    row = result.result.row(2)
    assert 500 * 100 <= row.allocated_bytes <= 500 * (100 + 40) + 16 * 1024

    async def in_a_kernel() -> ExecutionResult:  # a Jupyter kernel runs cells in its loop
        return run(shell, "%memguard_lines fetch(5)")

    result = asyncio.run(in_a_kernel())
    assert isinstance(result.error_in_exec, UsageError)
    assert str(result.error_in_exec).startswith(
        "%memguard_lines: cannot run an async function here, the kernel's event loop")


@pytest.mark.parametrize(("line", "message"), [
    ("%memguard_lines build", "%memguard_lines: expected a call such as build(rows), "
                              "got 'build'"),
    ("%memguard_lines build(", "%memguard_lines: 'build(' is not a Python expression: "),
    ("%memguard_lines len([1])", "%memguard_lines: len is a "
                                 "builtin_function_or_method, not a Python function"),
])
def test_lines_usage_errors(shell: InteractiveShell, line: str, message: str) -> None:
    result = run(shell, line)
    assert isinstance(result.error_in_exec, UsageError)
    assert str(result.error_in_exec).startswith(message)


def test_lines_lets_the_functions_own_errors_through(shell: InteractiveShell) -> None:
    run(shell, "def broken(n):\n    return [0] * n + None\n")
    result = run(shell, "%memguard_lines broken(3)")
    assert isinstance(result.error_in_exec, TypeError)
    assert hasattr(result.error_in_exec, "memguard_profile")


# -- %%memguard_leaks --------------------------------------------------------------


def test_leaks_cell_shows_the_verdict_of_a_leaking_cell(shell: InteractiveShell) -> None:
    run(shell, APP)
    result = run(shell, "%%memguard_leaks --repeat 20 --warmup 2 --signals objects,python\n"
                        "handle_request('carol')")
    report = result.result
    assert result.success
    assert isinstance(report, LeakReport)
    assert report.leaked
    assert report.label == f"cell In[{result.execution_count}]"
    assert (report.iterations, report.warmup) == (20, 2)
    per_call = {signal.name: signal.per_call for signal in report.signals}
    # One Session with its 1000-byte buffer (and __dict__), and one bound method.
    assert 1000 <= per_call["python"] <= 1000 + 1024
    assert 2 <= per_call["objects"] <= 6
    top_site = report.sites[0]
    assert re.fullmatch(r"<ipython-input-\d+-\w+>", top_site.filename)
    # IPython drops the cell's leading blank line.
    assert top_site.lineno == APP.lstrip("\n").splitlines().index(
        "        self.buffer = bytearray(1000)") + 1
    calls = len(shell.user_ns["bus"].handlers["request"])
    # At least once per warm-up and measured run (a leak check may make naming runs too).
    assert calls >= 22


def test_leaks_cell_with_assert_fails_like_a_test(shell: InteractiveShell,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    run(shell, APP)
    capsys.readouterr()
    result = run(shell, "%%memguard_leaks --repeat 20 --warmup 2 --signals objects --assert\n"
                        "handle_request('dave')")
    error = result.error_in_exec
    assert isinstance(error, LeakDetected)
    assert magics(shell).results["leaks"] is error.report
    assert str(error).startswith(f"Leak detected in cell In[{result.execution_count}]: ")
    # Shown as the cell and the verdict, without memguard's frames.
    out = capsys.readouterr().out
    assert out.startswith(f"LeakDetected\nCell In[{result.execution_count}]:\n"
                          "  1 %%memguard_leaks --repeat 20 --warmup 2 --signals objects "
                          "--assert\n  2 handle_request('dave')\nLeakDetected: Leak detected"), out
    assert "magics.py" not in out
    assert "run_cell_magic" not in out


def test_leaks_cell_of_clean_code_passes_its_assert(shell: InteractiveShell,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    run(shell, "cache = {}\ndef lookup(key):\n    return cache.setdefault(key % 3, str(key))")
    result = run(shell, "%%memguard_leaks --repeat 20 --warmup 3 --assert\nlookup(7)")
    assert result.success
    report = result.result
    assert not report.leaked
    assert report.iterations == 20
    assert f"verdict   cell In[{result.execution_count}]: no leak over 20 calls" in (
        capsys.readouterr().out)


@pytest.mark.parametrize(("options", "message"), [
    ("--signals heap", "%%memguard_leaks: unknown signal(s) ['heap']"),
    ("--repeat 0", "%%memguard_leaks: repeat must be an int >= 1, got 0"),
    ("--warmup -1", "%%memguard_leaks: warmup must be an int >= 0, got -1"),
    ("--repeat many", "%%memguard_leaks: argument --repeat: invalid int value: 'many'"),
])
def test_leaks_cell_usage_errors(shell: InteractiveShell, options: str, message: str) -> None:
    result = run(shell, f"%%memguard_leaks {options}\nran = True")
    assert isinstance(result.error_in_exec, UsageError)
    assert str(result.error_in_exec).startswith(message)
    assert "ran" not in shell.user_ns


def test_unloading_stops_the_tracing_a_snapshot_started(ipython: InteractiveShell) -> None:
    was_tracing = tracemalloc.is_tracing()
    assert run(ipython, "%load_ext memguard").success
    assert run(ipython, "%memguard_snapshot first --trace --no-census").success
    assert tracemalloc.is_tracing()
    assert _tracing.open_windows() == 1
    assert run(ipython, "%unload_ext memguard").success
    assert _tracing.open_windows() == 0
    assert tracemalloc.is_tracing() == was_tracing
    ipython.reset(new_session=False)


def test_cells_on_again_replaces_the_monitor(shell: InteractiveShell,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert run(shell, "%memguard_cells on").success
    first = magics(shell).monitor
    assert run(shell, "%memguard_cells on --rss").success
    second = magics(shell).monitor
    assert not first.enabled
    assert second.enabled
    assert shell.events.callbacks["post_run_cell"].count(second.post_run_cell) == 1
    assert first.post_run_cell not in shell.events.callbacks["post_run_cell"]
    assert run(shell, "%memguard_cells off").success
    assert _tracing.open_windows() == 0
    out = capsys.readouterr().out
    assert "per-cell line on (traced Python heap and process RSS)" in out
