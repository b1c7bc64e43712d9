"""LineProfile and LineRow on fabricated values: text, dicts, rendering."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

import memguard
from memguard.report import lines as report_lines
from memguard.report import render
from memguard.values import files
from memguard.values.lineprofile import NATIVE_NOTE, LineProfile, LineRow, row_sort_key


def make_profile(**changes: object) -> LineProfile:
    rows = (
        LineRow(lineno=10, source="def load(n):"),
        LineRow(lineno=11, source="    data = bytearray(n)", allocated_bytes=1_048_633,
                retained_bytes=0, peak_share_bytes=1_048_633, hits=1),
        LineRow(lineno=12, source="    keep = [0] * 1000", allocated_bytes=8_056,
                retained_bytes=8_056, peak_share_bytes=8_056, hits=1),
        LineRow(lineno=13, source="    del data", allocated_bytes=0, retained_bytes=0,
                peak_share_bytes=0, hits=1),
        LineRow(lineno=14, source="    return keep", hits=1),
    )
    fields: dict[str, object] = {
        "function": "load", "filename": "app.py", "first_lineno": 10, "rows": rows,
        "calls": 1, "peak_bytes": 1_056_689, "retained_total_bytes": 8_056,
        "duration_seconds": 0.25, "nframes": 16,
    }
    fields.update(changes)
    return LineProfile(**fields)  # type: ignore[arg-type]


def test_row_str_and_sort_key() -> None:
    row = LineRow(lineno=3, source="x", allocated_bytes=2048, retained_bytes=-64,
                  peak_share_bytes=0, hits=2)
    assert str(row) == "line 3: allocated 2.0 KiB, retained -64 B, at peak 0 B, 2 hits"
    rows = [LineRow(lineno=5, source="", allocated_bytes=10),
            LineRow(lineno=2, source="", allocated_bytes=10),
            LineRow(lineno=1, source="", allocated_bytes=99)]
    assert [r.lineno for r in sorted(rows, key=row_sort_key)] == [1, 2, 5]


def test_totals_and_lookups() -> None:
    profile = make_profile()
    assert profile.allocated_bytes == 1_048_633 + 8_056
    assert profile.retained_bytes == 8_056
    assert profile.unattributed_bytes == 0
    assert profile.row(12).retained_bytes == 8_056
    with pytest.raises(KeyError, match="line 99 is not in load"):
        profile.row(99)
    assert [r.lineno for r in profile.top(5)] == [11, 12]
    assert profile.summary == ("load (app.py:10): 1 call, allocated 1.0 MiB, peak 1.0 MiB, "
                            "retained 7.9 KiB")


def test_table_in_full() -> None:
    profile = make_profile(retained_total_bytes=9_080, blind_spots=(NATIVE_NOTE,))
    assert profile.table() == "\n".join([
        # "retained" is what the rows add up to; the rest is named, not hidden.
        "load (app.py:10): 1 call, allocated 1.0 MiB, peak 1.0 MiB, retained 7.9 KiB in its "
        "lines (8.9 KiB in all, +1.0 KiB not traced to a line)",
        "Line  Hits   Allocated    Retained     At peak  Source",
        "  10                                            def load(n):",
        "  11     1     1.0 MiB         0 B     1.0 MiB      data = bytearray(n)",
        "  12     1     7.9 KiB     7.9 KiB     7.9 KiB      keep = [0] * 1000",
        "  13     1         0 B         0 B         0 B      del data",
        "  14     1         0 B         0 B         0 B      return keep",
        "note: +1.0 KiB retained in the end could not be traced back to a line (allocated "
        "more than 16 frames deep, or the net of frees and allocations elsewhere)",
        f"note: {NATIVE_NOTE}",
    ])


def test_table_cuts_long_source_and_lists_callees() -> None:
    callee = LineProfile(function="helper", filename="lib.py", first_lineno=1, calls=3,
                         rows=(LineRow(lineno=2, source="    return b'x' * 100",
                                       allocated_bytes=133, hits=3),),
                         blind_spots=())
    profile = make_profile(callees=(callee,), blind_spots=())
    text = profile.table(source_width=12)
    assert "  11     1     1.0 MiB         0 B     1.0 MiB      data ..." in text.splitlines()
    assert text.splitlines()[-3:] == [
        "helper (lib.py:1): 3 calls, allocated 133 B, peak 0 B, retained 0 B",
        "Line  Hits   Allocated    Retained     At peak  Source",
        "   2     3       133 B         0 B         0 B      retur...",
    ]
    assert any("expanded callees" in note for note in profile.notes())


def test_native_allocations_are_stated_by_default() -> None:
    profile = LineProfile(function="f", filename="x.py", first_lineno=1, rows=())
    assert profile.blind_spots == (NATIVE_NOTE,)
    assert "native allocations are not seen" in profile.table()


def test_print_shows_the_table_and_repr_is_one_line() -> None:
    profile = make_profile()
    assert str(profile) == profile.table() == report_lines.to_text(profile)
    assert str(profile).splitlines()[1].split() == ["Line", "Hits", "Allocated", "Retained",
                                                     "At", "peak", "Source"]
    assert repr(profile) == f"<LineProfile {profile.summary}>"


def test_dict_round_trip_through_json() -> None:
    callee = LineProfile(function="helper", filename="lib.py", first_lineno=1,
                         rows=(LineRow(lineno=2, source="x", allocated_bytes=5, hits=1),))
    profile = make_profile(callees=(callee,))
    data = json.loads(json.dumps(profile.to_dict()))
    assert data["kind"] == "lineprofile"
    assert LineProfile.from_dict(data) == profile
    counted = dataclasses.replace(profile, method="counter", nframes=0)
    assert LineProfile.from_dict(json.loads(json.dumps(counted.to_dict()))) == counted
    older = {k: v for k, v in data.items() if k != "method"}  # files from 0.1
    assert LineProfile.from_dict(older).method == "tracemalloc"


def test_from_dict_refuses_other_kinds_and_newer_versions() -> None:
    data = make_profile().to_dict()
    with pytest.raises(ValueError, match="'leak', not a line profile"):
        LineProfile.from_dict({**data, "kind": "leak"})
    with pytest.raises(ValueError, match="version 99 is newer"):
        LineProfile.from_dict({**data, "version": 99})
    with pytest.raises(ValueError, match="method must be one of 'counter', 'tracemalloc', "
                                         "got 'guess'"):
        LineProfile.from_dict({**data, "method": "guess"})


def test_values_are_frozen() -> None:
    profile = make_profile()
    with pytest.raises(dataclasses.FrozenInstanceError):
        profile.calls = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        profile.rows[0].hits = 2  # type: ignore[misc]


def test_markdown_in_full() -> None:
    profile = make_profile(blind_spots=())
    assert report_lines.to_markdown(profile) == "\n".join([
        "**load** (`app.py:10`): 1 call, allocated 1.0 MiB, peak 1.0 MiB, retained 7.9 KiB",
        "",
        "| Line | Hits | Allocated | Retained | At peak | Source |",
        "| ---: | ---: | ---: | ---: | ---: | --- |",
        "| 10 |  |  |  |  | `def load(n):` |",
        "| 11 | 1 | 1.0 MiB | 0 B | 1.0 MiB | `data = bytearray(n)` |",
        "| 12 | 1 | 7.9 KiB | 7.9 KiB | 7.9 KiB | `keep = [0] * 1000` |",
        "| 13 | 1 | 0 B | 0 B | 0 B | `del data` |",
        "| 14 | 1 | 0 B | 0 B | 0 B | `return keep` |",
    ])
    assert profile._repr_markdown_() == render(profile, "markdown")


def test_html_escapes_and_lists_notes() -> None:
    profile = make_profile(function="<lambda>")
    html = report_lines.to_html(profile)
    assert "<b>&lt;lambda&gt;</b>" in html
    assert "<pre style=\"margin:0\">    data = bytearray(n)</pre>" in html
    assert "<li>native allocations are not seen" in html
    # In a notebook: the Source column left-aligned, its indentation kept.
    shown = profile._repr_html_()
    assert "memguard line profile: &lt;lambda&gt;" in shown
    assert re.search(r'<td style="[^"]*text-align:left;white-space:pre-wrap;[^"]*">'
                     r"    data = bytearray\(n\)</td>", shown), shown
    assert "native allocations are not seen" in shown


def test_plot_lines_draws_one_bar_per_line() -> None:
    pytest.importorskip("matplotlib")
    profile = make_profile()
    figure = report_lines.plot_lines(profile, metric="retained")
    (ax,) = figure.axes
    assert ax.get_title() == "load: retained by line"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["12: keep = [0] * 1000"]
    figure = report_lines.plot_lines(profile, top=1)
    assert [t.get_text() for t in figure.axes[0].get_yticklabels()] == [
        "11: data = bytearray(n)"]
    with pytest.raises(ValueError, match="metric must be one of"):
        report_lines.plot_lines(profile, metric="rss")  # type: ignore[arg-type]
    html = report_lines.to_html(profile, chart=True)
    assert '<img alt="memory by line" src="data:image/png;base64,' in html


def test_saved_and_loaded_as_a_memguard_file(tmp_path: Path) -> None:
    profile = make_profile()
    path = files.save(profile, tmp_path / "profile.json.gz")
    assert memguard.load(path) == profile


def test_rendered_through_memguard_report() -> None:
    from memguard.report import render

    profile = make_profile(blind_spots=())
    text = render(profile, "text", width=100)
    assert text.splitlines()[0] == profile.summary
    assert any(line.split() == ["11", "1", "1.0", "MiB", "0", "B", "1.0", "MiB", "data", "=",
                                "bytearray(n)"] for line in text.splitlines())
    markdown = render(profile, "markdown")
    assert "| 12 | 1 | 7.9 KiB | 7.9 KiB | 7.9 KiB |" in markdown
    assert "memguard line profile: load" in render(profile, "html")
    assert json.loads(render(profile, "json"))["kind"] == "lineprofile"
