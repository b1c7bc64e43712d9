"""A limit marker on a test that holds its peak names the line, every time, in both measures.

Issue 16: with the polling catcher, ``@pytest.mark.memguard_limit(mb=1)`` on
``data = bytearray(2_000_000)`` said "too short-lived to attribute" three
times out of three, although the buffer lived for the whole test (the test's
locals die before the guard's block ends, and the body ran between two polls).
The native counter knows the moment a new peak over the limit is made: its
sampled sites are copied there (the counter's measure), or the live traces are
copied right after it (``sites="exact"``, tracemalloc's measure).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from memguard import _counter

Run = Callable[..., pytest.RunResult]

TWENTY = """
import pytest

@pytest.mark.parametrize("attempt", range(20))
@pytest.mark.memguard_limit({options})
def test_alloc(attempt):
    data = bytearray(2_000_000)
"""


@pytest.mark.parametrize(("options", "measure"), [
    ("mb=1", "counted Python heap"),
    ('mb=1, sites="exact"', "traced Python heap"),
])
def test_the_line_is_named_twenty_times_out_of_twenty(pytester: pytest.Pytester, run: Run,
                                                      options: str, measure: str) -> None:
    if not _counter.available():
        pytest.skip(f"the native counter is unavailable: {_counter.unavailable_reason()}")
    pytester.makepyfile(test_twenty=TWENTY.format(options=options))
    result = run("-q")
    result.assert_outcomes(failed=20)
    text = result.stdout.str()
    verdicts = [line for line in text.splitlines()
                if line.startswith("E   memguard.exceptions.MemoryLimitExceeded: ")]
    assert len(verdicts) == 20
    assert all(line.endswith(f"), {measure}") for line in verdicts)
    # each failure's sites are printed twice: in the error and in memguard's section
    lines = text.splitlines()
    lineno = pytester.path.joinpath("test_twenty.py").read_text().splitlines().index(
        "    data = bytearray(2_000_000)") + 1
    named = [line for line in lines if f"test_twenty.py:{lineno}: 1.9 MiB in " in line]
    headers = [line for line in lines if "top allocation sites (" in line]
    assert len(headers) == len(named) >= 20
    assert all("sites live at the peak" in line for line in headers)
    assert "too short-lived" not in text
