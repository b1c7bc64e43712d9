"""WatchReport and Survivor: fabricated values, rendered text compared in full."""

from __future__ import annotations

import dataclasses
import json

import pytest

from memguard.values.watch import Survivor, WatchReport

BOUND = Survivor(
    name="session",
    type_name="app.Session",
    object_repr="<app.Session object at 0x7f00>",
    chain=("app.registry.HANDLERS", "['click']", "[3]", "<bound method Session.on_click>",
           "Session"),
)
UNSEEN = Survivor(
    name="#2",
    type_name="bytearray",
    object_repr="bytearray(b'xxxxxxxx...')",
    note="no holder gc can see: kept by C code, by a reference count leak, or by a running "
         "frame's value stack",
)


def test_survivor_text() -> None:
    assert BOUND.holder == (
        "app.registry.HANDLERS['click'][3] -> <bound method Session.on_click> -> Session"
    )
    assert str(BOUND) == (
        "session (app.Session) held by app.registry.HANDLERS['click'][3] -> "
        "<bound method Session.on_click> -> Session"
    )
    assert UNSEEN.holder == UNSEEN.note
    assert Survivor(name="#1", type_name="X", object_repr="<X>").holder == "no holder found"


def test_report_verdicts() -> None:
    assert WatchReport(label="t", watched=1).summary == "t: the watched object was freed"
    assert WatchReport(label="t", watched=3).summary == "t: all 3 watched objects were freed"
    leaked = WatchReport(label="t", watched=3, survivors=(BOUND,))
    assert leaked.summary == "t: 1 of 3 watched objects survived gc.collect()"
    assert (leaked.leaked, leaked.collected) == (True, 2)
    assert WatchReport(label="t", watched=2).message() == "t: all 2 watched objects were freed"


def test_report_message_in_full() -> None:
    report = WatchReport(label="tests/test_app.py:12", watched=2, survivors=(BOUND, UNSEEN))
    assert report.message() == (
        "2 of 2 watched objects survived gc.collect() in tests/test_app.py:12:\n"
        "  session: app.Session <app.Session object at 0x7f00>\n"
        "    held by app.registry.HANDLERS['click'][3] -> <bound method Session.on_click>"
        " -> Session\n"
        "  #2: bytearray bytearray(b'xxxxxxxx...')\n"
        "    held by no holder gc can see: kept by C code, by a reference count leak, or by a"
        " running frame's value stack"
    )
    assert report.message(top=1).splitlines()[-1] == "  ... 1 more"
    assert report.message(top=0).splitlines() == [
        "2 of 2 watched objects survived gc.collect() in tests/test_app.py:12:",
        "  ... 2 more",
    ]


def test_round_trip_through_json() -> None:
    report = WatchReport(label="x", watched=4, survivors=(BOUND, UNSEEN), search_seconds=0.25)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["kind"] == "watch"
    assert data["leaked"] is True
    assert WatchReport.from_dict(data) == report
    assert Survivor.from_dict(BOUND.to_dict()) == BOUND


def test_values_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        BOUND.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        WatchReport("x", 1)  # type: ignore[call-arg]


def test_markdown_for_notebooks() -> None:
    from memguard.report import render

    report = WatchReport(label="cell 3", watched=2, survivors=(BOUND,))
    assert report._repr_markdown_() == render(report, "markdown")
    assert (
        "| session | app.Session | &lt;app.Session object at 0x7f00&gt; | "
        "app.registry.HANDLERS\\['click'\\]\\[3\\] -&gt; &lt;bound method Session.on\\_click&gt; "
        "-&gt; Session |"
    ) in report._repr_markdown_()
    piped = Survivor(name="a|b", type_name="X", object_repr="`x`", chain=("M.D", "['|']", "X"))
    assert WatchReport(label="t", watched=1, survivors=(piped,))._repr_markdown_().endswith(
        "| a\\|b | X | \\`x\\` | M.D\\['\\|'\\] -&gt; X |\n"
    )
    assert "| verdict | t: the watched object was freed |" in WatchReport(
        label="t", watched=1)._repr_markdown_()
