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

Run: ``.venv/bin/python benchmarks/bench_leaks_heap.py [--quick]`` or through
``run_all.py``. To measure another
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


def main(quick: bool = False) -> dict[str, Any]:
    """The figures, in ``run_all.py``'s protocol (``benchmarks/README.md``).

    With *quick*, a tenth of the records (and of the array).
    """
    records_n = RECORDS // 10 if quick else RECORDS
    # A list in each record keeps the dict tracked by gc (a dict of atoms is not).
    records = [{"id": i, "name": f"user-{i}", "tags": [i]} for i in range(records_n)]
    array = np.arange(100_000 if quick else 1_000_000, dtype=np.float64)
    gc.collect()
    live = len(gc.get_objects())
    figures: dict[str, float] = {"tracked objects": live, "records": len(records),
                                 "array bytes": array.nbytes}
    ratios: dict[str, float] = {}
    notes: list[str] = []
    for name, fn in (("leaky", leaky), ("clean", clean)):
        for label, options in (("defaults", {}), ("max_seconds=5", {"max_seconds": 5})):
            spent, leaked, calls = _timed(fn, **options)
            figures[f"check_leaks {name}, {label} seconds"] = round(spent, 3)
            figures[f"check_leaks {name}, {label} calls"] = calls
            notes.append(f"check_leaks {name}, {label}: {spent:.2f} s, "
                         f"{'LEAK' if leaked else 'clean'}, {calls} calls")
            if "max_seconds" in options:
                ratios[f"check_leaks {name}: memguard seconds / budget"] = round(
                    spent / options["max_seconds"], 3)
    started = time.perf_counter()
    untraced = count_types()
    untraced_seconds = time.perf_counter() - started
    tracemalloc.start(1)
    try:
        started = time.perf_counter()
        traced = count_types()
        traced_seconds = time.perf_counter() - started
    finally:
        tracemalloc.stop()
    figures["census untraced seconds"] = round(untraced_seconds, 3)
    figures["census while tracemalloc traces seconds"] = round(traced_seconds, 3)
    figures["census objects"] = sum(untraced.values())
    ratios["census: memguard traced / untraced"] = round(traced_seconds / untraced_seconds, 3)
    del traced, untraced, records, array
    return {
        "title": "Leak checks and the census with a million objects in memory",
        "description": (f"{records_n:,} records (a dict, a str and a one-int list each) and a "
                        f"numpy array in memory, {live:,} objects tracked by gc: check_leaks "
                        "of a leaking and a clean function, with the defaults and with "
                        "max_seconds=5, and the census untraced and while tracemalloc traces."),
        "unit": "seconds / budget; traced / untraced time",
        "ratios": ratios,
        "figures": figures,
        "notes": notes,
    }


if __name__ == "__main__":
    print(f"memguard measured: {memguard.__file__}")
    result = main("--quick" in sys.argv)
    for key, value in {**result["figures"], **result["ratios"]}.items():
        print(f"{key}: {value}")
    for note in result["notes"]:
        print(f"note: {note}")
    sys.stdout.flush()
