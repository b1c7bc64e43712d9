"""check_leaks over the whole leak corpus: every leak caught and named, no clean case flagged."""

from __future__ import annotations

import math

import pytest

from memguard import track_leaks
from memguard.values.leak import LeakReport
from tests.leak_corpus import CLEAN, LEAKY, SCENARIOS, Scenario


def _check(scenario: Scenario) -> LeakReport:
    # No time budget (max_seconds=inf): the adaptive check makes more calls
    # while a signal still grows, up to max_calls; with the default 10 s
    # budget a busy machine would stop it sooner, and the verdict on a leak
    # in steps would depend on the load.
    try:
        return track_leaks(fail=False, max_seconds=math.inf).check(scenario.run)
    finally:
        scenario.reset()


def test_corpus_is_broad() -> None:
    assert len(SCENARIOS) >= 25
    assert len({s.name for s in SCENARIOS}) == len(SCENARIOS)
    assert all(s.culprit and s.signal for s in LEAKY)
    assert not any(s.expected_leak for s in CLEAN)


_READS = {"python": {"python", "blocks", "malloc"}, "rss": {"malloc", "rss"},
          "objects": {"objects"}, "fds": {"fds"}, "threads": {"threads"}}


@pytest.mark.parametrize("scenario", LEAKY, ids=lambda s: s.name)
def test_leak_is_caught_and_named(scenario: Scenario) -> None:
    report = _check(scenario)
    message = report.message()
    assert report.leaked, message
    fired = {signal.name for signal in report.fired}
    # Python-heap leaks fire the allocator's blocks (small objects) or malloc's
    # bytes (buffers over 512 B); native ones malloc's bytes (or RSS elsewhere).
    assert fired & _READS[scenario.signal or ""], message
    assert scenario.culprit is not None
    assert scenario.culprit in message, message
    # The verdict line names the growth and the signals that fired.
    assert message.splitlines()[0].startswith(f"Leak detected in {report.label}: +")


@pytest.mark.parametrize("scenario", CLEAN, ids=lambda s: s.name)
def test_clean_look_alike_is_not_flagged(scenario: Scenario) -> None:
    report = _check(scenario)
    assert not report.leaked, report.message()
    assert report.fired == ()
    assert report.sample is None
