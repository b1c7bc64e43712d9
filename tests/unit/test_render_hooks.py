"""Notebook hooks and what render() accepts besides the values themselves."""

from __future__ import annotations

import io
from pathlib import Path

import _report_values as values
import pytest

from memguard.exceptions import MemoryLimitExceeded
from memguard.report import render, render_to, write


@pytest.mark.parametrize("name", ["after", "diff", "timeline"])
def test_values_display_themselves_in_notebooks(name: str) -> None:
    value = getattr(values, name)()
    assert value._repr_markdown_() == render(value, "markdown")
    fragment = value._repr_html_()
    assert fragment.startswith('<div class="memguard-output ')
    assert "<!DOCTYPE" not in fragment
    assert "<table" in fragment


def test_snapshot_html_repr_has_no_charts() -> None:
    # Notebooks show many snapshots; charts are one render() away.
    assert "<img" not in values.after()._repr_html_()


def test_an_exception_renders_as_its_report() -> None:
    report = values.limit_report()
    error = MemoryLimitExceeded("over", peak_above_start_bytes=report.peak_above_start_bytes,
                                limit_bytes=report.limit_bytes, source="python",
                                details=report)
    assert render(error, "text") == render(report, "text")


def test_render_to_writes_to_the_stream() -> None:
    out = io.StringIO()
    render_to(values.diff(), out, "markdown")
    assert out.getvalue() == render(values.diff(), "markdown")


def test_top_limits_the_rows() -> None:
    text = render(values.diff(), "text", top=2, width=80)
    assert "/srv/app/models.py:9" not in text
    # The rows left out are one row of their own, and the table adds up.
    assert "  +5.5 KiB               +42          3 smaller sites\n" in text
    assert "  +1.0 MiB              +299          total\n" in text
    assert "     +12     12  1 more types\n    +518  1,721  total\n" in text
    with pytest.raises(ValueError, match="top must be a positive int"):
        render(values.diff(), "text", top=0)


def test_text_files_are_80_columns_whatever_the_terminal(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    path = write(values.after(), tmp_path / "snapshot.txt")
    assert path.read_text() == render(values.after(), "text", width=80)


def test_the_report_package_does_not_import_matplotlib() -> None:
    import subprocess
    import sys

    code = ("import sys, memguard.report as r; from memguard.values.timeline import Timeline; "
            "tl = Timeline(interval_seconds=0.1, duration_seconds=0.0); "
            "[r.render(tl, f) for f in ('text', 'markdown', 'json')]; "
            "r.render(tl, 'html', charts=False); "
            "print(sorted(m for m in sys.modules if m.startswith('matplotlib')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.stdout.strip() == "[]", done.stderr


def test_line_profiles_render_without_importing_their_module_first() -> None:
    from memguard.values.lineprofile import LineProfile

    profile = LineProfile(function="f", filename="a.py", first_lineno=1, rows=())
    assert render(profile, "text").startswith(profile.summary + "\n")
