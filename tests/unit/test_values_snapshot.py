"""Snapshot and Timeline values: round trips, one-line forms, absent figures."""

from __future__ import annotations

import os
import tracemalloc

from _report_values import after, timeline, untraced

import memguard
from memguard.values.snapshot import Snapshot, group_traces
from memguard.values.timeline import Mark, Sample, Timeline


def test_snapshot_round_trip_keeps_every_field() -> None:
    snap = after()
    assert Snapshot.from_dict(snap.to_dict()) == snap
    cold = untraced()
    assert Snapshot.from_dict(cold.to_dict()) == cold


def test_snapshot_str_and_reasons() -> None:
    assert after().summary == ("snapshot after: traced 1.1 MiB in 5 sites, 2621 objects, "
                            "RSS 52.0 MiB")
    cold = untraced()
    assert cold.summary == "snapshot cold: RSS 10.0 MiB"
    assert cold.sites is None
    assert cold.traced_bytes is None
    assert cold.types is None
    assert cold.reason("sites") == "tracemalloc was not tracing"
    assert cold.reason("rss_bytes") is None


def test_top_sites_leave_out_memguard_frames() -> None:
    own = os.path.join(os.path.dirname(memguard.__file__), "report", "text.py")
    extra = memguard.AllocationSite(filename=own, lineno=1, size_bytes=10**9, count=1)
    snap = Snapshot(timestamp=0.0, sites=(*(after().sites or ()), extra))
    assert [s.lineno for s in snap.top_sites(2)] == [12, 30]
    assert snap.top_sites(1, internal=True)[0].filename == own
    assert untraced().top_sites() == ()


def test_sites_are_written_as_compact_rows() -> None:
    data = after().to_dict()
    rows = data["sites"]
    assert rows[0] == ["/srv/app/cache.py", 12, 1_089_536, 266, [], ""]
    # Rows written before sites kept their source line (five items) still load.
    old = Snapshot.from_dict({**data, "sites": [row[:5] for row in rows]})
    assert old.sites == after().sites


def test_group_traces_sums_blocks_per_traceback() -> None:
    raw = tracemalloc.Snapshot([(0, 100, (("a.py", 1),), 1), (0, 50, (("a.py", 1),), 1),
                                (0, 10, (("b.py", 2), ("a.py", 9)), 2)], 2)
    sites = group_traces(raw)
    assert [(s.filename, s.lineno, s.size_bytes, s.count) for s in sites] == [
        ("a.py", 1, 150, 2), ("b.py", 2, 10, 1)]
    assert [str(f) for f in sites[1].traceback] == ["a.py:9", "b.py:2"]
    assert sites[0].traceback == ()


def test_timeline_round_trip_and_peaks() -> None:
    tl = timeline()
    assert Timeline.from_dict(tl.to_dict()) == tl
    assert tl.traced_peak_above_start_bytes == 2_599_000
    assert tl.rss_peak_above_start_bytes == 4 * 1024**2
    assert tl.summary == "timeline load: 6 samples over 0.050 s, traced peak 2.5 MiB above start"
    assert str(tl.marks[0]) == "parsed at 0.015 s (traced 976.6 KiB)"
    assert str(Sample(0.5, None, 2048)) == "0.500 s: RSS 2.0 KiB"
    assert Mark("x", 0.0).traced_bytes is None


def test_timeline_without_tracing_has_no_peak() -> None:
    tl = Timeline(interval_seconds=0.1, duration_seconds=1.0,
                  absent=(("traced_bytes", "not traced"),))
    assert tl.traced_peak_above_start_bytes is None
    assert tl.rss_peak_above_start_bytes is None
    assert tl.reason("traced_bytes") == "not traced"


def test_tracebacks_survive_a_round_trip_and_a_diff() -> None:
    from memguard.values.diff import SnapshotDiff, compare
    from memguard.values.site import AllocationSite, Frame

    path = (Frame("/srv/app/main.py", 5), Frame("/srv/app/util.py", 2))
    snap = Snapshot(timestamp=1.0, traceback_limit=2, sites=(
        AllocationSite(filename="/srv/app/util.py", lineno=2, size_bytes=64, count=1,
                       traceback=path),))
    again = Snapshot.from_dict(snap.to_dict())
    assert again == snap
    assert again.sites is not None
    assert again.sites[0].traceback == path
    diff = compare(Snapshot(timestamp=0.0, sites=()), again, by="traceback")
    assert SnapshotDiff.from_dict(diff.to_dict()) == diff
    assert diff.sites is not None
    assert diff.sites[0].traceback == path
