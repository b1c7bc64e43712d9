"""Missing /proc, refused /proc/self/clear_refs, no mallinfo2, no psutil: fallbacks or a clear word.

Each absence is simulated on Linux: ``/proc`` files are pointed at paths
that do not exist (or, for ``clear_refs``, at a file that refuses writes),
glibc's ``mallinfo2`` lookup fails, and ``import psutil`` fails. Every
feature then works through its fallback, or says what it cannot measure: a
figure it cannot read is absent with a reason, never a 0 pretending to be a
measurement.
"""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path
from typing import Any

import pytest

import memguard
from memguard import MeasurementUnavailable, process, report
from tests.reliability._ledger import tried

MISSING = Path("/nonexistent/memguard-test")
MB = 1_000_000


def _no_mallinfo() -> Any:
    raise AttributeError("mallinfo2 (simulated: not glibc)")


@pytest.fixture
def no_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    """No /proc at all, and no glibc mallinfo2."""
    monkeypatch.setattr(process, "STATUS_PATH", MISSING / "status")
    monkeypatch.setattr(process, "CLEAR_REFS_PATH", MISSING / "clear_refs")
    monkeypatch.setattr(process, "_hwm_state", None)
    monkeypatch.setattr(process, "STATM_PATH", str(MISSING / "statm"))
    monkeypatch.setattr(process, "FD_PATH", MISSING / "fd")
    monkeypatch.setattr(process, "_mallinfo2", _no_mallinfo)
    monkeypatch.setattr(process, "_malloc", [])


@pytest.fixture
def no_psutil(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import psutil`` fails."""
    monkeypatch.setitem(sys.modules, "psutil", None)
    monkeypatch.setattr(process, "_process", None)


def test_simulated_absences_are_real() -> None:
    """The simulation itself: with every absence in force, no RSS reading succeeds."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(process, "STATUS_PATH", MISSING / "status")
        patch.setattr(process, "_hwm_state", None)
        patch.setitem(sys.modules, "psutil", None)
        patch.setattr(process, "_process", None)
        tried()
        assert not process.hwm_available()
        with pytest.raises(MeasurementUnavailable, match="not available"):
            process.rss_bytes()


def test_snapshot_without_proc_uses_psutil(no_proc: None) -> None:
    """No /proc: a snapshot's RSS and descriptors come from psutil."""
    tried()
    snap = memguard.snapshot(census=False)
    assert snap.rss_bytes is not None
    assert snap.rss_bytes > MB


def test_snapshot_without_proc_or_psutil_says_why(no_proc: None, no_psutil: None) -> None:
    """No /proc and no psutil: RSS and USS are absent with a reason, and reports say so."""
    tried()
    snap = memguard.snapshot(census=False)
    assert snap.rss_bytes is None
    assert snap.uss_bytes is None
    reason = snap.reason("rss_bytes")
    assert reason is not None
    assert "not available" in reason
    text = report.render(snap, "text")
    assert "not available" in text
    assert " 0 B" not in text


def test_record_without_proc_samples_rss_through_psutil(no_proc: None) -> None:
    """No /proc (so no kernel high-water mark): record() samples RSS through psutil."""
    tried()
    with memguard.record(interval=0.005) as recording:
        block = bytearray(2 * MB)
        del block
    timeline = recording.timeline
    assert timeline.rss_peak_method == "sampled"
    assert timeline.rss_peak_bytes is not None
    assert timeline.rss_peak_bytes > MB


def test_record_without_proc_or_psutil_says_why(no_proc: None, no_psutil: None) -> None:
    """No /proc and no psutil: the timeline's RSS is absent with the reason; the heap is traced."""
    tried()
    with memguard.record(interval=0.005) as recording:
        block = bytearray(2 * MB)
        del block
    timeline = recording.timeline
    assert timeline.rss_peak_method == "unavailable"
    assert timeline.rss_peak_bytes is None
    assert "not available" in dict(timeline.absent)["rss_bytes"]
    assert timeline.traced_peak_above_start_bytes >= 2 * MB
    assert all(sample.rss_bytes is None for sample in timeline.samples)


def test_clear_refs_refused_limit_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    """/proc/self/clear_refs refused (a locked-down container): RSS limits and records sample."""
    monkeypatch.setattr(process, "CLEAR_REFS_PATH", MISSING / "clear_refs")
    monkeypatch.setattr(process, "_hwm_state", None)
    tried(2)
    with memguard.limit(mb=500, source="rss") as guard:
        pass
    assert guard.report is not None
    assert guard.report.method == "sampled"
    with memguard.record(interval=0.005) as recording:
        pass
    assert recording.timeline.rss_peak_method == "sampled"


def test_leak_check_rss_signal_without_mallinfo2(monkeypatch: pytest.MonkeyPatch) -> None:
    """No glibc mallinfo2: the rss signal reads /proc/self/statm and says so."""
    monkeypatch.setattr(process, "_mallinfo2", _no_mallinfo)
    monkeypatch.setattr(process, "_malloc", [])
    tried()
    result = memguard.track_leaks(repeat=20, warmup=1, signals=["rss"]).check(lambda: None)
    verdict = {v.name: v for v in result.signals}["rss"]
    assert "statm" in verdict.detail
    assert verdict.leaked is False


def test_leak_check_rss_signal_without_proc_uses_psutil(no_proc: None) -> None:
    """No mallinfo2 and no /proc: the rss signal reads RSS through psutil."""
    tried()
    result = memguard.track_leaks(repeat=20, warmup=1, signals=["rss"]).check(lambda: None)
    verdict = {v.name: v for v in result.signals}["rss"]
    assert verdict.detail.endswith("(psutil)")
    assert verdict.leaked is False


def test_leak_check_with_nothing_to_read_rss(no_proc: None, no_psutil: None) -> None:
    """Nothing can read RSS: asked for, the rss signal is an error; by default it is left out.

    The default check still runs on its other signals and its report has no
    rss verdict at all (not a 0 growth).
    """
    tried(2)
    with pytest.raises(MeasurementUnavailable, match="not available"):
        memguard.track_leaks(repeat=20, warmup=1, signals=["rss"]).check(lambda: None)
    result = memguard.track_leaks(repeat=20, warmup=1).check(lambda: None)
    names = {v.name for v in result.signals}
    assert "rss" not in names
    assert {"blocks", "objects", "threads"} <= names
    with memguard.track_leaks() as leaks:
        pass
    assert leaks.report is not None
    assert "rss" not in {v.name for v in leaks.report.signals}


def test_cli_run_rss_with_nothing_to_read_rss(no_proc: None, no_psutil: None,
                                              tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A run with ``rss`` and no /proc and no psutil: it completes, RSS is said absent.

    In this process (``run_program``, as ``memguard run --lines`` runs it off
    Linux): ``memguard run``'s agent reads /proc in a process of its own,
    which the fixtures cannot take away.
    """
    from memguard.cli import main
    from memguard.cli.run import _summarise
    from memguard.program import Program, run_program
    from memguard.values.files import save

    tried()
    script = tmp_path / "prog.py"
    script.write_text("block = bytearray(2_000_000)\nprint('done')\n")
    output = tmp_path / "run.json"
    monkeypatch.chdir(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        result = run_program(Program(str(script)), rss=True, lend_imports=True)
        save(result, output)
        _summarise(result, str(output))
    assert result.exit_code == 0, err.getvalue()
    assert "done" in out.getvalue()
    run = memguard.load(output)
    # The 2 MB block and the script's own small allocations; the summary line
    # prints the figure the run holds.
    assert 2_000_000 <= run.traced_peak_above_start_bytes <= 2_000_000 + 200_000
    peak = run.traced_peak_above_start_bytes
    assert f"traced peak {memguard.format_size(peak)}" in err.getvalue()
    assert "peak RSS not measured" in err.getvalue()
    assert run.timeline.rss_peak_bytes is None
    assert "not available" in dict(run.timeline.absent)["rss_bytes"]
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
        assert main(["report", str(output)]) == 0
    assert "process RSS        not measured: process RSS is not available" in shown.getvalue()
