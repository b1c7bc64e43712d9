"""memguard.record(): real timelines, exact peaks, marks, clean stops."""

from __future__ import annotations

import threading
import time
import tracemalloc
from pathlib import Path

import pytest

import memguard
from memguard import _tracing
from memguard.report import render
from tests import helpers

MB = 1_000_000
SLACK = 64 * 1024
RSS_SLACK = 4 * MB


def _sampler_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("memguard-")]


def test_samples_marks_and_exact_peak() -> None:
    with memguard.record(interval=0.005, label="build") as timeline:
        first = bytearray(2 * MB)
        timeline.mark("first")
        time.sleep(0.03)
        second = bytearray(3 * MB)
        timeline.mark("second")
        time.sleep(0.03)
        del first, second
        timeline.mark("freed")
    assert timeline.label == "build"
    peak = timeline.traced_peak_above_start_bytes
    assert peak is not None
    assert 5 * MB <= peak <= 5 * MB + SLACK
    assert [m.label for m in timeline.marks] == ["first", "second", "freed"]
    times = [s.time_seconds for s in timeline.samples]
    assert times == sorted(times)
    # The first sample, one per mark and the last: the thread's own samples
    # come on top, as many as the machine's load lets it take.
    assert len(timeline.samples) >= 5
    traced_at = {m.label: m.traced_bytes for m in timeline.marks}
    # A mark reads the traced total: the 3 MB buffer, give or take the
    # interpreter's own small frees and allocations between the two marks.
    assert traced_at["second"] - traced_at["first"] >= 3 * MB - 1024  # type: ignore[operator]
    assert max(s.traced_bytes or 0 for s in timeline.samples) >= 5 * MB
    assert not tracemalloc.is_tracing()
    assert _sampler_threads() == []


def test_peak_between_samples_is_not_missed() -> None:
    # An interval no block here lasts: the samples are the first and the last.
    with memguard.record(interval=3600) as timeline:
        spike = bytearray(4 * MB)
        del spike
    sampled = max(s.traced_bytes or 0 for s in timeline.samples)
    assert sampled < MB  # the samples missed the spike ...
    peak = timeline.traced_peak_above_start_bytes
    assert peak is not None
    assert 4 * MB <= peak <= 4 * MB + SLACK  # ... the exact peak did not


def test_rss_is_recorded() -> None:
    # 48 MB of pages mapped and written for the block (a bytearray could reuse
    # resident heap an earlier test freed, and RSS would not move). RSS_SLACK:
    # the kernel may reclaim some of the process's clean file pages meanwhile
    # (memory pressure on a busy machine), lowering the level the block's
    # pages add to.
    with memguard.record(interval=0.005) as timeline, helpers.resident_pages(48 * MB):
        time.sleep(0.02)
    assert timeline.rss_peak_method in ("kernel-hwm", "sampled")
    assert timeline.rss_peak_bytes is not None
    assert timeline.rss_start_bytes is not None
    assert timeline.rss_peak_bytes - timeline.rss_start_bytes >= 48 * MB - RSS_SLACK
    assert all(s.rss_bytes is not None for s in timeline.samples)


def test_exception_stops_cleanly() -> None:
    before = helpers.threads_now()
    with pytest.raises(KeyError, match="boom"), memguard.record(interval=0.001) as timeline:
        time.sleep(0.01)
        raise KeyError("boom")
    assert helpers.threads_left_behind(before) == []
    assert _sampler_threads() == []
    assert _tracing.open_windows() == 0
    assert timeline.samples


def test_foreign_trace_keeps_running() -> None:
    outer = _tracing.begin()
    try:
        with memguard.record(interval=0.01) as timeline:
            data = bytearray(MB)
        assert tracemalloc.is_tracing()
        assert timeline.traced_peak_above_start_bytes is not None
        assert timeline.traced_peak_above_start_bytes >= MB
        del data
    finally:
        _tracing.end(outer)


def test_record_inside_a_limit_shares_the_peak() -> None:
    with memguard.limit(mb=50) as guard, memguard.record(interval=0.01) as timeline:
        data = bytearray(3 * MB)
        del data
    assert guard.peak_above_start_bytes >= 3 * MB
    assert (timeline.traced_peak_above_start_bytes or 0) >= 3 * MB


def test_misuse() -> None:
    recorder = memguard.record()
    with recorder as timeline:
        with pytest.raises(RuntimeError, match="complete once the record"):
            timeline.timeline
        with pytest.raises(AttributeError, match="'samples' is known once the record"):
            timeline.samples
        assert not hasattr(timeline, "to_dict")
        with pytest.raises(RuntimeError, match="already running"):
            recorder.__enter__()
    with pytest.raises(RuntimeError, match="mark\\(\\) works only inside"):
        timeline.mark("late")
    with pytest.raises(TypeError, match="label must be a string"):
        timeline.mark(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="interval must be a positive number"):
        memguard.record(interval=0)


def test_recording_renders_and_saves_as_its_timeline(tmp_path: Path) -> None:
    with memguard.record(interval=0.005, label="io") as timeline:
        time.sleep(0.02)
    assert render(timeline, "text").startswith('memguard timeline "io"\n')
    loaded = memguard.load(memguard.report.write(timeline, tmp_path / "t.json"))
    assert loaded == timeline.timeline
    assert isinstance(loaded, memguard.Timeline)


def test_sampler_rows_and_arguments() -> None:
    from memguard.sampler import Sampler

    with pytest.raises(ValueError, match="interval must be a positive number"):
        Sampler(-1)
    with pytest.raises(ValueError, match="reserve must be a positive int"):
        Sampler(0.1, reserve=0)
    sampler = Sampler(0.002, rss=False, reserve=2)  # grows past its reserve
    with pytest.raises(RuntimeError, match="never started"):
        sampler.stop()
    sampler.start()
    with pytest.raises(RuntimeError, match="already been started"):
        sampler.start()
    for _ in range(3):  # from this thread, whatever the sampler's thread gets to do
        sampler.sample()
    sampler.stop()
    rows = sampler.rows()
    assert len(rows) >= 5  # the first, three, the last
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    assert all(r[1] is None and r[2] is None for r in rows)  # not tracing, RSS off
    assert sampler.rss_absent == "RSS sampling was switched off"
    assert _sampler_threads() == []


def test_a_long_recording_adds_little_to_the_traced_heap() -> None:
    with memguard.record(interval=0.001) as timeline:
        time.sleep(0.3)
    assert len(timeline.samples) >= 2
    peak = timeline.traced_peak_above_start_bytes
    assert peak is not None
    assert peak < 8 * 1024, peak  # the reserve was made before the block began


def test_a_thousand_samples_keep_nothing_in_the_traced_heap() -> None:
    # The same, with a count of samples that does not depend on the load: the
    # samples are taken here, while tracing, into the preallocated reserve.
    from memguard.sampler import Sampler

    sampler = Sampler(3600, rss=False)  # its thread takes none of its own meanwhile
    window = _tracing.begin()
    try:
        sampler.start()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(1000):
            sampler.sample()
        kept = tracemalloc.get_traced_memory()[0] - before
        sampler.stop()
    finally:
        _tracing.end(window)
    assert len(sampler.rows()) == 1002
    assert kept < 1024, kept


def test_a_failed_start_leaves_nothing_open() -> None:
    from memguard import process
    from memguard.exceptions import TracingError

    outer = _tracing.begin()  # memguard starts tracing ...
    tracemalloc.stop()  # ... and someone else stops it under memguard's feet
    try:
        with pytest.raises(TracingError, match="stopped while a memguard block was open"), \
                memguard.record():
            pass  # pragma: no cover - never runs
        assert _sampler_threads() == []
        assert process._rss_windows == []
    finally:
        with pytest.raises(TracingError):
            _tracing.end(outer)
