"""WatchReport through the report layer and the file loader."""

from __future__ import annotations

from pathlib import Path

import memguard
from memguard.report import render
from memguard.values.files import save
from memguard.values.watch import Survivor, WatchReport

REPORT = WatchReport(
    label="test_close",
    watched=3,
    survivors=(Survivor(name="#2", type_name="app.Session", object_repr="<Session 7>",
                        chain=("app.SESSIONS", "[0]", "Session")),),
    search_seconds=0.25,
)


def test_text_rendering_in_full() -> None:
    assert render(REPORT, "text") == (
        'memguard watch "test_close"\n'
        "verdict        test_close: 1 of 3 watched objects survived gc.collect()\n"
        "watched        3\n"
        "freed          2\n"
        "holder search  0.250 s\n"
        "\n"
        "Objects still alive after gc.collect()\n"
        "  each with the chain of references that holds it\n"
        "  object  type         repr         held by\n"
        "  #2      app.Session  <Session 7>  app.SESSIONS[0] -> Session\n"
    )


def test_html_has_the_survivor_table() -> None:
    page = render(REPORT, "html")
    assert "<table" in page
    assert "app.SESSIONS[0] -&gt; Session" in page


def test_no_survivors_has_no_table() -> None:
    clean = WatchReport(label="ok", watched=2)
    text = render(clean, "text")
    assert "all 2 watched objects were freed" in text
    assert "Objects still alive" not in text


def test_saved_watch_report_loads_back(tmp_path: Path) -> None:
    path = save(REPORT, tmp_path / "watch.json.gz")
    assert memguard.load(path) == REPORT


def test_limit_report_displays_in_notebooks_without_the_extension() -> None:
    report = memguard.LimitReport(label="block", source="python", method="tracemalloc",
                                  limit_bytes=1_000_000, peak_above_start_bytes=1_500_000)
    assert report._repr_markdown_() == render(report, "markdown")
    assert report._repr_html_().startswith('<div class="memguard-output memguard-limit ')
    assert "EXCEEDED by 488.3 KiB" in report._repr_html_()
    assert "EXCEEDED by 488.3 KiB" in report._repr_markdown_()


def test_a_run_renders_through_memguard_report_alone() -> None:
    from memguard.values.run import RunReport
    from memguard.values.timeline import Timeline

    run = RunReport(command="a.py", argv=("a.py",), exit_code=3, duration_seconds=1.0,
                    timeline=Timeline(interval_seconds=0.01, duration_seconds=1.0))
    text = render(run, "text")
    assert text.splitlines()[0] == 'memguard run "a.py"'
    assert "exit code          3" in text
    assert "<h1>memguard run &quot;a.py&quot;</h1>" in render(run, "html")
