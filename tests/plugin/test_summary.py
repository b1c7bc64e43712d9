"""--memguard: per-test peaks, the summary table, --memguard-json and JUnit XML."""

from __future__ import annotations

import json
from collections.abc import Callable
from xml.etree import ElementTree

import pytest

Run = Callable[..., pytest.RunResult]

THREE_TESTS = """
def test_one_mb():
    data = bytearray(1_000_000)

def test_three_mb():
    data = bytearray(3_000_000)

def test_small():
    data = bytearray(100_000)
"""

# A test's traced peak is its own allocation plus at most a few KiB of
# bookkeeping (frames, the bytearray header, pytest's call machinery).
SLACK = 16 * 1024


def test_table_lists_tests_by_peak(pytester: pytest.Pytester, run: Run) -> None:
    pytester.makepyfile(test_sizes=THREE_TESTS)
    result = run("--memguard")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([
        "*memguard: peak memory per test (traced Python heap), top 3 of 3*",
        "      peak       limit  test",
        "   2.9 MiB              test_sizes.py::test_three_mb",
        " 97?.? KiB              test_sizes.py::test_one_mb",
        "  9*.* KiB              test_sizes.py::test_small",
    ])


def test_top_limits_the_table(pytester: pytest.Pytester, run: Run) -> None:
    pytester.makepyfile(test_sizes=THREE_TESTS)
    result = run("--memguard", "--memguard-top", "1")
    result.stdout.fnmatch_lines(["*top 1 of 3*", "   2.9 MiB *test_sizes.py::test_three_mb"])
    assert "test_one_mb" not in result.stdout.str()


def test_markdown_table_and_top_from_ini(pytester: pytest.Pytester, run: Run) -> None:
    pytester.makepyfile(test_sizes=THREE_TESTS)
    pytester.makeini("[pytest]\nmemguard_top = 0\nmemguard_format = markdown\n")
    result = run("--memguard")
    result.stdout.fnmatch_lines([
        "*top 3 of 3*",
        "| peak | limit | test |",
        "| ---: | ---: | --- |",
        "| 2.9 MiB |  | `test_sizes.py::test_three_mb` |",
        "| 97?.? KiB |  | `test_sizes.py::test_one_mb` |",
        "| 9?.? KiB |  | `test_sizes.py::test_small` |",
    ])


def test_no_table_without_the_option(pytester: pytest.Pytester, run: Run) -> None:
    pytester.makepyfile(test_sizes=THREE_TESTS)
    result = run()
    assert "memguard" not in result.stdout.str().replace("plugins: memguard", "")


def test_json_has_every_test(pytester: pytest.Pytester, run: Run) -> None:
    pytester.makepyfile(test_sizes=THREE_TESTS + """
import pytest

@pytest.mark.memguard_limit("1 MB")
def test_over():
    data = bytearray(2_000_000)
""")
    result = run("--memguard-json", "out/figures.json")
    result.assert_outcomes(passed=3, failed=1)
    document = json.loads((pytester.path / "out" / "figures.json").read_text())
    assert document["format"] == "memguard-pytest-run"
    assert document["version"] == 1
    assert document["source"] == "python"
    tests = {t["nodeid"]: t for t in document["tests"]}
    assert sorted(tests) == ["test_sizes.py::test_one_mb", "test_sizes.py::test_over",
                             "test_sizes.py::test_small", "test_sizes.py::test_three_mb"]
    for name, size in [("test_one_mb", 1_000_000), ("test_three_mb", 3_000_000),
                       ("test_small", 100_000), ("test_over", 2_000_000)]:
        peak = tests[f"test_sizes.py::{name}"]["peak_bytes"]
        assert size <= peak <= size + SLACK, (name, peak)
    assert tests["test_sizes.py::test_over"]["outcome"] == "failed"
    assert tests["test_sizes.py::test_over"]["limit_bytes"] == 1_000_000
    assert tests["test_sizes.py::test_small"]["limit_bytes"] is None
    result.stdout.fnmatch_lines(["memguard: wrote 4 tests' figures to *figures.json"])


def test_junit_xml_gets_the_figures(pytester: pytest.Pytester, run: Run) -> None:
    pytester.makepyfile(test_sizes=THREE_TESTS)
    run("--memguard", "--junitxml", "junit.xml")
    tree = ElementTree.parse(pytester.path / "junit.xml")
    found: dict[str, dict[str, str]] = {}
    for case in tree.iter("testcase"):
        props = {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
        found[case.get("name", "")] = props
    assert found["test_three_mb"]["memguard_source"] == "python"
    assert 3_000_000 <= int(found["test_three_mb"]["memguard_peak_bytes"]) <= 3_000_000 + SLACK


def test_marker_alone_records_its_peak_for_junit(pytester: pytest.Pytester, run: Run) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.memguard_limit("4 MB")
        def test_alloc():
            data = bytearray(2_000_000)
    """)
    run("--junitxml", "junit.xml")
    tree = ElementTree.parse(pytester.path / "junit.xml")
    props = {p.get("name", ""): p.get("value", "") for p in tree.iter("property")}
    assert props["memguard_limit_bytes"] == "4000000"
    assert 2_000_000 <= int(props["memguard_peak_bytes"]) <= 2_000_000 + SLACK


def test_rss_source(pytester: pytest.Pytester, run: Run) -> None:
    pytester.makepyfile("""
        from tests.helpers import touch_native  # the run is in-process

        def test_native():
            touch_native(40_000_000)
    """)
    result = run("--memguard", "--memguard-source", "rss", "--memguard-json", "rss.json")
    result.stdout.fnmatch_lines(["*memguard: peak memory per test (process RSS), top 1 of 1*"])
    (test,) = json.loads((pytester.path / "rss.json").read_text())["tests"]
    assert test["source"] == "rss"
    # RSS moves by whole pages; the 40 MB is in it. The test maps its own
    # pages: a malloc, even of 40 MB, can be served from a heap region an
    # earlier test in this process freed and left resident, and then RSS
    # does not move at all.
    assert 39_000_000 <= test["peak_bytes"] <= 50_000_000, test


@pytest.mark.parametrize(("option", "complaint"), [
    (("--memguard-top", "0"), "*argument --memguard-top: '0' must be at least 1*"),
    (("--memguard-format", "html"), "*argument --memguard-format: invalid choice: 'html'*"),
    (("--memguard-fail-over", "10%"), "*--memguard-fail-over needs --memguard-compare NAME*"),
])
def test_bad_options(pytester: pytest.Pytester, run: Run, option: tuple[str, str],
                     complaint: str) -> None:
    pytester.makepyfile(test_sizes=THREE_TESTS)
    result = run(*option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([complaint])


def test_unittest_classes_are_measured_and_limited(pytester: pytest.Pytester, run: Run) -> None:
    pytester.makepyfile(test_cases="""
        import unittest

        class Cases(unittest.TestCase):
            def test_two_mb(self):
                data = bytearray(2_000_000)
    """)
    result = run("--memguard", "--memguard-limit", "1 MB")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Memory limit exceeded in test_cases.py::Cases::test_two_mb*",
                                 "   1.9 MiB   976.6 KiB  test_cases.py::Cases::test_two_mb"])


@pytest.mark.parametrize("native", ["1", ""])
def test_counter_and_tracemalloc_give_the_same_peaks(pytester: pytest.Pytester,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     native: str) -> None:
    """--memguard uses the native allocation counter where it is built (issue 17), and
    tracemalloc with MEMGUARD_NO_NATIVE=1; the header names which, the figures agree."""
    from memguard import _counter

    if not native and _counter.unavailable_reason() is not None:
        pytest.skip(f"no native counter here: {_counter.unavailable_reason()}")
    monkeypatch.setenv("MEMGUARD_NO_NATIVE", native)
    pytester.makepyfile(test_sizes=THREE_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:memray", "-p", "no:cacheprovider",
                                           "--memguard-json", "run.json")
    result.assert_outcomes(passed=3)
    how = "tracemalloc (MEMGUARD_NO_NATIVE is set)" if native else "the native allocation counter"
    result.stdout.fnmatch_lines([f"memguard: per-test peaks (python)*; Python heap measured by "
                                 f"{how}"])
    tests = json.loads((pytester.path / "run.json").read_text())["tests"]
    peaks = {test["nodeid"].rpartition("::")[2]: test["peak_bytes"] for test in tests}
    for name, size in [("test_one_mb", 1_000_000), ("test_three_mb", 3_000_000),
                       ("test_small", 100_000)]:
        assert size <= peaks[name] <= size + SLACK, (name, peaks)
