"""Every value prints as its full text report and has a one-line repr; guards read well too.

Issue 14: ``print(diff)`` gave one line and ``repr(diff)`` 144,147 characters.
Now, as pandas and pstats users expect, ``print(value)`` is the text report
(the one the command line and the notebook show: one rendering path) and
``repr(value)`` one short line, for every kind memguard declares.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from _report_values import diff, leak_report, limit_report, timeline

import memguard
from memguard.report import render
from memguard.report.notebook import render_notebook
from memguard.values._value import KINDS
from memguard.values.lineprofile import LineProfile, LineRow
from memguard.values.run import RunReport
from memguard.values.site import AllocationSite
from memguard.values.watch import Survivor, WatchReport


def _values() -> dict[str, Any]:
    many = tuple(AllocationSite(filename=f"/srv/app/module_{i}.py", lineno=i, size_bytes=1000 + i,
                                count=i + 1) for i in range(2000))
    big = memguard.Snapshot(label="big", timestamp=0.0, traced_bytes=sum(s.size_bytes
                                                                          for s in many),
                            sites=many)
    return {
        "snapshot": big,
        "diff": diff(),
        "timeline": timeline(),
        "limit": limit_report(),
        "leak": leak_report(),
        "watch": WatchReport(label="t", watched=2, survivors=(
            Survivor(name="s", type_name="app.Session", object_repr="<Session>",
                     chain=("app.REGISTRY", "[0]", "Session")),)),
        "lineprofile": LineProfile(function="load", filename="app.py", first_lineno=1, calls=1,
                                   rows=(LineRow(lineno=1, source="def load():"),
                                         LineRow(lineno=2, source="    return bytes(10)",
                                                 allocated_bytes=43, retained_bytes=43,
                                                 peak_share_bytes=43, hits=1)),
                                   peak_bytes=43, retained_total_bytes=43),
        "run": RunReport(command="app.py", argv=("app.py",), exit_code=0, duration_seconds=1.0,
                         timeline=timeline()),
    }


def test_there_is_a_value_of_every_declared_kind() -> None:
    assert sorted(_values()) == sorted(KINDS)
    for kind, value in _values().items():
        assert type(value) is KINDS[kind]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_print_shows_the_text_report_and_repr_is_one_short_line(kind: str) -> None:
    value = _values()[kind]
    text = str(value)
    assert text == render(value, "text").rstrip("\n")
    assert text.count("\n") >= 2, text
    short = repr(value)
    assert short == f"<{type(value).__name__} {value.summary}>"
    assert "\n" not in short
    assert len(short) <= 160, short


def test_a_big_value_has_a_short_repr_and_a_bounded_print() -> None:
    snapshot = _values()["snapshot"]
    assert len(repr(snapshot)) < 100
    # The text report lists the top sites and counts the rest, never all 2,000.
    assert "1,990 smaller sites" in str(snapshot)
    assert len(str(snapshot).splitlines()) < 40


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_notebook_forms_come_from_the_report_layer(kind: str) -> None:
    value = _values()[kind]
    assert value._repr_markdown_() == render(value, "markdown")
    # The notebook fragment (memguard.report.notebook), the same but for the
    # class unique to each output.
    def unique(html: str) -> str:
        return re.sub(r"memguard-\w+-[0-9a-f]+-\d+\b", "memguard-ID", html)

    assert unique(value._repr_html_()) == unique(render_notebook(value))


def test_guards_have_a_readable_repr() -> None:
    guard = memguard.limit(mb=100, label="load")
    assert repr(guard) == "<memguard.limit(95.4 MiB, source='python', label='load') not run yet>"
    with guard:
        assert repr(guard) == ("<memguard.limit(95.4 MiB, source='python', label='load') "
                               "running>")
    assert repr(guard).startswith("<memguard.limit(95.4 MiB, source='python', label='load') "
                                  "last: load: peak ")
    watcher = memguard.watch(label="w")
    assert repr(watcher) == "<memguard.watch(0 objects, label='w') not run yet>"
    recorder = memguard.record(interval=0.005, rss=False)
    assert repr(recorder) == "<memguard.record(interval=0.005 s, rss=False) not run yet>"
    with recorder as recording:
        assert repr(recording) == "<memguard.Recording running>"
    assert repr(recording).startswith("<memguard.Recording timeline: ")
    tracker = memguard.track_leaks(signals=["python"])
    assert repr(tracker) == "<memguard.track_leaks(signals=python) not run yet>"
