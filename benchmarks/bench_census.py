"""The gc census (``memguard.objects.count_types``) against a bare pass and its peers.

Heaps of 100k and 1M live objects (5M with ``--huge``; 100k only with
``--quick``): half of them small lists (gc-tracked), half the ``str`` each
list holds (not tracked). Timed, tools interleaved in each round, the median
of the rounds kept:

* ``bare pass``: ``Counter(map(type, gc.get_objects()))``, the least any
  census can do (tracked objects only, types not named);
* ``memguard count_types(untracked=False, collect=False)``: the same objects,
  counted by type name;
* ``memguard count_types(untracked=False)``: ``gc.collect()`` first, then
  the tracked objects by type name: what ``objgraph.growth`` counts;
* ``memguard count_types()``: the default, ``gc.collect()`` first and the
  untracked referents (``str``, ``bytes``, numbers, numpy arrays) counted
  too, each once;
* ``memguard count_types() under a trace``: the same while tracemalloc
  traces (as in ``memguard.snapshot()`` with tracing on, or a notebook's
  ``%memguard_snapshot --trace``): every allocation of the census's own is
  traced, so it must make few;
* ``objgraph growth``: ``objgraph.growth()`` with a fresh baseline (it
  collects and counts every tracked object by type name);
* ``objgraph typestats``: the census inside ``growth``, without its
  ``gc.collect()`` (compare with ``count_types(untracked=False,
  collect=False)``);
* ``pympler SummaryTracker``: building a ``SummaryTracker()`` (it summarises
  every object muppy finds, sizes included); one round only at 1M and above.

Ratios are each tool's time over the bare pass. The benchmark also times a
default ``check_leaks`` of a function that takes 1 ms (a busy loop that
allocates nothing) on each heap, to show how a clean check's time grows with
the heap.

Run: ``.venv/bin/python benchmarks/bench_census.py [--quick] [--huge]``.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from memguard import check_leaks  # noqa: E402
from memguard.objects import count_types  # noqa: E402


def bare_pass() -> None:
    objs = gc.get_objects()
    Counter(map(type, objs))
    del objs


def memguard_tracked() -> None:
    count_types(untracked=False, collect=False)


def memguard_tracked_collect() -> None:
    count_types(untracked=False)


def memguard_default() -> None:
    count_types()


def memguard_default_traced() -> None:
    tracemalloc.start()
    try:
        count_types()
    finally:
        tracemalloc.stop()


def objgraph_growth() -> None:
    import objgraph

    objgraph.growth(limit=None, peak_stats={})


def objgraph_typestats() -> None:
    import objgraph

    objgraph.typestats(shortnames=False)


def pympler_tracker() -> None:
    from pympler import tracker

    tracker.SummaryTracker()


TOOLS: dict[str, Callable[[], None]] = {
    "bare pass": bare_pass,
    "memguard count_types(untracked=False, collect=False)": memguard_tracked,
    "memguard count_types(untracked=False)": memguard_tracked_collect,
    "memguard count_types()": memguard_default,
    "memguard count_types() under a trace": memguard_default_traced,
    "objgraph growth": objgraph_growth,
    "objgraph typestats": objgraph_typestats,
    "pympler SummaryTracker": pympler_tracker,
}


def one_millisecond() -> None:
    end = time.perf_counter() + 0.001
    while time.perf_counter() < end:
        pass


def _timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def measure(size: int, rounds: int) -> dict[str, float]:
    """Median seconds per tool on a heap of about *size* live objects."""
    heap = [[f"item-{i}"] for i in range(size // 2)]
    try:
        times: dict[str, list[float]] = {tool: [] for tool in TOOLS}
        for round_index in range(rounds):
            for tool, fn in TOOLS.items():
                if tool.startswith("pympler") and size >= 1_000_000 and round_index > 0:
                    continue
                gc.collect()
                times[tool].append(_timed(fn))
        result = {tool: statistics.median(values) for tool, values in times.items()}
        result["check_leaks of a 1 ms function"] = _timed(lambda: check_leaks(one_millisecond))
        result["live gc-tracked objects"] = float(len(gc.get_objects()))
        return result
    finally:
        del heap
        gc.collect()


def main(quick: bool, huge: bool = False) -> dict[str, Any]:
    sizes = [100_000] if quick else [100_000, 1_000_000]
    if huge:
        sizes.append(5_000_000)
    ratios: dict[str, float] = {}
    figures: dict[str, float] = {}
    table = []
    for size in sizes:
        label = f"{size // 1000}k" if size < 1_000_000 else f"{size // 1_000_000}M"
        seconds = measure(size, rounds=3 if quick else 5)
        bare = seconds["bare pass"]
        for tool in TOOLS:
            figures[f"{label}: {tool} ms"] = round(seconds[tool] * 1000, 2)
            if tool != "bare pass":
                ratios[f"{label}: {tool}"] = round(seconds[tool] / bare, 2)
        figures[f"{label}: check_leaks of a 1 ms function s"] = round(
            seconds["check_leaks of a 1 ms function"], 3)
        table.append({
            "heap": label,
            "bare ms": round(bare * 1000, 1),
            "memguard tracked ms": round(seconds[list(TOOLS)[1]] * 1000, 1),
            "memguard tracked+collect ms": round(
                seconds["memguard count_types(untracked=False)"] * 1000, 1),
            "memguard default ms": round(seconds["memguard count_types()"] * 1000, 1),
            "memguard traced ms": round(
                seconds["memguard count_types() under a trace"] * 1000, 1),
            "traced / untraced": round(seconds["memguard count_types() under a trace"]
                                       / seconds["memguard count_types()"], 1),
            "objgraph ms": round(seconds["objgraph growth"] * 1000, 1),
            "objgraph typestats ms": round(seconds["objgraph typestats"] * 1000, 1),
            "objgraph typestats / memguard tracked": round(
                seconds["objgraph typestats"] / seconds[list(TOOLS)[1]], 1),
            "pympler ms": round(seconds["pympler SummaryTracker"] * 1000, 1),
            "objgraph / memguard tracked+collect": round(
                seconds["objgraph growth"] / seconds["memguard count_types(untracked=False)"], 1),
            "objgraph / memguard default": round(
                seconds["objgraph growth"] / seconds["memguard count_types()"], 1),
            "pympler / memguard default": round(
                seconds["pympler SummaryTracker"] / seconds["memguard count_types()"], 1),
            "check_leaks 1 ms fn s": round(seconds["check_leaks of a 1 ms function"], 2),
        })
    return {
        "title": "gc census cost",
        "description": ("memguard's count_types against a bare type count over "
                        "gc.get_objects(), objgraph's growth() and pympler's SummaryTracker, on "
                        "heaps of live objects (half tracked lists, half untracked str); and "
                        "the time of a default check_leaks of a 1 ms function on each heap."),
        "unit": "time / bare pass time",
        "ratios": ratios,
        "figures": figures,
        "table": table,
        "notes": ["like for like: count_types(untracked=False, collect=False) with the bare "
                  "pass; count_types(untracked=False), which collects first, with objgraph "
                  "growth (also tracked objects only, after a collection); count_types() "
                  "also counts the untracked referents (str, bytes, numbers, arrays), "
                  "which neither the bare pass nor objgraph sees"],
    }


def _print(result: dict[str, Any]) -> None:
    print(f"== {result['title']}: {result['description']}")
    columns = list(result["table"][0])
    widths = [max(len(str(c)), *(len(str(r[c])) for r in result["table"])) for c in columns]
    print("  ".join(str(c).ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in result["table"]:
        print("  ".join(str(row[c]).ljust(w) for c, w in zip(columns, widths, strict=True)))
    for name, ratio in result["ratios"].items():
        print(f"  {name}: {ratio}x the bare pass")
    for note in result["notes"]:
        print(f"note: {note}")


if __name__ == "__main__":
    _print(main("--quick" in sys.argv, huge="--huge" in sys.argv))
