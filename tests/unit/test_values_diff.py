"""SnapshotDiff and compare() on hand-built snapshots: grouping, sorting, filters, absence."""

from __future__ import annotations

import dataclasses
import os

import pytest
from _report_values import after, before, site, untraced

import memguard
from memguard.values.diff import SiteDelta, SnapshotDiff, TypeDelta, compare
from memguard.values.site import Frame
from memguard.values.snapshot import Snapshot

MEMGUARD_FILE = os.path.join(os.path.dirname(memguard.__file__), "values", "snapshot.py")


def test_sites_by_line_sorted_by_absolute_change() -> None:
    diff = compare(before(), after())
    assert diff.sites == (
        SiteDelta(filename="/srv/app/cache.py", lineno=12, size_bytes=1_089_536,
                  size_diff_bytes=1_048_576, count=266, count_diff=256),
        SiteDelta(filename="/srv/app/new.py", lineno=30, size_bytes=8_192,
                  size_diff_bytes=8_192, count=1, count_diff=1),
        SiteDelta(filename="/usr/lib/python3.11/json/decoder.py", lineno=353, size_bytes=4_096,
                  size_diff_bytes=4_096, count=40, count_diff=40),
        SiteDelta(filename="/srv/app/models.py", lineno=9, size_bytes=3_072,
                  size_diff_bytes=2_048, count=5, count_diff=3),
        SiteDelta(filename="/srv/app/old.py", lineno=3, size_bytes=0,
                  size_diff_bytes=-512, count=0, count_diff=-1),
    )
    assert diff.sites_diff_bytes == 1_048_576 + 8_192 + 4_096 + 2_048 - 512


def test_unchanged_sites_and_types_are_left_out() -> None:
    diff = compare(before(), after())
    assert all(d.lineno != 7 for d in diff.sites or ())
    assert diff.types == (TypeDelta("app.Session", 259, 256), TypeDelta("dict", 1450, 250),
                          TypeDelta("bytes", 12, 12))


def test_totals_resources_and_threads() -> None:
    diff = compare(before(), after())
    assert diff.traced_diff_bytes == 1_106_944 - 44_544
    assert diff.rss_diff_bytes == 2 * 1024**2
    assert diff.uss_diff_bytes is None
    assert diff.reason("uss_bytes") == "process USS is not available: access denied"
    assert diff.fds_opened == ("5 -> /srv/data/a.db",)
    assert diff.fds_closed == ()
    assert diff.threads_started == ("worker-1",)
    assert diff.threads_ended == ()
    assert diff.elapsed_seconds == 2.5
    assert (diff.before, diff.after, diff.by) == ("before", "after", "lineno")


def test_group_by_filename_sums_lines() -> None:
    diff = compare(before(), after(), by="filename")
    by_file = {d.filename: (d.size_diff_bytes, d.count_diff, d.lineno) for d in diff.sites or ()}
    assert by_file["/srv/app/models.py"] == (2_048, 3, 0)
    assert by_file["/srv/app/cache.py"] == (1_048_576, 256, 0)
    assert str(diff.sites[0]) == "/srv/app/cache.py: 1.0 MiB (+1.0 MiB), 266 blocks (+256)"


def test_group_by_traceback_keeps_distinct_call_paths() -> None:
    path_a = (Frame("/srv/app/main.py", 5), Frame("/srv/app/util.py", 2))
    path_b = (Frame("/srv/app/main.py", 9), Frame("/srv/app/util.py", 2))
    old = Snapshot(timestamp=0.0, sites=(site("/srv/app/util.py", 2, 100, 1, path_a),
                                         site("/srv/app/util.py", 2, 100, 1, path_b)))
    new = Snapshot(timestamp=1.0, sites=(site("/srv/app/util.py", 2, 700, 7, path_a),
                                         site("/srv/app/util.py", 2, 100, 1, path_b)))
    by_tb = compare(old, new, by="traceback")
    assert by_tb.sites == (SiteDelta(filename="/srv/app/util.py", lineno=2, size_bytes=700,
                                     size_diff_bytes=600, count=7, count_diff=6,
                                     traceback=path_a),)
    by_line = compare(old, new, by="lineno")
    assert by_line.sites == (SiteDelta(filename="/srv/app/util.py", lineno=2, size_bytes=800,
                                       size_diff_bytes=600, count=8, count_diff=6),)


def test_include_and_exclude_patterns() -> None:
    only_app = compare(before(), after(), include="/srv/app/*", exclude=["*/old.py"])
    assert [d.filename for d in only_app.sites or ()] == [
        "/srv/app/cache.py", "/srv/app/new.py", "/srv/app/models.py"]
    assert (only_app.include, only_app.exclude) == (("/srv/app/*",), ("*/old.py",))


def test_memguard_frames_are_left_out_unless_asked() -> None:
    old = Snapshot(timestamp=0.0, sites=())
    new = Snapshot(timestamp=1.0, sites=(site(MEMGUARD_FILE, 10, 5_000, 5),
                                         site("<frozen importlib._bootstrap>", 241, 900, 3),
                                         site("/srv/app/a.py", 1, 10, 1)))
    assert [d.filename for d in compare(old, new).sites or ()] == ["/srv/app/a.py"]
    assert len(compare(old, new, internal=True).sites or ()) == 3


def test_absent_sites_stay_absent() -> None:
    diff = compare(untraced(), after())
    assert diff.sites is None
    assert diff.traced_diff_bytes is None
    assert diff.types is None
    assert diff.reason("sites") == "tracemalloc was not tracing"
    assert diff.rss_diff_bytes == 42 * 1024**2


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"by must be one of .* got 'line'"):
        compare(before(), after(), by="line")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="after must be a memguard Snapshot, not dict"):
        compare(before(), {})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="include must be file patterns"):
        compare(before(), after(), include=[3])  # type: ignore[list-item]


def test_round_trip_and_str() -> None:
    diff = compare(before(), after(), include=["/srv/*"])
    assert SnapshotDiff.from_dict(diff.to_dict()) == diff
    assert diff.summary == "diff before -> after: traced +1.0 MiB, RSS +2.0 MiB, 3 types changed"


def test_internal_is_kept_and_said() -> None:
    from memguard.report import render

    diff = compare(before(), after(), internal=True)
    assert diff.internal
    assert SnapshotDiff.from_dict(diff.to_dict()) == diff
    assert "the import machinery included" in render(diff, "text", width=80)


def test_a_site_whose_blocks_changed_but_not_its_bytes_is_listed() -> None:
    # 4 blocks of 512 B became 2 of 1,024 B on the same line: no byte changed,
    # the blocks did.
    old = dataclasses.replace(before(), sites=(site("/srv/app/pool.py", 5, 2_048, 4),))
    new = dataclasses.replace(after(), sites=(site("/srv/app/pool.py", 5, 2_048, 2),))
    assert compare(old, new).sites == (
        SiteDelta(filename="/srv/app/pool.py", lineno=5, size_bytes=2_048, size_diff_bytes=0,
                  count=2, count_diff=-2),
    )
