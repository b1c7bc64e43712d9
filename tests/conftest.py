"""Shared fixtures: every test must leave tracemalloc as it found it."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Iterator

import pytest

from memguard import _counter, _tracing


@pytest.fixture(autouse=True)
def _tracing_restored() -> Iterator[None]:
    """Fail a test that leaves tracemalloc running, gc disabled or a window open."""
    was_tracing = tracemalloc.is_tracing()
    gc_enabled = gc.isenabled()
    yield
    assert _tracing.open_windows() == 0, "a memguard peak window was left open"
    assert tracemalloc.is_tracing() == was_tracing, "tracemalloc state changed by the test"
    assert gc.isenabled() == gc_enabled, "gc enabled state changed by the test"


@pytest.fixture(params=["counter", "tracemalloc"])
def measure(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The Python-heap measure a test runs with: the native counter, and the
    tracemalloc fallback (``MEMGUARD_NO_NATIVE=1``). A module runs every test
    both ways with ``pytestmark = pytest.mark.usefixtures("measure")``."""
    if request.param == "counter":
        if not _counter.available():
            pytest.skip(f"the native counter is unavailable: {_counter.unavailable_reason()}")
    else:
        monkeypatch.setenv(_counter.ENV_DISABLE, "1")
    return str(request.param)
