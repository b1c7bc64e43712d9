"""pytest-memray's limit_memory and limit_leaks markers, honoured while it is not loaded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

Run = Callable[..., pytest.RunResult]


@pytest.mark.parametrize(("size", "passed"), [("1 MB", False), ("1.95 MB", True), ("4MB", True)])
def test_limit_memory_on_both_sides(pytester: pytest.Pytester, run: Run, size: str,
                                    passed: bool) -> None:
    # pytest-memray reads "MB" as MiB: 1.95 MB is 2,044,723 bytes, above the
    # 2,000,000 allocated, where memguard_limit("1.95 MB") would fail.
    pytester.makepyfile(f"""
        import pytest

        @pytest.mark.limit_memory("{size}")
        def test_alloc():
            data = bytearray(2_000_000)
    """)
    result = run("--strict-markers")
    result.assert_outcomes(passed=int(passed), failed=int(not passed))
    if not passed:
        result.stdout.fnmatch_lines(["E   memguard.exceptions.MemoryLimitExceeded: Memory limit "
                                     "exceeded in *::test_alloc: peak 1.9 MiB > limit 1.0 MiB*"])


LEAKY = """
import pytest

KEPT = []

def remember(size):
    KEPT.append(bytearray(size))

@pytest.mark.limit_leaks("1 MB"{filter})
def test_keeps():
    remember(2_000_000)

@pytest.mark.limit_leaks("1 MB")
def test_frees():
    data = bytearray(2_000_000)
    del data

@pytest.mark.limit_leaks("4 MB")
def test_keeps_under_limit():
    remember(2_000_000)
"""


def test_limit_leaks_on_both_sides(pytester: pytest.Pytester, run: Run) -> None:
    pytester.makepyfile(test_leaky=LEAKY.format(filter=""))
    result = run("--strict-markers")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "E   memguard.exceptions.LeakDetected: Leak detected in test_leaky.py::test_keeps: "
        "1 allocation stack(s) kept 1.0 MiB or more after the test (limit_leaks), 1.9 MiB in all",
        "*1.9 MiB in * blocks at *test_leaky.py:6 (remember)",
        "FAILED test_leaky.py::test_keeps - *",
    ])


def test_limit_leaks_filter_fn(pytester: pytest.Pytester, run: Run) -> None:
    pytester.makeconftest("""
        SEEN = []

        def not_remember(stack):
            SEEN.append([(f.function, f.lineno) for f in stack.frames[:2]])
            return stack.frames[0].function != "remember"
    """)
    pytester.makepyfile(test_leaky="from conftest import not_remember, SEEN\n"
                        + LEAKY.format(filter=", filter_fn=not_remember")
                        + "\ndef test_seen():\n    assert SEEN[0][0] == ('remember', 8)\n"
                        + "    assert SEEN[0][1][0] == 'test_keeps'\n")
    result = run("--strict-markers", "-p", "no:randomly")
    result.assert_outcomes(passed=4)


@pytest.mark.parametrize(("marker", "complaint"), [
    ('limit_memory("lots")', "limit='lots' is not a pytest-memray size such as '24 MB'"),
    ('limit_memory("1 MB", threads=1)', "expected limit_memory(limit, *, current_thread*"),
    ('limit_leaks("1 MB", filter_fn=3)', "filter_fn must be callable, not 3"),
])
def test_bad_compat_markers(pytester: pytest.Pytester, run: Run, marker: str,
                            complaint: str) -> None:
    pytester.makepyfile(f"""
        import pytest

        @pytest.mark.{marker}
        def test_alloc():
            pass
    """)
    result = run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"E   pytest.UsageError: *: {complaint}"])


def test_left_to_pytest_memray_when_it_is_loaded(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.limit_memory("1 MB")
        def test_alloc():
            data = bytearray(2_000_000)
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "MemoryLimitExceeded" not in text
    assert "- memguard -" not in text
    result.stdout.fnmatch_lines(["*Test was limited to 1.0MiB but allocated *"])


SOURCE = '''\
import os

def outer(a,
          b):
    x = [
        a,
    ]

    def inner():
        # a comment at column 0 below
# here
        return x
    return inner

class Box:
    size = 3

    async def load(self):
        await other()
if os:
    y = 1
'''


@pytest.mark.parametrize(("lineno", "function"), [
    (1, "<module>"), (4, "outer"), (5, "outer"), (6, "outer"), (7, "outer"), (12, "inner"),
    (13, "outer"), (16, "Box"), (19, "load"), (21, "<module>"), (99, "???"),
])
def test_function_names_come_from_the_lines_above(tmp_path: Path, lineno: int,
                                                   function: str) -> None:
    """limit_leaks's filter sees the function of each frame, read from the source file."""
    from memguard._pytest.compat import _function_at

    path = tmp_path / f"mod_{lineno}.py"  # one file per case: the answers are cached
    path.write_text(SOURCE)
    assert _function_at(str(path), lineno) == function


UNITTEST_MARKED = """
import unittest

import pytest


class TestCache(unittest.TestCase):
    @pytest.mark.limit_memory("1 MB")
    def test_method(self):
        data = bytearray(3_000_000)


@pytest.mark.limit_memory("1 MB")
def test_function():
    data = bytearray(3_000_000)
"""


@pytest.mark.parametrize(("ini", "failed"), [
    ("", ["test_method", "test_function"]),
    ("memguard_memray_markers = functions\n", ["test_function"]),
])
def test_limit_memory_on_unittest_methods(pytester: pytest.Pytester, run: Run, ini: str,
                                          failed: list[str]) -> None:
    """pytest-memray ignores limit_memory on a unittest.TestCase method; memguard enforces
    it, unless memguard_memray_markers = functions asks for pytest-memray's behaviour."""
    pytester.makeini("[pytest]\n" + ini)
    pytester.makepyfile(test_mixed=UNITTEST_MARKED)
    result = run("-rf")
    result.assert_outcomes(failed=len(failed), passed=2 - len(failed))
    result.stdout.fnmatch_lines_random([
        f"FAILED test_mixed.py::*{name} - memguard.exceptions.Memory*" for name in failed])


def test_bad_memray_markers_setting(pytester: pytest.Pytester, run: Run) -> None:
    pytester.makeini("[pytest]\nmemguard_memray_markers = some\n")
    pytester.makepyfile(test_mixed=UNITTEST_MARKED)
    result = run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*memguard_memray_markers='some': use 'all' or 'functions'*"])
