"""The memguard fixture: limit, track_leaks, check_leaks, watch, expect_collected, snapshot."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

Run = Callable[..., pytest.RunResult]


@pytest.mark.parametrize(("size", "passed"), [("1 MB", False), ("4 MB", True)])
def test_fixture_limit(pytester: pytest.Pytester, run: Run, size: str, passed: bool) -> None:
    pytester.makepyfile(f"""
        def test_block(memguard):
            with memguard.limit("{size}"):
                data = bytearray(2_000_000)
                del data
    """)
    result = run()
    result.assert_outcomes(passed=int(passed), failed=int(not passed))
    if not passed:
        result.stdout.fnmatch_lines(["E *.MemoryLimitExceeded: Memory limit exceeded in *: "
                                     "peak 1.9 MiB > limit 976.6 KiB*"])


EXPECT = """
import pytest

class Session:
    pass

KEPT = []

def test_expect(memguard):
    session = Session()
    memguard.expect_collected(session)
    {action}
"""


@pytest.mark.parametrize(("action", "passed"), [
    ("KEPT.append(session)", False),
    ("pass  # the local goes when the function returns", True),
])
def test_expect_collected_judged_when_the_body_returns(pytester: pytest.Pytester, run: Run,
                                                       action: str, passed: bool) -> None:
    pytester.makepyfile(test_expect=EXPECT.format(action=action))
    result = run()
    # A survivor is a failure (F) of the call, never an error (E) of teardown.
    result.assert_outcomes(passed=int(passed), failed=int(not passed))
    if not passed:
        result.stdout.fnmatch_lines([
            "E   memguard.exceptions.LeakDetected: *",
            "*test_expect.KEPT[[]0[]]*",
            "FAILED test_expect.py::test_expect - memguard.exceptions.LeakDetected*",
        ])
        assert "ERROR at teardown" not in result.stdout.str()


def test_expect_collected_not_judged_when_the_test_fails(pytester: pytest.Pytester,
                                                          run: Run) -> None:
    pytester.makepyfile(test_expect=EXPECT.format(action="KEPT.append(session); assert 0"))
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["E * assert 0"])
    assert "LeakDetected" not in result.stdout.str()


def test_fixture_leaks_watch_and_snapshot(pytester: pytest.Pytester, run: Run) -> None:
    pytester.makepyfile("""
        import pytest
        import memguard as mg

        KEPT = []

        def test_check_leaks(memguard):
            with pytest.raises(mg.LeakDetected):
                memguard.check_leaks(lambda: KEPT.append(bytearray(1000)))
            assert not memguard.track_leaks(repeat=20, warmup=2).check(lambda: None).leaked

        def test_watch(memguard):
            class Thing:
                pass
            with pytest.raises(mg.LeakDetected):
                with memguard.watch() as w:
                    KEPT.append(w.add(Thing()))

        def test_snapshot(memguard):
            snap = memguard.snapshot("here", census=False)
            assert snap.label == "here"
            assert memguard.limit is mg.limit
    """)
    run().assert_outcomes(passed=3)


def test_fixture_work_is_not_the_tests_figure(pytester: pytest.Pytester) -> None:
    """Issue 14: a test that makes one small object is not charged memguard's imports.

    A subprocess, so that the guards' modules are not already imported by this
    process: the first test to call ``expect_collected`` is the one that paid
    1.1 MiB for them.
    """
    pytester.makepyfile("""
        class Thing:
            pass

        def test_first(memguard):
            thing = Thing()
            memguard.expect_collected(thing)
            del thing

        def test_second(memguard):
            thing = Thing()
            memguard.expect_collected(thing)
            del thing
    """)
    result = pytester.runpytest_subprocess("-p", "no:memray", "-p", "no:cacheprovider",
                                           "--memguard-json", "run.json")
    result.assert_outcomes(passed=2)
    tests = json.loads((pytester.path / "run.json").read_text())["tests"]
    peaks = {test["nodeid"].rpartition("::")[2]: test["peak_bytes"] for test in tests}
    # One instance and its frame: well under 16 KiB, the first time as the second.
    assert peaks["test_first"] < 16 * 1024, peaks
    assert peaks["test_second"] < 16 * 1024, peaks
