"""The memguard_limit marker and the default budget, on both sides of each limit."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

import memguard

Run = Callable[..., pytest.RunResult]

ALLOC_2MB = """
import pytest

{marks}
def test_alloc():
    data = bytearray(2_000_000)
    del data
"""


def make(pytester: pytest.Pytester, marks: str = "") -> None:
    pytester.makepyfile(test_alloc=ALLOC_2MB.format(marks=marks))


@pytest.mark.parametrize(("size", "passed"), [("1 MB", False), ("4 MB", True)])
def test_marker_on_both_sides(pytester: pytest.Pytester, run: Run, size: str,
                              passed: bool) -> None:
    make(pytester, f'@pytest.mark.memguard_limit("{size}")')
    result = run()
    result.assert_outcomes(passed=int(passed), failed=int(not passed))


_SITE = re.compile(r" in [\d,]+ blocks?(\s|$)")


def _frames(lines: list[str]) -> str:
    """A failure's output without its site lines, where frames are to be looked for.

    The sites at the peak are sampled: a sample may land on a block pytest's
    machinery holds at the peak, and that site is named by its file, pluggy's
    included (1 of 13 busy runs). The sites are the lines that give their blocks.
    """
    return "\n".join(line for line in lines if not _SITE.search(line))


def test_failure_reads_as_assertion_without_memguard_frames(pytester: pytest.Pytester,
                                                            run: Run) -> None:
    make(pytester, '@pytest.mark.memguard_limit("1 MB")')
    result = run()
    result.assert_outcomes(failed=1)
    heap = {"counter": "counted Python heap", "tracemalloc": "traced Python heap"}[
        memguard.measurement()]
    result.stdout.fnmatch_lines([
        "E   memguard.exceptions.MemoryLimitExceeded: Memory limit exceeded in "
        f"test_alloc.py::test_alloc: peak 1.9 MiB > limit 976.6 KiB (+*), {heap}",
        "*- memguard -*",
        f"measured: {heap} ({memguard.measurement()})",
        "FAILED test_alloc.py::test_alloc - memguard.exceptions.MemoryLimitExceeded*",
    ])
    text = _frames(result.stdout.lines)
    assert "memguard/guards" not in text
    assert "memguard/_pytest" not in text
    assert "pluggy/" not in text


def test_marker_keywords_are_limits(pytester: pytest.Pytester, run: Run) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.memguard_limit(mb=1)
        def test_over():
            data = bytearray(2_000_000)

        @pytest.mark.memguard_limit(mib=2, label="two mebibytes")
        def test_under():
            data = bytearray(2_000_000)

        @pytest.mark.memguard_limit(kb=1500, label="small block")
        def test_label():
            data = bytearray(2_000_000)
    """)
    result = run()
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*Memory limit exceeded in small block: peak 1.9 MiB*"])


@pytest.mark.parametrize(("size", "passed"), [("5 MB", False), ("400 MB", True)])
def test_rss_source(pytester: pytest.Pytester, run: Run, size: str, passed: bool) -> None:
    # The test maps and writes pages of its own (the run is in-process, so
    # the suite's helpers are importable): a malloc, even of 40 MB, can reuse
    # a heap region an earlier test in this process left resident, and then
    # RSS does not move (it passed a 5 MB limit without the counter).
    pytester.makepyfile(f"""
        import pytest
        from tests.helpers import touch_native

        @pytest.mark.memguard_limit("{size}", source="rss")
        def test_native():
            touch_native(40_000_000)
    """)
    result = run()
    result.assert_outcomes(passed=int(passed), failed=int(not passed))
    if not passed:
        result.stdout.fnmatch_lines(["*Memory limit exceeded in *: peak * > limit 4.8 MiB*"
                                     "process RSS*"])


@pytest.mark.parametrize(
    ("marker", "complaint"),
    [
        ('memguard_limit("1 MB", sorce="rss")', "unknown keyword 'sorce'; accepted: *source*"),
        ('memguard_limit("lots")', "limit='lots' is not a size*"),
        ('memguard_limit("1 MB", source="heap")', "source must be 'python' or 'rss'*"),
        ('memguard_limit("1 MB", "2 MB")', "takes at most 1 positional argument*"),
    ],
)
def test_bad_marker_is_a_usage_error(pytester: pytest.Pytester, run: Run, marker: str,
                                     complaint: str) -> None:
    make(pytester, f"@pytest.mark.{marker}")
    result = run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        f"E   pytest.UsageError: test_alloc.py::test_alloc: @pytest.mark.memguard_limit: "
        f"{complaint}",
    ])


@pytest.mark.parametrize(("size", "passed"), [("1MB", False), ("4MB", True)])
def test_default_budget_option(pytester: pytest.Pytester, run: Run, size: str,
                               passed: bool) -> None:
    make(pytester)
    result = run(f"--memguard-limit={size}")
    result.assert_outcomes(passed=int(passed), failed=int(not passed))


@pytest.mark.parametrize(("size", "passed"), [("1 MB", False), ("4 MB", True)])
def test_default_budget_ini(pytester: pytest.Pytester, run: Run, size: str,
                            passed: bool) -> None:
    make(pytester)
    pytester.makeini(f"[pytest]\nmemguard_limit = {size}\n")
    result = run()
    result.assert_outcomes(passed=int(passed), failed=int(not passed))
    result.stdout.fnmatch_lines(["memguard: default limit *"])


def test_marker_overrides_default_budget(pytester: pytest.Pytester, run: Run) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.memguard_limit("4 MB")
        def test_raised():
            data = bytearray(2_000_000)

        def test_default():
            data = bytearray(2_000_000)
    """)
    result = run("--memguard-limit", "1 MB")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["FAILED test_*.py::test_default - *"])


def test_bad_default_budget(pytester: pytest.Pytester, run: Run) -> None:
    make(pytester)
    result = run("--memguard-limit", "lots")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--memguard-limit='lots' is not a size*"])


def test_test_error_keeps_its_own_failure(pytester: pytest.Pytester, run: Run) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.memguard_limit("1 MB")
        def test_raises():
            data = bytearray(2_000_000)
            raise KeyError("own failure")
    """)
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["E * KeyError: 'own failure'",
                                 "E * Memory limit exceeded in *::test_raises: peak 1.9 MiB*"])


def test_help_and_markers(pytester: pytest.Pytester, run: Run) -> None:
    result = run("--help")
    result.stdout.fnmatch_lines([
        "memguard: memory limits, leak checks, per-test peaks:",
        "  --memguard *measure every test's peak memory*",
        "  --memguard-limit=SIZE*",
        "  --memguard-save=NAME*",
        "  --memguard-compare=NAME*",
    ])
    markers = run("--markers")
    markers.stdout.fnmatch_lines([
        "@pytest.mark.memguard_limit(size, *, source='python'*",
        "@pytest.mark.memguard_leaks(repeat=..., ...): call the test body repeatedly*",
        "@pytest.mark.limit_memory(limit, *, current_thread_only=False): pytest-memray's*",
    ])


@pytest.mark.parametrize(("size", "passed"), [("5 MB", False), ("400 MB", True)])
def test_default_budget_of_rss(pytester: pytest.Pytester, run: Run, size: str,
                               passed: bool) -> None:
    pytester.makepyfile("""
        from tests.helpers import touch_native

        def test_native():
            touch_native(40_000_000)  # see test_rss_source
    """)
    result = run("--memguard-limit", size, "--memguard-source", "rss")
    result.assert_outcomes(passed=int(passed), failed=int(not passed))


def test_class_marker_applies_to_each_test_closest_wins(pytester: pytest.Pytester,
                                                         run: Run) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.memguard_limit("1 MB")
        class TestLoads:
            def test_big(self):
                data = bytearray(2_000_000)

            def test_small(self):
                data = bytearray(100_000)

            @pytest.mark.memguard_limit("4 MB")
            def test_big_allowed(self):
                data = bytearray(2_000_000)
    """)
    result = run()
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["FAILED *::TestLoads::test_big*"])


def test_doctest_over_budget_reads_like_a_test(pytester: pytest.Pytester, run: Run) -> None:
    """Issue 17: a doctest's failed limit is the verdict, the sites and memguard's section.

    pytest's DoctestItem ignores ``__tracebackhide__``; without memguard's pruning
    the report was about 510 lines of pytest, pluggy and memguard frames.
    """
    pytester.makepyfile(mod='''
        def build(n):
            """
            >>> rows = build(40_000)
            >>> len(rows)
            40000
            """
            return [str(i) * 8 for i in range(n)]
    ''')
    result = run("--doctest-modules", "--memguard-limit", "1MB", "mod.py")
    result.assert_outcomes(failed=1)
    failure = result.stdout.str().split(" FAILURES ")[1].split(" short test summary")[0]
    lines = failure.splitlines()
    assert len(lines) < 40, failure
    result.stdout.fnmatch_lines([
        "*[[]doctest[]] mod.build*",
        "E   memguard.exceptions.MemoryLimitExceeded: Memory limit exceeded in "
        "mod.py::mod.build: peak * > limit 976.6 KiB*",
        "*mod.py:7*",  # the site: the list comprehension in build()
        "*- memguard -*",
    ])
    # No frame of pytest's or pluggy's.
    frames = _frames(lines)
    assert "pluggy" not in frames, failure
    assert "_pytest" not in frames, failure
