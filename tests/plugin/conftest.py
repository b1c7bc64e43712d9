"""Helpers for the plugin's pytester tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

# pytest-memray is installed next to memguard and owns limit_memory/limit_leaks
# whenever it is loaded, and its start-up sets an environment variable and
# creates a folder; runs that test memguard alone leave it out. Hypothesis's
# plugin only slows the inner runs down.
NO_MEMRAY = ("-p", "no:memray", "-p", "no:cacheprovider", "-p", "no:hypothesispytest")


@pytest.fixture
def run(pytester: pytest.Pytester) -> Callable[..., pytest.RunResult]:
    """Run pytest in-process on pytester's folder, without pytest-memray."""

    def run_pytest(*args: str) -> pytest.RunResult:
        return pytester.runpytest(*NO_MEMRAY, *args)

    return run_pytest
