"""Small helpers shared by the test modules."""

from __future__ import annotations

import mmap
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
"""Headless chromium for the page and notebook-output checks, if installed."""

needs_browser = pytest.mark.skipif(
    BROWSER is None,
    reason="chromium is not installed here (.ci/run installs it with apt-get; "
           "run `apt-get install chromium` to include this check)")


def chromium(tmp_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run headless chromium with a fresh profile under *tmp_path*, offline, and *args*."""
    assert BROWSER is not None
    command = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", "--hide-scrollbars",
               f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


@contextmanager
def resident_pages(n_bytes: int) -> Iterator[None]:
    """*n_bytes* of fresh anonymous pages, each written (resident), unmapped on exit.

    Native memory that tracemalloc does not see and that always raises the
    process's RSS by its size: a mapping of its own. A ``malloc`` does not
    promise that, even above glibc's largest mmap threshold: it can be
    served from a free heap region an earlier test left resident, and then
    RSS does not move at all (a nested RSS limit read a peak of 0 after the
    browser tests had run in the same process).
    """
    pages = mmap.mmap(-1, n_bytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        for offset in range(0, n_bytes, mmap.PAGESIZE):
            pages[offset] = 1
        yield
    finally:
        pages.close()


def touch_native(n_bytes: int) -> None:
    """Make *n_bytes* of native memory resident, then give it back (see :func:`resident_pages`)."""
    with resident_pages(n_bytes):
        pass


def line_of(path: str, marker: str) -> int:
    """The number of the line of *path* that contains *marker* (not this call's own line)."""
    with open(path) as source:
        for number, text in enumerate(source, 1):
            if marker in text and "line_of(" not in text:
                return number
    raise LookupError(marker)


def threads_now() -> frozenset[threading.Thread]:
    """The live threads, by identity (see :func:`threads_left_behind`)."""
    return frozenset(threading.enumerate())


def threads_left_behind(before: frozenset[threading.Thread]) -> list[str]:
    """Names of live threads that were not in *before*: the ones the code under test
    started and did not end. Threads of earlier tests that end meanwhile (IPython's
    history saver, say) are not counted, as a count of threads would."""
    return sorted(t.name for t in threading.enumerate() if t not in before and t.is_alive())
