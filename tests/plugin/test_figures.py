"""The figures, tables and JSON on fabricated values (no pytest run)."""

from __future__ import annotations

from memguard._pytest.figures import (
    Change,
    TestFigures,
    changes,
    changes_table,
    figures_from_properties,
    is_regression,
    peak_table,
    run_document,
)
from memguard.values.baseline import Baseline


def test_properties_round_trip_as_xdist_sends_them() -> None:
    figures = TestFigures(nodeid="t.py::a", peak_bytes=5000, source="rss", limit_bytes=8000,
                          baseline_bytes=4000)
    # execnet turns the pairs into lists; other plugins' properties are left alone.
    sent = [list(pair) for pair in figures.properties()] + [["other", 1]]
    back = figures_from_properties("t.py::a", sent, "passed")
    assert back == TestFigures(nodeid="t.py::a", peak_bytes=5000, source="rss",
                               limit_bytes=8000, baseline_bytes=4000, outcome="passed")
    assert figures_from_properties("t.py::b", [("other", 1)], "passed") is None


def test_regression_needs_both_threshold_and_noise_floor() -> None:
    grown = Change("t.py::a", 1_000_000, 1_200_000)
    assert is_regression(grown, fail_over_percent=10.0, noise_bytes=65536)
    assert not is_regression(grown, fail_over_percent=25.0, noise_bytes=65536)
    assert not is_regression(grown, fail_over_percent=10.0, noise_bytes=300_000)
    assert not is_regression(grown, fail_over_percent=None, noise_bytes=0)
    assert not is_regression(Change("t.py::new", None, 5), fail_over_percent=0.0, noise_bytes=0)
    assert Change("t.py::z", 0, 10).percent is None


def test_changes_table_lists_regressions_first() -> None:
    base = Baseline(name="b", source="python",
                    peaks={"t.py::grew": 1000 << 10, "t.py::same": 100 << 10,
                           "t.py::shrank": 400 << 10, "t.py::gone": 1})
    results = {n: TestFigures(nodeid=n, peak_bytes=p, source="python")
               for n, p in [("t.py::grew", 2000 << 10), ("t.py::same", 100 << 10),
                            ("t.py::shrank", 200 << 10), ("t.py::new", 5)]}
    lines = changes_table(changes(results, base), top=10, fail_over_percent=10.0,
                          noise_bytes=1024)
    assert lines == [
        "  baseline         now    change  test",
        "1000.0 KiB     2.0 MiB   +100.0%  t.py::grew  REGRESSED",
        " 400.0 KiB   200.0 KiB    -50.0%  t.py::shrank",
        " 100.0 KiB   100.0 KiB     +0.0%  t.py::same",
        "(1 test(s) not in the baseline, 1 baseline test(s) not run)",
    ]
    markdown = changes_table(changes(results, base), top=1, fail_over_percent=10.0,
                             noise_bytes=1024, fmt="markdown")
    assert markdown[:4] == [
        "| baseline | now | change | test |",
        "| ---: | ---: | ---: | --- |",
        "| 1000.0 KiB | 2.0 MiB | +100.0% | `t.py::grew` **REGRESSED** |",
        "| 400.0 KiB | 200.0 KiB | -50.0% | `t.py::shrank` |",
    ]


def test_peak_table_and_run_document() -> None:
    results = {n: TestFigures(nodeid=n, peak_bytes=p, source="python", outcome="passed")
               for n, p in [("t.py::a", 2048), ("t.py::b", 3 << 20), ("t.py::c", 10)]}
    assert peak_table(results, top=2) == [
        "      peak       limit  test",
        "   3.0 MiB              t.py::b",
        "   2.0 KiB              t.py::a",
    ]
    assert len(peak_table(results, top=0)) == 4
    document = run_document(results, source="python")
    assert [t["nodeid"] for t in document["tests"]] == ["t.py::a", "t.py::b", "t.py::c"]
    assert document["tests"][0] == {"nodeid": "t.py::a", "outcome": "passed",
                                    "peak_bytes": 2048, "source": "python",
                                    "limit_bytes": None, "baseline_bytes": None}
