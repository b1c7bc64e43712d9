"""One quantity, one figure: text, JSON, HTML and the chart say the same thing.

Issue 14 found a run's peak as "71.7 MiB above the start" in the text and
"exact traced peak 71.8 MiB" (absolute, unlabelled) in the chart; a diff of
two runs saying "elapsed -371.408 s"; absent figures with no reason; a leak's
slope cut off; a line profile whose header disagreed with its rows. Each
figure here is read back from the JSON and looked for, in the same words, in
every format.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

import _report_values as values
import pytest

from memguard.report import render
from memguard.units import format_size
from memguard.values.diff import compare
from memguard.values.lineprofile import LineProfile, LineRow
from memguard.values.run import RunReport
from memguard.values.site import AllocationSite
from memguard.values.timeline import Sample, Timeline


def _run() -> RunReport:
    timeline = Timeline(label="app.py", started_at=1_700_000_000.0, interval_seconds=0.01,
                        duration_seconds=0.5, traced_start_bytes=100 * 1024,
                        traced_end_bytes=200 * 1024, traced_peak_bytes=5 * 1024**2,
                        rss_start_bytes=40 * 1024**2, rss_peak_bytes=190 * 1024**2,
                        rss_peak_method="kernel-hwm",
                        samples=(Sample(0.0, 100 * 1024, 40 * 1024**2),
                                 Sample(0.25, 4 * 1024**2, 150 * 1024**2),
                                 Sample(0.5, 200 * 1024, 180 * 1024**2)))
    return RunReport(command="app.py", argv=("app.py",), exit_code=0, duration_seconds=0.5,
                     timeline=timeline, peak_seconds=0.25, rss=True,
                     started_at="2023-11-14T22:13:20+00:00",
                     sites=(AllocationSite(filename="app.py", lineno=3, size_bytes=4 * 1024**2,
                                           count=66_954),),
                     sites_above_start_bytes=4 * 1024**2, sites_seconds=0.25)


def _formats(value: Any) -> dict[str, str]:
    return {"text": render(value, "text", width=100), "html": render(value, "html"),
            "markdown": render(value, "markdown")}


def _chart_words(value: Any, name: str) -> str:
    from memguard.report import plot

    figure = plot.chart(value, name)
    words = []
    for ax in figure.axes:
        words.append(ax.get_title())
        legend = ax.get_legend()
        if legend is not None:
            words.extend(t.get_text() for t in legend.get_texts())
    return "\n".join(words)


def _in_every_format(figure: str, formats: dict[str, str]) -> None:
    for name, page in formats.items():
        shown = escape(figure, quote=False) if name == "html" else figure
        if name == "markdown":
            shown = shown.replace("_", "\\_")
        # Text wraps long facts onto the next line: compare word by word.
        assert " ".join(shown.split()) in " ".join(page.split()), (
            f"{figure!r} not in the {name} report")


def test_a_runs_peaks_read_the_same_everywhere() -> None:
    run = _run()
    data = json.loads(render(run, "json"))["data"]["timeline"]
    absolute = format_size(data["traced_peak_bytes"])
    above = format_size(data["traced_peak_bytes"] - data["traced_start_bytes"], signed=True)
    traced = f"{absolute} absolute, {above} above the start (exact)"
    assert traced == "5.0 MiB absolute, +4.9 MiB above the start (exact)"
    rss = (f"{format_size(data['rss_peak_bytes'])} absolute, "
           f"{format_size(data['rss_peak_bytes'] - data['rss_start_bytes'], signed=True)} "
           "above the start (kernel high-water mark, exact)")
    formats = _formats(run)
    _in_every_format(traced, formats)
    _in_every_format(rss, formats)
    pytest.importorskip("matplotlib")
    legend = _chart_words(run, "timeline")
    assert f"traced peak {traced}" in legend
    assert f"RSS peak {rss}" in legend
    # The caption beside the chart, too.
    assert f"traced peak {escape(traced)} at 0.250 s" in render(run, "html")


def test_one_start_time_format_per_page_and_separated_counts() -> None:
    run = _run()
    for page in _formats(run).values():
        assert "2023-11-14 22:13:20 UTC" in page
        assert "2023-11-14T22" not in page
        assert "66,954" in page
        assert "66954" not in page


def test_a_limits_peak_is_above_the_start_everywhere() -> None:
    report = values.limit_report()
    data = json.loads(render(report, "json"))["data"]
    peak = f"{format_size(data['peak_above_start_bytes'])} above the start"
    _in_every_format(peak, _formats(report))
    _in_every_format(f"{format_size(data['start_bytes'])} at the start, "
                     f"{format_size(data['end_bytes'])} at the end, absolute", _formats(report))
    assert f"peak {escape(peak)}, limit" in render(report, "html")


def test_a_leaks_slope_and_growing_types_are_the_same_everywhere() -> None:
    report = values.leak_report()
    data = json.loads(render(report, "json"))["data"]
    slope = format_size(round(data["fits"]["python"][0]), signed=True)
    formats = _formats(report)
    _in_every_format(slope, formats)
    # Text and HTML list the same growing types, in the same order.
    for name, _count in data["types"]:
        _in_every_format(name, formats)
    text_types = [line.split()[-1] for line in formats["text"].split("Growing types")[1]
                  .splitlines()[3:] if line.strip() and line.startswith("  ")]
    html_types = formats["html"].split("Growing types")[1].split("</table>")[0]
    assert [n for n in text_types if n in html_types] == [n for n, _ in data["types"]]
    pytest.importorskip("matplotlib")
    assert f"fit: {slope} per call" in _chart_words(report, "growth")


def test_the_leak_detail_is_never_cut_from_the_left() -> None:
    from memguard.values.leak import LeakReport, SignalVerdict

    detail = ("slope 64.4 ± 0.2 B/call over 40 calls, 38 of 40 steps up, persistent after "
              "the allowance of 10 calls")
    report = LeakReport(label="f", leaked=True, iterations=40, warmup=5, signals=(
        SignalVerdict(name="python", leaked=True, per_call=64.4, total=2576.0, unit="bytes",
                      detail=detail),))
    text = render(report, "text", width=80)
    assert "..." not in text
    assert max(map(len, text.splitlines())) <= 80
    signals = text.split("Signals\n")[1]
    assert " ".join(signals.split()).endswith(detail)
    assert "slope 64.4 ± 0.2 B/call" in signals


def test_a_diff_of_two_runs_has_no_negative_elapsed_and_every_absence_says_why() -> None:
    earlier, later = _run(), _run()
    later = RunReport.from_dict({**later.to_dict(), "timeline": {
        **later.timeline.to_dict(), "started_at": earlier.timeline.started_at - 371.408}})
    change = compare(earlier.peak_snapshot(), later.peak_snapshot())
    assert change.elapsed_seconds == pytest.approx(-371.408)
    for page in _formats(change).values():
        assert "-371.408" not in page
        assert "371.408 s the other way: the snapshot compared as later was taken first" in page
        assert "absent: a run counts objects only at its end, not at its peak" in page
        assert "absent: a run does not measure USS" in page
    text = render(change, "text", width=100)
    absences = [line for line in text.splitlines() if "absent" in line]
    assert absences
    assert all("absent: " in line for line in absences)


def test_a_line_profiles_header_agrees_with_its_rows() -> None:
    profile = LineProfile(function="f", filename="a.py", first_lineno=1, calls=1,
                          rows=(LineRow(lineno=2, source="x = [0] * 5", hits=1,
                                        allocated_bytes=96, retained_bytes=72),),
                          retained_total_bytes=232, blind_spots=())
    header = str(profile).splitlines()[0]
    rows_total = format_size(sum(r.retained_bytes for r in profile.rows))
    assert f"retained {rows_total} in its lines (232 B in all, +160 B not traced to a line)" \
        in header
    _in_every_format(f"{rows_total} in its lines", _formats(profile))
