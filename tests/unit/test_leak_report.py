"""LeakReport and SignalVerdict on fabricated values, and the verdict statistics."""

from __future__ import annotations

import json
import math

import pytest

from memguard.leaks.statistics import fit_line, judge, still_growing
from memguard.values.leak import LeakReport, SignalVerdict, format_amount
from memguard.values.site import AllocationSite, Frame


def _leaky() -> LeakReport:
    return LeakReport(
        label="handler", leaked=True, iterations=80, warmup=5,
        signals=(
            SignalVerdict(name="python", leaked=True, per_call=64.0, total=5120.0,
                          unit="bytes", detail="slope 64 ± 0/call"),
            SignalVerdict(name="objects", leaked=False, per_call=0.0, total=0.0,
                          unit="objects"),
            SignalVerdict(name="fds", leaked=True, per_call=1.0, total=80.0, unit="fds"),
        ),
        series={"python": (0.0, 64.0, 128.0)}, fits={"python": (64.0, 0.0)},
        sites=(AllocationSite(filename="app.py", lineno=12, size_bytes=64, count=1,
                              traceback=(Frame(filename="app.py", lineno=12),)),
               AllocationSite(filename="app.py", lineno=20, size_bytes=8, count=2)),
        types=(("app.Session", 1.0), ("str", 0.5)),
        sample="<Session> (app.Session), held by app.REGISTRY[3] -> Session",
        resources=("fd /tmp/a.log (x80 descriptors)",),
        duration_seconds=0.25,
    )


def test_verdict_line() -> None:
    assert _leaky().summary == ("handler: leaks +64 B per call (+5.0 KiB over 80 calls), "
                             "signals python, fds")


def test_full_message() -> None:
    assert _leaky().message() == "\n".join([
        "Leak detected in handler: +64 B per call (+5.0 KiB over 80 calls after 5 warm-up "
        "calls), signals python, fds",
        "  python: +64 B per call, +5.0 KiB in total, LEAK (slope 64 ± 0/call)",
        "  objects: +0 objects per call, +0 objects in total, ok",
        "  fds: +1 fds per call, +80 fds in total, LEAK",
        "  top growing allocation sites (bytes per call):",
        "    app.py:12: +64 B per call in 1 block",
        "    app.py:20: +8 B per call in 2 blocks",
        "  top growing types (count per call):",
        "    app.Session: +1 per call",
        "    str: +0.5 per call",
        "  sample leaked object: <Session> (app.Session), held by app.REGISTRY[3] -> Session",
        "  leaked resources:",
        "    fd /tmp/a.log (x80 descriptors)",
        "  80 calls measured, 0.25 s in all",
    ])


def test_message_top_limits_sites_and_types() -> None:
    text = _leaky().message(top=1)
    assert "app.py:20" not in text
    assert "str: +0.50" not in text
    assert "app.Session: +1 per call" in text


def test_clean_report_line() -> None:
    report = LeakReport(label="f", leaked=False, iterations=40, warmup=5, signals=(
        SignalVerdict(name="python", leaked=False, per_call=0.0, total=0.0, unit="bytes"),
        SignalVerdict(name="rss", leaked=False, per_call=-3.0, total=-120.0, unit="bytes")))
    assert report.summary == "f: no leak over 40 calls (python, rss)"
    assert report.fired == ()
    assert report.message().splitlines()[0] == report.summary


def test_single_run_wording() -> None:
    report = LeakReport(label="block", leaked=True, iterations=1, warmup=0, mode="single",
                        signals=(SignalVerdict(name="objects", leaked=True, per_call=12.0,
                                               total=12.0, unit="objects"),),
                        types=(("app.Row", 12.0),))
    assert report.summary == "block: leaks +12 objects kept after one run, signal objects"
    assert "    app.Row: +12 kept" in report.message()


def test_round_trip_through_json() -> None:
    report = _leaky()
    data = json.loads(json.dumps(report.to_dict()))
    assert data["kind"] == "leak"
    assert LeakReport.from_dict(data) == report


def test_notebook_reprs_come_from_the_report_renderer() -> None:
    report = _leaky()
    assert "handler" in report._repr_markdown_()
    assert "handler" in report._repr_html_()


def test_values_are_frozen_and_mappings_read_only() -> None:
    report = _leaky()
    with pytest.raises(AttributeError):
        report.leaked = False  # type: ignore[misc]
    with pytest.raises(TypeError):
        report.series["python"] = ()  # type: ignore[index]


def test_unknown_signal_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown signal name 'heap'"):
        SignalVerdict.from_dict({"name": "heap", "leaked": False, "per_call": 0, "total": 0,
                                 "unit": "bytes"})


def test_format_amount() -> None:
    assert format_amount(65536.0, "bytes") == "+64.0 KiB"
    assert format_amount(0.1, "objects") == "+0.1 objects"
    # Rates of rare leaks and slopes: fixed point, three significant digits, never 1e-03.
    assert format_amount(0.001013, "objects") == "+0.00101 objects"
    assert format_amount(5660.4, "bytes") == "+5.5 KiB"
    assert format_amount(0.25, "bytes") == "+0.25 B"
    assert "e" not in format_amount(1.5e-7, "blocks").replace("blocks", "")
    assert format_amount(-2.0, "fds") == "-2 fds"


def test_fit_line_is_exact_on_a_line() -> None:
    fit = fit_line([10.0 + 64.0 * i for i in range(30)])
    assert fit.slope == pytest.approx(64.0)
    assert fit.intercept == pytest.approx(10.0)
    assert fit.stderr == 0.0
    assert fit_line([5.0]).stderr == math.inf


@pytest.mark.parametrize(("name", "values", "leaked"), [
    ("64 B per call", [64.0 * i for i in range(60)], True),
    ("every 10th call", [4096.0 * (i // 10) for i in range(320)], True),
    ("flat", [0.0] * 60, False),
    ("warm-up step", [0.0] + [50_000.0] * 59, False),
    ("bounded cache fills then flat", [min(i, 128) * 100.0 for i in range(320)], False),
    ("noise", [(-1) ** i * 500.0 for i in range(60)], False),
    ("below the floor", [8.0 * i for i in range(60)], False),
])
def test_judge(name: str, values: list[float], leaked: bool) -> None:
    assert judge(values, min_slope=32.0).leaked is leaked, name


def test_still_growing_looks_at_the_recent_half() -> None:
    assert still_growing([64.0 * i for i in range(40)], 32.0)
    assert not still_growing([min(i, 10) * 100.0 for i in range(40)], 32.0)


def test_a_0_1_file_with_rss_read_by_mallinfo2_loads_as_malloc() -> None:
    """The 0.1 signal called rss read malloc's counters; an old file loads with the honest name."""
    old = {"kind": "leak", "label": "f", "leaked": True, "iterations": 40, "warmup": 5,
           "signals": [{"name": "rss", "leaked": True, "per_call": 176.0, "total": 7040.0,
                        "unit": "bytes", "detail": "slope 176; malloc in use (mallinfo2)"}],
           "series": {"rss": [0.0, 176.0]}, "fits": {"rss": [176.0, 0.0]}}
    report = LeakReport.from_dict(old)
    assert [s.name for s in report.signals] == ["malloc"]
    assert set(report.series) == {"malloc"}
    assert set(report.fits) == {"malloc"}
    assert report.site_calls == 1


def test_judge_detail_is_in_human_units_per_call() -> None:
    """Slopes fitted per reading are shown per call in the signal's unit, never 1e+03."""
    judgement = judge([1000.0 * 5660 * i for i in range(40)], min_slope=32, unit="bytes",
                      per=1000)
    assert judgement.leaked
    assert judgement.detail.startswith("slope +5.5 KiB ± 0 B/call")
    assert "e+" not in judgement.detail
    assert "e-" not in judgement.detail
