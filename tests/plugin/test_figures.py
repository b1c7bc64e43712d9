"""The figures, tables and JSON on fabricated values (no pytest run)."""

from __future__ import annotations

from memguard._pytest.figures import (
    Change,
    TestFigures,
    allowed_peak,
    changes,
    changes_table,
    figures_from_properties,
    peak_table,
    run_document,
)
from memguard.values.baseline import Baseline


def test_properties_round_trip_as_xdist_sends_them() -> None:
    figures = TestFigures(nodeid="t.py::a", peak_bytes=5000, source="rss", limit_bytes=8000,
                          baseline_bytes=4000, allowed_bytes=6000)
    # execnet turns the pairs into lists; other plugins' properties are left alone.
    sent = [list(pair) for pair in figures.properties()] + [["other", 1]]
    back = figures_from_properties("t.py::a", sent, "passed")
    assert back == TestFigures(nodeid="t.py::a", peak_bytes=5000, source="rss",
                               limit_bytes=8000, baseline_bytes=4000, allowed_bytes=6000,
                               outcome="passed")
    assert figures_from_properties("t.py::b", [("other", 1)], "passed") is None


def test_allowed_peak_is_the_largest_of_margin_spread_and_noise() -> None:
    assert allowed_peak(1_000_000, 0, margin_bytes=100_000, noise_bytes=65536) == 1_100_000
    assert allowed_peak(1_000_000, 0, margin_bytes=100_000, noise_bytes=300_000) == 1_300_000
    assert allowed_peak(1_000_000, 400_000, margin_bytes=100_000, noise_bytes=0) == 1_400_000
    assert allowed_peak(1_000_000, 400_000, margin_bytes=None, noise_bytes=0) is None
    grown = Change(nodeid="t.py::a", baseline_bytes=1_000_000, peak_bytes=1_200_000,
                   allowed_bytes=1_100_000)
    assert grown.regressed
    assert not Change(nodeid="t.py::a", baseline_bytes=1_000_000, peak_bytes=1_100_000,
                      allowed_bytes=1_100_000).regressed
    assert not Change(nodeid="t.py::new", baseline_bytes=None, peak_bytes=5,
                      allowed_bytes=None).regressed
    assert Change(nodeid="t.py::z", baseline_bytes=0, peak_bytes=10).percent is None


def test_noise_is_the_records_spread_or_the_floor() -> None:
    def change(now: int, spread: int = 0) -> Change:
        return Change(nodeid="t.py::a", baseline_bytes=1000, peak_bytes=now,
                      spread_bytes=spread)

    assert change(1064).is_noise(64)
    assert not change(1065).is_noise(64)
    assert change(936).is_noise(64)
    assert not change(935).is_noise(64)
    # A record from 600 to 1000: noise reaches 400 past either end.
    assert change(1400, spread=400).is_noise(64)
    assert change(200, spread=400).is_noise(64)
    assert not change(1401, spread=400).is_noise(64)
    assert not change(199, spread=400).is_noise(64)


def test_changes_table_lists_regressions_first() -> None:
    base = Baseline(name="b", source="python",
                    runs={"t.py::grew": (1000 << 10,), "t.py::same": (100 << 10,),
                          "t.py::shrank": (400 << 10,), "t.py::gone": (1,),
                          "t.py::noisy": (1 << 20, 3 << 20)})
    allowed = {"t.py::grew": 1100 << 10, "t.py::noisy": 5 << 20}
    results = {n: TestFigures(nodeid=n, peak_bytes=p, source="python", allowed_bytes=allowed.get(n))
               for n, p in [("t.py::grew", 2000 << 10), ("t.py::same", 100 << 10),
                            ("t.py::shrank", 200 << 10), ("t.py::new", 5),
                            ("t.py::noisy", 4 << 20)]}
    lines = changes_table(changes(results, base, noise_bytes=1024), top=10, noise_bytes=1024)
    assert lines == [
        "  baseline     spread         now    change  test",
        "1000.0 KiB                2.0 MiB   +100.0%  t.py::grew  REGRESSED",
        " 400.0 KiB              200.0 KiB    -50.0%  t.py::shrank",
        "   3.0 MiB    2.0 MiB     4.0 MiB    +33.3%  t.py::noisy  noise",
        " 100.0 KiB              100.0 KiB     +0.0%  t.py::same  noise",
        "(1 test(s) not in the baseline, 1 baseline test(s) not run)",
    ]
    markdown = changes_table(changes(results, base), top=1, noise_bytes=1024, fmt="markdown")
    assert markdown[:4] == [
        "| baseline | spread | now | change | test |",
        "| ---: | ---: | ---: | ---: | --- |",
        "| 1000.0 KiB |  | 2.0 MiB | +100.0% | `t.py::grew` **REGRESSED** |",
        "| 400.0 KiB |  | 200.0 KiB | -50.0% | `t.py::shrank` |",
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
                                    "limit_bytes": None, "baseline_bytes": None,
                                    "allowed_bytes": None}
