"""Snapshot plus diff on many allocation sites, against tracemalloc's own; files; the census.

The workload: generated code with one allocating line per site (a
``bytearray`` kept alive), so the traced heap holds ``sites`` distinct
``file:line`` sites (100,000 by default, 20,000 with ``--quick``).

One round of a tool: snapshot *before*, allocate at every site (not timed),
snapshot *after*, diff the two, then free everything. The time is the two
snapshots plus the diff, which is what a user pays to ask "what grew?":

* ``tracemalloc``: ``take_snapshot()`` twice and ``compare_to(before, "lineno")``,
  the baseline of the main ratio;
* ``memguard sites``: ``memguard.snapshot(census=False)`` twice and
  ``memguard.diff`` (sites by line, memguard's own frames filtered, plus RSS,
  USS, descriptors and threads);
* ``memguard full``: the default ``memguard.snapshot()``, which adds the
  live-object census.

Rounds alternate the tools (a tool's own records would otherwise show up in
the next tool's snapshot) and the median is kept. Also measured: the saved
file (size as JSON and as ``.json.gz``, save and load time) and the census
(``objects.count_types(untracked=True)``, which also counts the objects gc
does not track, against a bare ``Counter`` of ``gc.get_objects()`` types and
objgraph's ``typestats``).

Times are CPU seconds of the benchmark process (``time.process_time``), so
that other work on a shared machine does not count.

Run on its own: ``.venv/bin/python benchmarks/bench_snapshot.py [--quick] [--sites N]``.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import memguard
from memguard import _tracing, objects

_PER_FUNCTION = 1000
# CPU time of this process: the work measured is single-threaded, and the
# machines these run on are shared, so wall time would mostly measure others.
_clock = time.process_time


def make_workload(sites: int) -> Callable[[list[Any]], None]:
    """A function that allocates one kept ``bytearray`` at each of *sites* lines."""
    functions = []
    lines = []
    for f in range(0, sites, _PER_FUNCTION):
        lines.append(f"def f{f}(keep):")
        lines.extend(f"    keep.append(bytearray({8 + i % 64}))"
                     for i in range(min(_PER_FUNCTION, sites - f)))
        functions.append(f"f{f}")
    lines.append("def run(keep):")
    lines.extend(f"    {name}(keep)" for name in functions)
    namespace: dict[str, Any] = {}
    exec(compile("\n".join(lines) + "\n", "<bench-sites>", "exec"), namespace)
    run: Callable[[list[Any]], None] = namespace["run"]
    return run


def _tracemalloc_round(run: Callable[[list[Any]], None]) -> tuple[float, int]:
    keep: list[Any] = []
    start = _clock()
    before = tracemalloc.take_snapshot()
    took = _clock() - start
    run(keep)
    start = _clock()
    after = tracemalloc.take_snapshot()
    stats = after.compare_to(before, "lineno")
    took += _clock() - start
    found = len(stats)
    del before, after, stats, keep
    return took, found


def _memguard_round(run: Callable[[list[Any]], None], census: bool) -> tuple[float, int]:
    keep: list[Any] = []
    start = _clock()
    before = memguard.snapshot(census=census)
    took = _clock() - start
    run(keep)
    start = _clock()
    after = memguard.snapshot(census=census)
    diff = memguard.diff(before, after)
    took += _clock() - start
    found = len(diff.sites or ())
    del before, after, diff, keep
    return took, found


def _median_ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 2)


def _files(snap: memguard.Snapshot, rounds: int) -> dict[str, float]:
    figures: dict[str, float] = {"sites in the saved snapshot": len(snap.sites or ())}
    with tempfile.TemporaryDirectory(prefix="memguard-bench-") as tmp:
        for name in ("snap.json", "snap.json.gz"):
            path = Path(tmp) / name
            saves, loads = [], []
            for _ in range(rounds):
                start = _clock()
                snap.save(path)
                saves.append(_clock() - start)
                start = _clock()
                loaded = memguard.load(path)
                loads.append(_clock() - start)
                assert loaded == snap
                del loaded
            figures[f"{name} size bytes"] = path.stat().st_size
            figures[f"{name} save ms"] = _median_ms(saves)
            figures[f"{name} load ms"] = _median_ms(loads)
    return figures


def _census(rounds: int) -> tuple[dict[str, float], dict[str, float]]:
    import objgraph

    def bare() -> dict[str, int]:
        return dict(Counter(type(o).__name__ for o in gc.get_objects()))

    ways: dict[str, Callable[[], dict[str, int]]] = {
        "gc.get_objects() Counter": bare,
        "objgraph.typestats": objgraph.typestats,
        "memguard count_types(untracked=False)": lambda: objects.count_types(untracked=False),
        "memguard count_types(untracked=True)": lambda: objects.count_types(untracked=True),
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    found: dict[str, int] = {}
    for _ in range(rounds):
        for name, way in ways.items():
            gc.collect()
            start = _clock()
            counts = way()
            times[name].append(_clock() - start)
            found[name] = sum(counts.values())
            del counts
    base = statistics.median(times["gc.get_objects() Counter"])
    ratios = {f"census: {name}": statistics.median(t) / base for name, t in times.items()
              if name != "gc.get_objects() Counter"}
    figures = {f"census {name} ms": _median_ms(t) for name, t in times.items()}
    figures.update({f"census {name} objects": n for name, n in found.items()})
    return ratios, figures


def main(quick: bool, sites: int | None = None) -> dict[str, Any]:
    """Run the benchmark; the figures and ratios as a dict (see the module docstring)."""
    sites = sites or (20_000 if quick else 100_000)
    rounds = 3 if quick else 5
    run = make_workload(sites)
    window = _tracing.begin(nframes=1)
    try:
        run([])  # warm up: the code objects, the allocators, the first imports
        memguard.diff(memguard.snapshot(), memguard.snapshot())
        times: dict[str, list[float]] = {"tracemalloc": [], "memguard sites": [],
                                         "memguard full": []}
        found: dict[str, int] = {}
        for _ in range(rounds):
            for name, taken in times.items():
                gc.collect()
                if name == "tracemalloc":
                    took, count = _tracemalloc_round(run)
                else:
                    took, count = _memguard_round(run, census=name == "memguard full")
                taken.append(took)
                found[name] = count
        keep: list[Any] = []
        run(keep)
        saved = memguard.snapshot("bench", census=False)
        del keep
    finally:
        _tracing.end(window)
    file_figures = _files(saved, rounds)  # not traced, as a user loads a file
    census_ratios, census_figures = _census(rounds)
    base = statistics.median(times["tracemalloc"])
    ratios = {
        f"snapshot+diff {sites // 1000}k sites: memguard sites": (
            statistics.median(times["memguard sites"]) / base),
        f"snapshot+diff {sites // 1000}k sites: memguard full (with census)": (
            statistics.median(times["memguard full"]) / base),
        **census_ratios,
    }
    figures: dict[str, float] = {f"snapshot+diff {name} ms": _median_ms(t)
                                 for name, t in times.items()}
    figures.update({f"sites found by {name}": n for name, n in found.items()})
    figures.update(file_figures)
    figures.update(census_figures)
    main_ratio = ratios[f"snapshot+diff {sites // 1000}k sites: memguard sites"]
    target = "meets" if main_ratio <= 1.5 else "MISSES"
    return {
        "title": "Snapshot and diff on many allocation sites",
        "description": __doc__.split("\n\n")[1] if __doc__ else "",
        "unit": "time / tracemalloc's (snapshot+diff) or / a bare gc.get_objects() census",
        "ratios": ratios,
        "figures": figures,
        "notes": [
            f"{sites:,} sites, median of {rounds} rounds; memguard sites/tracemalloc = "
            f"{main_ratio:.2f}x, which {target} the 1.5x target",
            "the census counts objects gc does not track too, which is why it finds more "
            "objects than gc.get_objects() and objgraph",
        ],
    }


def _print(result: dict[str, Any]) -> None:
    print(f"== snapshot: {result['title']}")
    for name, ratio in result["ratios"].items():
        print(f"  {name}: {ratio:.2f}x")
    for name, value in result["figures"].items():
        print(f"  {name}: {value:,}")
    for note in result["notes"]:
        print(f"  note: {note}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="20,000 sites, 3 rounds")
    parser.add_argument("--sites", type=int, default=None, help="number of allocation sites")
    arguments = parser.parse_args()
    _print(main(arguments.quick, arguments.sites))
