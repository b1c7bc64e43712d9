"""Helpers for the plugin's pytester tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

# pytest-memray is installed next to memguard and owns limit_memory/limit_leaks
# whenever it is loaded, and its start-up sets an environment variable and
# creates a folder; runs that test memguard alone leave it out. Hypothesis's
# plugin only slows the inner runs down. The outer run imported memguard
# before the inner one registers it as a plugin, so pytest warns that it
# cannot rewrite its asserts; Python shows that warning once per process, so
# it landed in whichever inner run came first (a test run alone failed its
# "nothing of memguard's in the output" check): ignored in every inner run.
NO_MEMRAY = ("-p", "no:memray", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
             "-W", "ignore::pytest.PytestAssertRewriteWarning")


@pytest.fixture
def run(pytester: pytest.Pytester) -> Callable[..., pytest.RunResult]:
    """Run pytest in-process on pytester's folder, without pytest-memray."""

    def run_pytest(*args: str) -> pytest.RunResult:
        return pytester.runpytest(*NO_MEMRAY, *args)

    return run_pytest
