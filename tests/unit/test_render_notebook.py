"""The notebook fragment: one element, inline styles, nothing a sanitizer strips."""

from __future__ import annotations

import base64
import re
from dataclasses import replace

import _report_values as values
import pytest

from memguard.report.notebook import MAX_CHART_BYTES, render_notebook
from memguard.values.site import add_location_namer

BANNED = ("<iframe", "<script", "<style", "<html", "<head", "<meta", "<body", "<svg", "<link",
          "<!doctype")


@pytest.mark.parametrize("name", ["before", "diff", "timeline", "limit_report", "leak_report"])
def test_every_value_is_one_scoped_element(name: str) -> None:
    fragment = render_notebook(getattr(values, name)())
    root = re.match(r'<div class="memguard-output memguard-(\w+) (memguard-\w+-[0-9a-f]+-\d+)" '
                    r'style="[^"]+">', fragment)
    assert root, fragment[:200]
    assert fragment.endswith("</div>")
    for banned in BANNED:
        assert banned not in fragment.lower(), banned
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", fragment)
    # Every element's style is its own; no class but the root's two names.
    assert re.findall(r'class="([^"]*)"', fragment) == [f"memguard-output memguard-{root[1]} "
                                                         f"{root[2]}"]
    # Two outputs of the same value never share the unique class.
    assert root[2] not in render_notebook(getattr(values, name)())


def test_leak_report_has_its_verdict_tables_chart_and_holder() -> None:
    fragment = render_notebook(values.leak_report())
    assert "color:#d1242f" in fragment.split("</tr>", 1)[0], "the verdict stands out"
    charts = re.findall(r'<img alt="(\w+) chart[^"]*" width="768" style="[^"]*" '
                        r'src="data:image/png;base64,([^"]+)">', fragment)
    assert [name for name, _ in charts] == ["growth", "top"]
    for _, data in charts:
        png = base64.b64decode(data)
        assert png.startswith(b"\x89PNG")
        assert len(png) <= MAX_CHART_BYTES
    assert "<b>Exact figures:</b> python +1.0 KiB per call" in fragment
    # The holder chain wraps instead of running past the cell.
    assert re.search(r'<pre style="[^"]*white-space:pre-wrap[^"]*">&lt;app\.Request object '
                     r"at 0x1&gt;\n  held by app\.handlers\.LOG\[-1\]</pre>", fragment)
    # Numbers right-aligned and never wrapped; headers never broken in a word.
    assert re.search(r'<td style="[^"]*text-align:right;white-space:nowrap">\+1\.0 KiB</td>',
                     fragment)
    assert all("white-space:nowrap" in th for th in re.findall(r"<th [^>]*>", fragment))


def test_charts_only_when_asked_and_never_for_snapshots_and_diffs() -> None:
    assert "<img" not in render_notebook(values.after())
    assert "<img" not in render_notebook(values.diff())
    assert "<img" in render_notebook(values.after(), charts=True)
    assert "<img" not in render_notebook(values.leak_report(), charts=False)


def test_text_is_escaped() -> None:
    report = replace(values.limit_report(), label="<script>alert(1)</script>")
    fragment = render_notebook(report)
    assert "<script" not in fragment
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in fragment


def test_sites_are_named_by_a_registered_namer() -> None:
    remove = add_location_namer(
        lambda filename, lineno: f"In [7], line {lineno}" if "loader" in filename
        else None)
    try:
        fragment = render_notebook(values.limit_report(), charts=False)
    finally:
        remove()
    assert ">In [7], line 40</td>" in fragment
    assert "/srv/app/loader.py:40" in render_notebook(values.limit_report(), charts=False)


def test_bad_top_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="top must be a positive int, got 0"):
        render_notebook(values.after(), top=0)
    with pytest.raises(TypeError, match="cannot render str"):
        render_notebook("not a value")


def test_a_chart_over_the_size_bound_is_drawn_again_smaller(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from memguard.report import notebook

    def sizes() -> list[int]:
        fragment = render_notebook(values.leak_report())
        return [len(base64.b64decode(data))
                for data in re.findall(r'src="data:image/png;base64,([^"]+)"', fragment)]

    full = sizes()
    bound = min(full) - 1
    monkeypatch.setattr(notebook, "MAX_CHART_BYTES", bound)
    smaller = sizes()
    assert all(size <= bound for size in smaller), (full, smaller, bound)
    # Still the same charts, and still sharp enough to read (not a thumbnail).
    assert len(smaller) == len(full)
    assert all(size > bound // 4 for size in smaller)
