"""The command line's parsing pieces and the run value, on fabricated input (no tracing)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from memguard.cli import build_parser, main
from memguard.cli.options import (
    add_display_options,
    check_output,
    positive_float,
    resolve_format,
    size_argument,
    top_count,
)
from memguard.cli.run import split_program
from memguard.exceptions import CommandError
from memguard.report import render
from memguard.values.files import dumps, loads
from memguard.values.limit import LimitReport
from memguard.values.lineprofile import LineProfile, LineRow
from memguard.values.run import RunReport
from memguard.values.site import AllocationSite
from memguard.values.snapshot import Snapshot
from memguard.values.timeline import Sample, Timeline


@pytest.mark.parametrize(
    ("argv", "memguard_part", "program_part"),
    [
        (["run", "app.py"], ["run", "app.py"], []),
        (["run", "app.py", "--rss", "-m", "x"], ["run", "app.py"], ["--rss", "-m", "x"]),
        (["run", "--rss", "--interval", "0.5", "app.py", "a"],
         ["run", "--rss", "--interval", "0.5", "app.py"], ["a"]),
        (["run", "--limit", "1 MB", "-m", "pkg.mod", "--limit", "2"],
         ["run", "--limit", "1 MB", "-m", "pkg.mod"], ["--limit", "2"]),
        (["run", "-mpkg", "x"], ["run", "-m", "pkg"], ["x"]),
        (["run", "--output=o.json", "app.py"], ["run", "--output=o.json", "app.py"], []),
        (["run", "-o", "o.json", "--lines", "a.py:f", "a.py", "-o"],
         ["run", "-o", "o.json", "--lines", "a.py:f", "a.py"], ["-o"]),
        (["run", "--rss", "--", "-weird.py", "--x"], ["run", "--rss", "-weird.py"], ["--x"]),
        (["run", "--help"], ["run", "--help"], []),
    ],
)
def test_split_program_stops_at_the_program(
    argv: list[str], memguard_part: list[str], program_part: list[str]
) -> None:
    assert split_program(argv) == (memguard_part, program_part)


def test_every_run_option_with_a_value_is_known_to_the_splitter() -> None:
    parser = argparse.ArgumentParser()
    from memguard.cli import run as run_command

    run_command.add_arguments(parser)
    with_values = {option for action in parser._actions if action.nargs != 0
                   for option in action.option_strings} - {"-m"}
    assert with_values == run_command._VALUE_OPTIONS


def test_display_options_are_shared_with_a_prefix() -> None:
    plain = argparse.ArgumentParser()
    add_display_options(plain.add_argument)
    assert vars(plain.parse_args([])) == {"top": None, "format": None}
    prefixed = argparse.ArgumentParser()
    add_display_options(prefixed.add_argument, prefix="memguard-",
                        formats=("text", "json"))
    parsed = prefixed.parse_args(["--memguard-top", "4", "--memguard-format", "json"])
    assert vars(parsed) == {"memguard_top": 4, "memguard_format": "json"}
    with pytest.raises(SystemExit):
        prefixed.parse_args(["--memguard-format", "html"])


def test_value_parsers_accept_and_refuse() -> None:
    assert top_count("1") == 1
    assert positive_float("0.25") == 0.25
    assert size_argument("1.5 KiB") == 1536
    assert size_argument("100 MB") == 100_000_000
    for parse, bad in ((top_count, "0"), (top_count, "-1"), (top_count, "x"), (positive_float, "0"),
                       (positive_float, "inf"), (positive_float, "soon"),
                       (size_argument, "10 mb"), (size_argument, "-5 MB"),
                       (size_argument, "lots")):
        with pytest.raises(argparse.ArgumentTypeError):
            parse(bad)


def test_format_comes_from_the_option_then_the_suffix_then_text() -> None:
    assert resolve_format("json", "x.html") == "json"
    assert resolve_format(None, "x.HTML") == "html"
    assert resolve_format(None, "x.md") == "markdown"
    assert resolve_format(None, "x.svg") == "svg"
    assert resolve_format(None, "-") == "text"
    assert resolve_format(None, None) == "text"
    with pytest.raises(CommandError, match=r"cannot tell the format of 'x\.pdf'") as caught:
        resolve_format(None, "x.pdf")
    assert caught.value.exit_code == 2


def test_existing_output_is_refused_without_force(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    check_output(str(target), force=False)
    target.write_text("keep")
    with pytest.raises(CommandError, match="exists; pass --force") as caught:
        check_output(str(target), force=False)
    assert caught.value.exit_code == 2
    check_output(str(target), force=True)
    with pytest.raises(CommandError, match="is a directory"):
        check_output(str(tmp_path), force=True)
    check_output("-", force=False)


def test_usage_errors_are_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["bogus"], ["report"], ["report", "a.json", "--format", "pdf"],
                 ["report", "a.json", "--top", "many"], ["diff", "a.json"],
                 ["run", "--limit", "10 mb", "app.py"], ["run", "--interval", "-1", "a.py"],
                 ["run", "--unknown", "a.py"], ["run"], []):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1, (argv, err)
        assert err.startswith("memguard"), err
        assert "Traceback" not in err


def test_help_and_version_answer(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("memguard ")
    for argv in (["--help"], ["run", "--help"], ["report", "--help"], ["diff", "--help"]):
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert "examples:" in out
        assert "exit code" in out
    assert build_parser().prog == "memguard"


def _run_value() -> RunReport:
    sites = (AllocationSite(filename="app.py", lineno=7, size_bytes=3 * 1024**2, count=30),
             AllocationSite(filename="lib.py", lineno=2, size_bytes=2048, count=2))
    timeline = Timeline(label="app.py 3", started_at=1_700_000_000.0, interval_seconds=0.01,
                        duration_seconds=0.5, samples=(Sample(0.0, 1000, 20 * 1024**2),
                                                       Sample(0.25, 1000 + 3 * 1024**2, None),
                                                       Sample(0.5, 5096, 21 * 1024**2)),
                        traced_start_bytes=1000, traced_end_bytes=5096,
                        traced_peak_bytes=1000 + 3 * 1024**2 + 4096,
                        rss_start_bytes=20 * 1024**2, rss_peak_bytes=24 * 1024**2,
                        rss_peak_method="kernel-hwm")
    limit = LimitReport(label="app.py 3", source="python", method="tracemalloc",
                        limit_bytes=1024**2, peak_above_start_bytes=3 * 1024**2 + 4096, sites=sites,
                        sites_status="peak", sites_above_start_bytes=3 * 1024**2)
    final = Snapshot(label="app.py 3 (end)", timestamp=1_700_000_000.5, sites=sites[1:],
                     traced_bytes=5096, types=(("str", 900), ("dict", 40)),
                     rss_bytes=21 * 1024**2)
    profile = LineProfile(function="load", filename="app.py", first_lineno=6, calls=1,
                          rows=(LineRow(lineno=6, source="def load():"),
                                LineRow(lineno=7, source="    return [bytes(1) for _ in x]",
                                        allocated_bytes=4096, retained_bytes=4096,
                                        peak_share_bytes=4096, hits=1)),
                          peak_bytes=4096, retained_total_bytes=4096)
    return RunReport(command="app.py 3", argv=("app.py", "3"), exit_code=1,
                     error="ValueError: boom", started_at="2023-11-14T22:13:20+00:00",
                     duration_seconds=0.5, timeline=timeline, peak_seconds=0.25,
                     sites=sites, sites_above_start_bytes=3 * 1024**2, sites_seconds=0.24,
                     rss=True, children=((0.0, 30 * 1024**2), (0.25, 40 * 1024**2)),
                     limit=limit, final=final, lines=(profile,), lines_target="app.py:load")


def test_run_figures_are_named_above_the_start_and_absent_is_none() -> None:
    from memguard.values.timeline import Timeline

    run = _run_value()
    # The run's figures are rises above the start; the timeline's are levels.
    assert run.timeline.traced_peak_bytes is not None
    assert run.timeline.traced_start_bytes is not None
    assert run.traced_peak_above_start_bytes == (run.timeline.traced_peak_bytes
                                                 - run.timeline.traced_start_bytes)
    untraced = RunReport(command="a.py", argv=("a.py",), exit_code=0, duration_seconds=1.0,
                         timeline=Timeline(interval_seconds=0.01, duration_seconds=1.0))
    assert untraced.traced_peak_above_start_bytes is None
    assert untraced.traced_end_above_start_bytes is None
    assert "no traced peak" in untraced.summary
    # The 0.1 names still answer, with a warning that says the new name.
    with pytest.warns(DeprecationWarning, match="traced_peak_above_start_bytes"):
        assert run.traced_peak_bytes == run.traced_peak_above_start_bytes
    with pytest.warns(DeprecationWarning, match="traced_end_above_start_bytes"):
        assert untraced.traced_end_bytes == 0


def test_run_value_round_trips_through_its_file_format() -> None:
    run = _run_value()
    again = loads(dumps(run))
    assert again == run
    assert run.traced_peak_above_start_bytes == 3 * 1024**2 + 4096
    assert run.traced_end_above_start_bytes == 4096
    assert run.children_peak_bytes == 40 * 1024**2
    assert run.sites_fraction == pytest.approx(3 * 1024**2 / (3 * 1024**2 + 4096))
    assert run.summary == ("app.py 3: traced peak 3.0 MiB at 0.25 s of 0.50 s, exit code 1, "
                        "peak RSS 24.0 MiB")
    peak = run.peak_snapshot()
    assert (peak.sites, peak.traced_bytes, peak.rss_bytes) == (run.sites, 3 * 1024**2 + 4096,
                                                               24 * 1024**2)


def test_run_from_dict_refuses_another_kind() -> None:
    data = _run_value().to_dict()
    data["kind"] = "snapshot"
    with pytest.raises(ValueError, match="not a run"):
        RunReport.from_dict(data)


def test_run_html_report_is_one_page_with_the_run_in_front() -> None:
    from memguard.cli.show import render_value

    page = render_value(_run_value(), "html", top=5)
    assert isinstance(page, str)
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<html") == 1
    assert "<title>memguard run &quot;app.py 3&quot;</title>" in page
    # One rendering path: the command's page is the report layer's page.
    assert page == render(_run_value(), "html", top=5)
    assert page.index("Allocation sites at the peak") < page.index("Traced Python heap over time")
    assert '<td class="l">app.py:7</td>' in page
    assert "return [bytes(1)" in page


def test_run_text_report_in_full() -> None:
    from memguard.report import text
    from memguard.report.lines import to_text
    from memguard.report.run import run_document

    # The line table's own layout belongs to memguard.report.lines.
    (profile,) = _run_value().lines
    table = [text.clip_left("  " + line, 80).rstrip()
             for line in to_text(profile, source_width=30).splitlines()[1:]
             if not line.startswith("note:")]
    assert text.layout(run_document(_run_value(), 5), 80) == """\
memguard run "app.py 3"
command            app.py 3
started            2023-11-14 22:13:20 UTC
exit code          1 (ValueError: boom)
duration           0.500 s
traced peak        3.0 MiB absolute, +3.0 MiB above the start (exact), at 0.250
                   s (its time to one 10 ms interval)
traced at the end  4.0 KiB above the start
process RSS        peak 24.0 MiB absolute, +4.0 MiB above the start (kernel
                   high-water mark, exact)
with children      peak 40.0 MiB absolute (sampled every 10 ms)
limit              1.0 MiB on the traced Python heap: peak 3.0 MiB above the
                   start, EXCEEDED by 2.0 MiB
live at the end    940 objects in 2 types

Allocation sites at the peak
  live at 3.0 MiB above the start, at 0.240 s (100% of the peak)
     size  blocks  where
  3.0 MiB      30  app.py:7
  2.0 KiB       2  lib.py:2

Traced Python heap over time
  3 samples every 10 ms, 0 B to 3.0 MiB above the start
  ▁█▁

Still live at the end
  traced memory the program held when it ended, biggest first
     size  blocks  where
  2.0 KiB       2  lib.py:2

Live objects by type at the end
  count  type
    900  str
     40  dict

Line profile of load (app.py:6)
  load (app.py:6): 1 call, allocated 4.0 KiB, peak 4.0 KiB, retained 4.0 KiB
""" + "".join(f"{line}\n" for line in table)


def test_a_reader_that_goes_away_ends_quietly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A pipe whose reader closed (`memguard report ... | head`): writing raises
    # BrokenPipeError. This sandbox's pipes buffer whole outputs, so the
    # failing write is a stream that raises it, over a real file descriptor.
    sink = (tmp_path / "sink").open("w")

    class ClosedPipe:
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            pass

        def fileno(self) -> int:
            return sink.fileno()

    source = tmp_path / "timeline.json"
    source.write_text(dumps(Timeline(interval_seconds=0.01, duration_seconds=0.0)))
    monkeypatch.setattr("sys.stdout", ClosedPipe())
    try:
        assert main(["report", str(source), "--format", "json"]) == 1
    finally:
        sink.close()
    assert capsys.readouterr().err == ""
