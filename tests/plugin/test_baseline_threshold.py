"""--memguard-fail-over at its edge: growth of exactly the allowed percentage passes,
one byte more fails.

This pins a behaviour that a one-line bug once broke without any other test
noticing (see ``benchmarks/mutations.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from memguard.values.baseline import Baseline

Run = Callable[..., pytest.RunResult]

SIZED = """
def test_sized():
    data = bytearray({size})
"""
NODE = "test_mem.py::test_sized"

#: The sized test's peak is compared to the byte across runs: no collection may
#: fall inside its call (the window memguard measures), where freeing or
#: keeping a small object moved it by 64 bytes in 1 of 10 busy runs.
NO_COLLECTIONS = """
import gc

import pytest


@pytest.fixture(autouse=True)
def _no_collections():
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    yield
    if enabled:
        gc.enable()
"""


def _saved_peak(pytester: pytest.Pytester, run: Run, size: int, name: str) -> int:
    pytester.makeconftest(NO_COLLECTIONS)
    pytester.makepyfile(test_mem=SIZED.format(size=size))
    run("--memguard-save", name).assert_outcomes(passed=1)
    return Baseline.load(pytester.path / ".memguard" / "baselines" / f"{name}.json").runs[NODE][-1]


def _write_baseline(pytester: pytest.Pytester, name: str, peak: int) -> None:
    path = pytester.path / ".memguard" / "baselines" / f"{name}.json"
    data = json.loads(path.read_text())
    data["tests"][NODE] = {"peak_bytes": peak, "runs": [peak]}  # one recorded run: no spread
    path.write_text(json.dumps(data))


def _compared_peak(pytester: pytest.Pytester, run: Run, size: int) -> tuple[pytest.RunResult, int]:
    """Compare against 'main' with +100% allowed; the outcome, and the peak measured then."""
    pytester.makeconftest(NO_COLLECTIONS)
    pytester.makepyfile(test_mem=SIZED.format(size=size))
    result = run("--memguard-compare", "main", "--memguard-fail-over", "100%",
                 "--memguard-save", "now")
    saved = Baseline.load(pytester.path / ".memguard" / "baselines" / "now.json")
    return result, saved.runs[NODE][-1]  # this run's (a saved name keeps a record of runs)


def test_growth_of_exactly_the_allowed_percentage_passes(pytester: pytest.Pytester,
                                                         run: Run) -> None:
    # The test's peak is its bytearray plus the same bookkeeping every run
    # with the same options (a run that compares measures a few bytes apart
    # from one that only saves, so the peak is read from a comparing run):
    # make it even, so that half of it is a whole number of bytes.
    size = 1_000_000
    _saved_peak(pytester, run, size, "main")
    peak = _compared_peak(pytester, run, size)[1]
    if peak % 2:
        size += 1
        peak = _compared_peak(pytester, run, size)[1]
    assert peak % 2 == 0
    assert size <= peak <= size + 16 * 1024
    # A baseline of half the peak, and +100% allowed: the growth is exactly
    # the allowance, which passes.
    _write_baseline(pytester, "main", peak // 2)
    result, again = _compared_peak(pytester, run, size)
    assert again == peak, "the same test measured twice reached different peaks"
    result.assert_outcomes(passed=1)
    # One byte less in the baseline: the growth is then two bytes over the
    # allowance (one more byte of growth, one less allowed), which fails.
    _write_baseline(pytester, "main", peak // 2 - 1)
    result, again = _compared_peak(pytester, run, size)
    assert again == peak
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Memory regression in test_mem.py::test_sized*"])


def test_a_test_that_shrank_passes_whatever_the_threshold(pytester: pytest.Pytester,
                                                          run: Run) -> None:
    _saved_peak(pytester, run, 2_000_000, "main")
    pytester.makepyfile(test_mem=SIZED.format(size=1_000_000))
    result = run("--memguard-compare", "main", "--memguard-fail-over", "10%")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["* -*%  test_mem.py::test_sized"])  # it shrank ...
    result.stdout.no_fnmatch_line("*REGRESSED*")  # ... which is never a regression
