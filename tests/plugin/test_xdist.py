"""pytest-xdist: markers work in the workers; table, JSON and baselines cover all tests."""

from __future__ import annotations

import json

import pytest

from memguard.values.baseline import Baseline

TESTS = """
import pytest

@pytest.mark.memguard_limit("1 MB")
def test_over():
    data = bytearray(2_000_000)

@pytest.mark.memguard_limit("4 MB")
def test_under():
    data = bytearray(2_000_000)

@pytest.mark.parametrize("size", [100_000, 200_000, 300_000, {grown}], ids="abcd")
def test_sized(size):
    data = bytearray(size)
"""


def test_two_workers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_par=TESTS.format(grown=400_000))
    result = pytester.runpytest_subprocess(
        "-p", "xdist", "-n", "2", "-p", "no:memray", "-p", "no:cacheprovider",
        "--memguard", "--memguard-json", "run.json", "--memguard-save", "par")
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines([
        "*Memory limit exceeded in test_par.py::test_over: peak 1.9 MiB > limit 976.6 KiB*",
        "*memguard: peak memory per test (traced Python heap), top 6 of 6*",
    ])
    document = json.loads((pytester.path / "run.json").read_text())
    nodeids = {t["nodeid"] for t in document["tests"]}
    assert len(nodeids) == 6
    workers = {t["nodeid"]: t for t in document["tests"]}
    assert workers["test_par.py::test_over"]["outcome"] == "failed"
    baseline = Baseline.load(pytester.path / ".memguard" / "baselines" / "par.json")
    assert set(baseline.peaks) == nodeids

    # The same suite with one test grown to twice its size: the worker that runs
    # it fails it; the controller prints the changes of all six.
    pytester.makepyfile(test_par=TESTS.format(grown=800_000))
    result = pytester.runpytest_subprocess(
        "-p", "xdist", "-n", "2", "-p", "no:memray", "-p", "no:cacheprovider",
        "--memguard-compare", "par", "--memguard-fail-over", "10%")
    result.assert_outcomes(passed=4, failed=2)
    result.stdout.fnmatch_lines([
        "*changes against baseline 'par', fail over +10%*",
        "*+99.9%  test_par.py::test_sized[[]d[]]  REGRESSED",
    ])
    assert result.stdout.str().count("test_par.py::test_sized[") >= 4
