"""memguard.limit at its edges: a peak exactly at the limit, an outer block's earlier
spike, and memory traced before the block under someone else's trace.

Each test here pins a behaviour that a one-line bug once broke without any other
test noticing (see ``benchmarks/mutations.py``).
"""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest

from memguard import LimitReport, MemoryLimitExceeded, limit
from tests import helpers

MB = 1_000_000
# A peak includes the allocation under test plus a little bookkeeping (frames,
# the guard's own small objects); this bounds the latter.
SLACK = 16 * 1024


def _block() -> None:
    data = bytearray(MB)
    del data


def _peak_of_block(size: int) -> int:
    """The peak limit() measures for _block, under a limit of *size* bytes."""
    with limit(size, sites=False) as guard:
        _block()
    return guard.peak_above_start_bytes


def test_a_peak_exactly_at_the_limit_passes_and_one_byte_more_fails() -> None:
    # A limit is the most a block may use: a peak equal to it passes (pytest-
    # memray's limit_memory fails there; docs/guide/limits.md says so).
    def report(peak: int) -> LimitReport:
        return LimitReport(label="x", source="python", method="tracemalloc", limit_bytes=MB,
                           peak_above_start_bytes=peak)

    assert not report(MB).exceeded
    assert report(MB + 1).exceeded
    # The same, measured: the same code reaches the same peak every time once
    # warm (first calls create caches), so its own peak is an exact limit.
    # sites=False: no catcher thread, whose own small allocations could land
    # on the peak when it happens to run at that moment.
    peaks = [_peak_of_block(10 * MB) for _ in range(4)]
    assert peaks[-1] == peaks[-2]
    peak = peaks[-1]
    assert MB <= peak <= MB + SLACK
    with limit(peak, sites=False) as guard:
        _block()
    assert guard.peak_above_start_bytes == peak
    assert guard.report is not None
    assert not guard.report.exceeded
    with pytest.raises(MemoryLimitExceeded) as info, limit(peak - 1, sites=False):
        _block()
    assert info.value.details.peak_above_start_bytes == peak
    assert info.value.details.limit_bytes == peak - 1


# Both measures: the native counter (sites=False) and tracemalloc
# (sites="exact"). Neither is over its limit, so no site capture reads (and so
# keeps) the peak by itself: only the inner block's start may keep it.
MEASURES = pytest.mark.parametrize("sites", [False, "exact"], ids=["counter", "tracemalloc"])


@MEASURES
def test_an_outer_block_keeps_the_spike_it_had_before_an_inner_limit(sites: Any) -> None:
    with limit(mb=100, sites=sites) as outer:
        spike = bytearray(30 * MB)
        del spike
        with limit(mb=100, sites=sites) as inner:
            small = bytearray(MB)
            del small
    assert inner.peak_above_start_bytes <= MB + SLACK  # its own block only (in full: the next test)
    assert 30 * MB <= outer.peak_above_start_bytes <= 30 * MB + SLACK


@MEASURES
def test_a_nested_limit_sees_its_own_block_in_full(sites: Any) -> None:
    with limit(mb=100, sites=sites), limit(mb=100, sites=sites) as inner:
        small = bytearray(MB)
        del small
    assert MB <= inner.peak_above_start_bytes <= MB + SLACK


@MEASURES
def test_an_outer_limit_fails_on_a_spike_before_an_inner_block(sites: Any) -> None:
    with pytest.raises(MemoryLimitExceeded) as info, limit(mb=20, sites=sites):
        spike = bytearray(30 * MB)
        del spike
        with limit(mb=100, sites=sites):
            pass
    assert 30 * MB <= info.value.details.peak_above_start_bytes <= 30 * MB + SLACK


@pytest.mark.parametrize("sites", [True, "exact"], ids=["default", "tracemalloc"])
def test_memory_from_before_the_block_is_not_named_under_a_foreign_trace(sites: Any) -> None:
    # Someone else traces (python -X tracemalloc, pytest-memray, a notebook):
    # the traces from before the block are live too, and the biggest of them
    # must not be named as the block's allocation site.
    assert not tracemalloc.is_tracing()
    tracemalloc.start()
    try:
        before = bytearray(30 * MB)  # before-the-block
        with pytest.raises(MemoryLimitExceeded) as info, limit(mb=1, sites=sites):
            inside = bytearray(5 * MB)  # inside-the-block
        del inside
        assert tracemalloc.is_tracing()  # memguard leaves the foreign trace running
    finally:
        tracemalloc.stop()
    report = info.value.details
    # The block kept its 5 MB to its end, where the catcher always looks.
    assert report.sites_status == "peak"
    lines = [site.lineno for site in report.sites if site.filename == __file__]
    assert lines[0] == helpers.line_of(__file__, "# inside-the-block")
    assert helpers.line_of(__file__, "# before-the-block") not in lines
    assert report.sites[0].size_bytes >= 5 * MB
    assert all(site.size_bytes < 30 * MB for site in report.sites)
    assert 5 * MB <= report.peak_above_start_bytes <= 5 * MB + SLACK
    del before

