"""The memguard_leaks marker: the body runs repeatedly, fixtures set up once."""

from __future__ import annotations

from collections.abc import Callable

import pytest

Run = Callable[..., pytest.RunResult]

LEAKS = """
import pytest

KEPT = []
SETUPS = []
CALLS = []

@pytest.fixture
def resource():
    SETUPS.append(1)
    return {{"calls": 0}}

@pytest.mark.memguard_leaks(repeat=10, warmup=1, signals=["python"]{extra})
def test_body(resource):
    CALLS.append(1)
    {body}

def test_counts():
    assert len(SETUPS) == 1
    assert len(CALLS) >= 11  # every measured call, warm-up included, and any re-check
"""


@pytest.mark.parametrize(("body", "passed"), [
    ("KEPT.append(bytearray(10_000))", False),
    ("data = bytearray(10_000)", True),
])
def test_leak_marker_on_both_sides(pytester: pytest.Pytester, run: Run, body: str,
                                   passed: bool) -> None:
    pytester.makepyfile(test_leaks=LEAKS.format(body=body, extra=""))
    result = run("-p", "no:randomly")
    result.assert_outcomes(passed=1 + passed, failed=int(not passed))
    if not passed:
        result.stdout.fnmatch_lines([
            "E   memguard.exceptions.LeakDetected: Leak detected in test_leaks.py::test_body: "
            "+9.[89] KiB per call (+9?.? KiB over 10 calls after 1 warm-up call*), "
            "signals python, blocks",
            "*- memguard -*",
        ])
        assert "memguard/guards" not in result.stdout.str()


def test_leak_marker_with_limit_and_peaks(pytester: pytest.Pytester, run: Run) -> None:
    pytester.makepyfile(test_leaks=LEAKS.format(body="data = bytearray(10_000)", extra="")
                        + '\n@pytest.mark.memguard_limit("1 MB")\n'
                        + '@pytest.mark.memguard_leaks(repeat=5, warmup=0, signals=["python"])\n'
                        + "def test_both():\n    data = bytearray(2_000_000)\n")
    result = run("-p", "no:randomly", "--memguard")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*Memory limit exceeded in test_leaks.py::test_both*"])


def test_bad_leak_marker(pytester: pytest.Pytester, run: Run) -> None:
    pytester.makepyfile(test_leaks=LEAKS.format(body="pass", extra=", repeats=3"))
    result = run()
    result.assert_outcomes(errors=1, failed=1)
    result.stdout.fnmatch_lines([
        "E   pytest.UsageError: test_leaks.py::test_body: @pytest.mark.memguard_leaks: "
        "unknown keyword 'repeats'; accepted: *repeat*",
    ])
    pytester.makepyfile(test_leaks=LEAKS.format(body="pass", extra=", top=-1"))
    run().stdout.fnmatch_lines(["E   pytest.UsageError: *memguard_leaks: top*"])
