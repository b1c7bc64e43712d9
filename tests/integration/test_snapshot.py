"""Real snapshots and diffs: known allocations, objects, descriptors, threads, files."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import threading
import tracemalloc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

import memguard
from memguard import _tracing
from memguard.report import render
from tests import helpers

COUNT = 1000
SIZE = 10_000


def line_of(marker: str) -> int:
    """The line number in this file that contains *marker*."""
    return helpers.line_of(__file__, marker)


@pytest.fixture
def traced() -> Iterator[_tracing.PeakWindow]:
    window = _tracing.begin(nframes=1)
    try:
        yield window
    finally:
        _tracing.end(window)


def allocate() -> list[bytearray]:
    return [bytearray(SIZE) for _ in range(COUNT)]  # ALLOCATE


def test_diff_finds_the_allocating_line(traced: _tracing.PeakWindow) -> None:
    before = memguard.snapshot("before")
    data = allocate()
    after = memguard.snapshot("after")
    diff = memguard.diff(before, after)
    assert diff.sites is not None
    top = diff.sites[0]
    assert (top.filename, top.lineno) == (__file__, line_of("# ALLOCATE"))
    # Each bytearray is its object plus a SIZE+1 buffer; the list adds one block.
    assert COUNT * SIZE <= top.size_diff_bytes <= COUNT * (SIZE + 100) + 16 * 1024
    assert 2 * COUNT <= top.count_diff <= 2 * COUNT + 2
    assert diff.types is not None
    assert {t.name: t.count_diff for t in diff.types}["bytearray"] == COUNT
    assert diff.traced_diff_bytes is not None
    assert diff.traced_diff_bytes >= COUNT * SIZE
    assert diff.rss_diff_bytes is not None
    del data


@pytest.fixture
def deep() -> Iterator[_tracing.PeakWindow]:
    window = _tracing.begin(nframes=4)
    try:
        yield window
    finally:
        _tracing.end(window)


def test_grouping_by_traceback_separates_callers(deep: _tracing.PeakWindow) -> None:
    before = memguard.snapshot("before", census=False)
    first = allocate()  # CALLER ONE
    second = allocate()  # CALLER TWO
    after = memguard.snapshot("after", census=False)
    by_line = memguard.diff(before, after)
    assert by_line.sites is not None
    assert by_line.sites[0].size_diff_bytes >= 2 * COUNT * SIZE
    by_tb = memguard.diff(before, after, by="traceback", include=[__file__])
    assert by_tb.sites is not None
    callers = {line_of("# CALLER ONE"), line_of("# CALLER TWO")}
    found = [{f.lineno for f in d.traceback} & callers for d in by_tb.sites[:2]]
    assert sorted(map(sorted, found)) == [[min(callers)], [max(callers)]]
    assert all(d.traceback[-1].lineno == line_of("# ALLOCATE") for d in by_tb.sites[:2])
    text = render(by_tb, "text", width=100)
    assert f" <- test_snapshot.py:{line_of('# CALLER ONE')} <- " in text
    by_file = memguard.diff(before, after, by="filename", include=[__file__])
    assert [d.where for d in by_file.sites or ()][:1] == [__file__]
    del first, second


def test_descriptors_and_threads(traced: _tracing.PeakWindow, tmp_path: Path) -> None:
    before = memguard.snapshot(census=False)
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait, name="snapshot-test-worker")
    worker.start()
    path = tmp_path / "held-open.txt"
    stream = path.open("w")
    try:
        after = memguard.snapshot(census=False)
    finally:
        stream.close()
        stop.set()
        worker.join()
    diff = memguard.diff(before, after)
    assert diff.threads_started == ("snapshot-test-worker",)
    assert [entry.split(" -> ")[1] for entry in diff.fds_opened] == [str(path)]


def test_without_tracing_sites_are_absent_not_zero() -> None:
    assert not tracemalloc.is_tracing()
    snap = memguard.snapshot("cold")
    assert snap.sites is None
    assert snap.traced_bytes is None
    assert "tracemalloc was not tracing" in (snap.reason("sites") or "")
    assert snap.types is not None
    assert "absent: tracemalloc was not tracing" in render(snap, "text")
    diff = memguard.diff(snap, memguard.snapshot(census=False))
    assert diff.sites is None
    assert diff.types is None
    assert diff.reason("types") == "the object census was switched off (census=False)"


def test_snapshot_holds_no_user_objects(traced: _tracing.PeakWindow) -> None:
    class Precious:
        pass

    thing = Precious()
    ref = weakref.ref(thing)
    snap = memguard.snapshot()
    assert snap.types is not None
    assert dict(snap.types)[f"{__name__}.test_snapshot_holds_no_user_objects.<locals>.Precious"] \
        == 1
    del thing
    gc.collect()
    assert ref() is None
    assert snap.types  # the snapshot is alive, the object is gone


def test_snapshot_work_stays_out_of_open_peaks(traced: _tracing.PeakWindow) -> None:
    with memguard.limit(mb=100) as guard:
        snap = memguard.snapshot()
    # The census and the trace walk allocate megabytes; only the snapshot
    # value itself, which the block keeps, and the reads of /proc (done
    # outside memguard's exclusion, which must not hide other threads'
    # spikes while the GIL is released) may show in the block's peak.
    assert guard.report is not None
    kept = guard.report.end_above_start_bytes
    assert kept > 0
    assert guard.peak_above_start_bytes <= kept + 64 * 1024, (guard.peak_above_start_bytes, kept)
    assert snap.sites


def test_real_snapshot_round_trips_through_files(traced: _tracing.PeakWindow,
                                                 tmp_path: Path) -> None:
    snap = memguard.snapshot("saved")
    for name in ("snap.json", "snap.json.gz"):
        assert memguard.load(snap.save(tmp_path / name)) == snap
    assert (tmp_path / "snap.json.gz").stat().st_size < (tmp_path / "snap.json").stat().st_size


def test_diff_sites_show_their_source_line(traced: _tracing.PeakWindow) -> None:
    before = memguard.snapshot("before", census=False)
    data = allocate()
    after = memguard.snapshot("after", census=False)
    diff = memguard.diff(before, after)
    assert diff.sites is not None
    source = "return [bytearray(SIZE) for _ in range(COUNT)]  # ALLOCATE"
    assert diff.sites[0].source == source
    assert str(diff.sites[0]).endswith(f"  {source}")
    for form in ("text", "markdown", "html"):
        shown = render(diff, form, width=120) if form == "text" else render(diff, form)
        assert "bytearray(SIZE) for" in shown, form  # Markdown escapes the [ and the _
    # In a narrow terminal the source line goes under its row, keeping the place.
    narrow = render(diff, "text", width=80).splitlines()
    at = next(i for i, line in enumerate(narrow) if f":{line_of('# ALLOCATE')}" in line)
    assert max(map(len, narrow)) <= 80
    assert narrow[at + 1].strip() == source
    # The snapshot keeps the text: a file read elsewhere still shows it.
    assert after.sites is not None
    assert any(site.source == source for site in after.sites)
    del data


FIRST_DIFF = """\
import json, sys, tracemalloc
import memguard
from memguard.report import render

cache = []
tracemalloc.start(int(sys.argv[1]))
try:
    before = memguard.snapshot("before")
    cache.extend(bytearray(10_000) for _ in range(100))  # USER
    after = memguard.snapshot("after")
finally:
    tracemalloc.stop()
change = memguard.diff(before, after)
json.dump({"sites": [[s.filename, s.lineno, s.size_diff_bytes, s.source]
                     for s in change.sites],
           "traced": change.traced_diff_bytes,
           "types": [[t.name, t.count_diff] for t in change.types],
           "text": render(change, "text", width=100)}, sys.stdout)
"""


@pytest.mark.parametrize("nframes", [1, 10])
def test_a_first_diff_shows_only_the_user_s_site(tmp_path: Path, nframes: int) -> None:
    """The getting-started example in a fresh process: memguard's own first-call
    imports and caches are in neither the sites nor the figures of the diff."""
    script = tmp_path / "first.py"
    script.write_text(FIRST_DIFF)
    done = subprocess.run([sys.executable, str(script), str(nframes)], capture_output=True,
                          text=True, timeout=120, check=True, cwd=tmp_path)
    found = json.loads(done.stdout)
    user = [site for site in found["sites"] if site[0] == str(script)]
    others = [site for site in found["sites"] if site[0] != str(script)]
    [(_, lineno, size, source)] = user
    assert lineno == 9
    assert source == "cache.extend(bytearray(10_000) for _ in range(100))  # USER"
    # 100 bytearrays of 10,000 bytes (object and buffer) and the list's growth.
    assert 100 * 10_000 <= size <= 100 * 10_100 + 2048
    # What else changed is memguard's own objects in flight during each walk
    # (a context manager, an isinstance cache): a few hundred bytes either way.
    assert sum(abs(site[2]) for site in others) < 1024, others
    # The traced figure is the program's, as the rows are: the first
    # snapshot's own records (174 KiB of them) are in neither.
    assert size - 1024 <= found["traced"] <= size + 1024, found["traced"]
    # Nor does the census count them (933 sites and their strings were +3,045 objects).
    assert not [t for t in found["types"] if t[0].startswith("memguard.")], found["types"]
    assert sum(abs(t[1]) for t in found["types"]) < 200, found["types"]
    assert "sites changed" in found["text"]
    assert found["text"].count("\n  ") < 30


def test_real_snapshot_text_fits_80_columns(traced: _tracing.PeakWindow) -> None:
    text = render(memguard.snapshot("here"), "text", width=80)
    assert max(map(len, text.splitlines())) <= 80
    assert text.startswith('memguard snapshot "here"\n')
