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


# Leak marker and fixture, each on both sides, run by the workers.
GUARDS = """
import pytest

KEPT = []

class Session:
    pass

@pytest.mark.memguard_leaks(repeat=10, warmup=1, signals=["python"])
def test_leaky():
    KEPT.append(bytearray(10_000))

@pytest.mark.memguard_leaks(repeat=10, warmup=1, signals=["python"])
def test_clean():
    data = bytearray(10_000)

def test_kept(memguard):
    session = Session()
    memguard.expect_collected(session)
    KEPT.append(session)

def test_freed(memguard):
    memguard.expect_collected(Session())
"""


def test_two_workers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_par=TESTS.format(grown=400_000), test_guards=GUARDS)
    result = pytester.runpytest_subprocess(
        "-p", "xdist", "-n", "2", "-p", "no:memray", "-p", "no:cacheprovider",
        "-p", "no:hypothesispytest",
        "--memguard", "--memguard-json", "run.json", "--memguard-save", "par")
    result.assert_outcomes(passed=7, failed=3)
    result.stdout.fnmatch_lines([
        "*Memory limit exceeded in test_par.py::test_over: peak 1.9 MiB > limit 976.6 KiB*",
        "*memguard: peak memory per test (traced Python heap), top 10 of 10*",
    ])
    summary = [line for line in result.outlines if line.startswith("FAILED")]
    assert len(summary) == 3
    assert any(line.startswith("FAILED test_guards.py::test_kept - ") and "LeakDetected" in line
               for line in summary), summary
    assert any(line.startswith("FAILED test_guards.py::test_leaky - ") and "LeakDetected" in line
               for line in summary), summary
    document = json.loads((pytester.path / "run.json").read_text())
    nodeids = {t["nodeid"] for t in document["tests"]}
    assert len(nodeids) == 10
    workers = {t["nodeid"]: t for t in document["tests"]}
    assert workers["test_par.py::test_over"]["outcome"] == "failed"
    baseline = Baseline.load(pytester.path / ".memguard" / "baselines" / "par.json")
    assert set(baseline.peaks) == nodeids
    (pytester.path / "test_guards.py").unlink()

    # The same suite with one test grown to twice its size: the worker that runs
    # it fails it; the controller prints the changes of all six.
    pytester.makepyfile(test_par=TESTS.format(grown=800_000))
    result = pytester.runpytest_subprocess(
        "-p", "xdist", "-n", "2", "-p", "no:memray", "-p", "no:cacheprovider",
        "-p", "no:hypothesispytest", "--memguard-compare", "par", "--memguard-fail-over", "10%")
    result.assert_outcomes(passed=4, failed=2)
    result.stdout.fnmatch_lines([
        "*changes against baseline 'par', fail over +10%*",
        "*+99.?%  test_par.py::test_sized[[]d[]]  REGRESSED",
    ])
    assert result.stdout.str().count("test_par.py::test_sized[") >= 4
