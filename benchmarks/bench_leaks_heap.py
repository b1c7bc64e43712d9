"""Leak checks and the census with a million objects in memory (issue 19).

A data scientist's kernel holds data: here 500,000 records (a dict each,
with a str and a list of one int: a million objects tracked by gc, two
million live) and a numpy array of
a million floats (pandas is not a dependency, so no DataFrame). With that
heap in memory, this times:

* ``check_leaks`` of a one-line leaking function and of a clean one, with
  the defaults and with ``max_seconds=5`` (the budget must be kept);
* the census (``count_types()``) untraced and while tracemalloc traces
  (memguard's census should cost about the same either way).

Run: ``.venv/bin/python benchmarks/bench_leaks_heap.py``. To measure another
checkout of memguard (the "before" figures), put it first on the path:
``PYTHONPATH=/path/to/other/checkout .venv/bin/python benchmarks/bench_leaks_heap.py``;
the first line printed says which memguard was measured.
"""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc
from typing import Any

import numpy as np

import memguard
from memguard.objects import count_types

RECORDS = 500_000
KEPT: list[bytearray] = []


def leaky() -> None:
    KEPT.append(bytearray(100))


def clean() -> int:
    return sum(range(50))


def _timed(fn: Any, **options: Any) -> tuple[float, bool, int]:
    started = time.perf_counter()
    report = memguard.track_leaks(fail=False, **options).check(fn)
    spent = time.perf_counter() - started
    KEPT.clear()
    return spent, report.leaked, report.iterations


def main() -> dict[str, Any]:
    # A list in each record keeps the dict tracked by gc (a dict of atoms is not).
    records = [{"id": i, "name": f"user-{i}", "tags": [i]} for i in range(RECORDS)]
    array = np.arange(1_000_000, dtype=np.float64)
    gc.collect()
    live = len(gc.get_objects())
    figures: dict[str, Any] = {"memguard": memguard.__file__, "tracked objects": live,
                               "records": len(records), "array bytes": array.nbytes}
    for name, fn in (("leaky", leaky), ("clean", clean)):
        for label, options in (("defaults", {}), ("max_seconds=5", {"max_seconds": 5})):
            spent, leaked, calls = _timed(fn, **options)
            figures[f"check_leaks {name}, {label}"] = (
                f"{spent:.2f} s, {'LEAK' if leaked else 'clean'}, {calls} calls")
    started = time.perf_counter()
    untraced = count_types()
    figures["census untraced"] = f"{time.perf_counter() - started:.2f} s"
    tracemalloc.start(1)
    try:
        started = time.perf_counter()
        traced = count_types()
        figures["census while tracemalloc traces"] = f"{time.perf_counter() - started:.2f} s"
    finally:
        tracemalloc.stop()
    figures["census objects"] = sum(untraced.values())
    del traced, untraced, records, array
    return figures


if __name__ == "__main__":
    for key, value in main().items():
        print(f"{key}: {value}")
    sys.stdout.flush()
