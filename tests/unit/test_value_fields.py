"""A damaged field inside a valid file is refused, naming the file and the field (issue 14).

Each case takes a real value of one kind, writes it as memguard does,
damages one field of the JSON, and reads it back through the loader.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _report_values as values
import pytest

from memguard.exceptions import SnapshotFormatError
from memguard.values.files import dumps, load, loads, save
from memguard.values.run import RunReport
from memguard.values.timeline import Timeline
from memguard.values.watch import WatchReport


def _run() -> RunReport:
    return RunReport(command="a.py", argv=("a.py",), exit_code=0, duration_seconds=0.05,
                     timeline=values.timeline())


def _set(path: tuple[Any, ...], new: Any) -> Callable[[dict[str, Any]], None]:
    def damage(data: dict[str, Any]) -> None:
        target: Any = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = new
    return damage


CASES = [
    ("timeline", values.timeline, _set(("samples",), [[1, 2, 3]]),
     "samples[0].time_seconds is 1.0 s, after the timeline's end (0.05 s)"),
    ("timeline", values.timeline, _set(("samples", 1, 1), -5),
     "samples[1].traced_bytes is -5; it cannot be negative"),
    ("timeline", values.timeline, _set(("samples", 1, 0), 0.04),
     "samples[2].time_seconds is 0.02 s, before the sample before it (0.04 s)"),
    ("timeline", values.timeline, _set(("marks", 0, 1), 9.0),
     "marks[0].time_seconds is 9.0 s, after the timeline's end"),
    ("snapshot", values.after, _set(("traced_bytes",), -1),
     "traced_bytes is -1; it cannot be negative"),
    ("snapshot", values.after, _set(("sites", 0, 2), -1089536),
     "sites[0].size_bytes is -1089536; it cannot be negative"),
    ("diff", values.diff, _set(("elapsed_seconds",), math.nan),
     "elapsed_seconds is float nan; it must be a finite number"),
    ("limit", values.limit_report, _set(("duration_seconds",), -0.25),
     "duration_seconds is -0.25; it cannot be negative"),
    ("limit", values.limit_report, _set(("sites_status",), "maybe"),
     "sites_status is 'maybe'; it must be one of"),
    ("leak", values.leak_report, _set(("duration_seconds",), math.inf),
     "duration_seconds is float inf; it must be a finite number"),
    ("run", _run, _set(("timeline", "samples"), [[1, 2, 3]]),
     "timeline.samples[0].time_seconds is 1.0 s, after the timeline's end"),
    ("run", _run, _set(("duration_seconds",), -1.0),
     "duration_seconds is -1.0; it cannot be negative"),
    # found by the hostile-file test: a start no calendar can print loaded, then
    # failed in time.gmtime() when printed
    ("timeline", values.timeline, _set(("started_at",), 6.77680361916768e16),
     "started_at is 6.77680361916768e+16; a moment is seconds since 1970, between the years"),
    ("snapshot", values.after, _set(("timestamp",), -1e12),
     "timestamp is -1000000000000.0; a moment is seconds since 1970"),
    ("watch", lambda: WatchReport(label="t", watched=1, search_seconds=0.5),
     _set(("search_seconds",), -0.5), "search_seconds is -0.5; it cannot be negative"),
]


@pytest.mark.parametrize(("kind", "make", "damage", "message"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_a_damaged_field_is_refused_naming_file_and_field(
        tmp_path: Path, kind: str, make: Callable[[], Any],
        damage: Callable[[dict[str, Any]], None], message: str) -> None:
    value = make()
    target = tmp_path / f"{kind}.json"
    save(value, target)
    assert load(target) == value  # the undamaged file reads back whole
    envelope = json.loads(target.read_text())
    assert envelope["kind"] == kind
    damage(envelope["data"])
    target.write_text(json.dumps(envelope))
    with pytest.raises(SnapshotFormatError) as refused:
        load(target)
    assert refused.value.path == str(target)
    assert refused.value.reason.startswith(f"damaged {kind}: ")
    assert message in refused.value.reason


def test_the_issue_example_through_the_command_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from memguard.cli import main

    target = tmp_path / "t.json"
    save(values.timeline(), target)
    envelope = json.loads(target.read_text())
    envelope["data"]["samples"] = [[1, 2, 3]]
    target.write_text(json.dumps(envelope))
    assert main(["report", str(target)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (f"memguard: cannot read '{target}': damaged timeline: "
                            f"samples[0].time_seconds is 1.0 s, after the timeline's end "
                            f"(0.05 s)\n")


def test_signed_figures_may_be_negative() -> None:
    diff = values.diff()
    shrunk = json.loads(dumps(diff))
    shrunk["data"]["traced_diff_bytes"] = -1062400
    shrunk["data"]["elapsed_seconds"] = -2.5  # two files compared in the other order
    # what the sites leave out by name shrank (memguard's own work between the two)
    shrunk["data"]["left_out"] = [{"name": "memguard", "size_bytes": -3568, "count": -12}]
    again = loads(json.dumps(shrunk))
    assert (again.traced_diff_bytes, again.elapsed_seconds) == (-1062400, -2.5)
    assert (again.left_out[0].size_bytes, again.left_out[0].count) == (-3568, -12)
    # ... while a snapshot's remainder is a size, never negative
    snapshot = json.loads(dumps(values.after()))
    snapshot["data"]["sites_left_out"] = [{"name": "memguard", "size_bytes": -1, "count": 1}]
    with pytest.raises(SnapshotFormatError, match="cannot be negative"):
        loads(json.dumps(snapshot))
    assert isinstance(loads(dumps(Timeline(interval_seconds=0.01, duration_seconds=0.0))),
                      Timeline)
