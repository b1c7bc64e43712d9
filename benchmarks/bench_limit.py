"""Overhead of ``memguard.limit()`` next to its peers, on three workloads.

Workloads, each a plain function run once per measurement:

* ``alloc-heavy``: many small Python objects (dicts, tuples, strings), the
  worst case for any allocation tracer;
* ``stdlib-mixed``: ``json.dumps``/``json.loads`` of records and ``re``
  parsing of log lines;
* ``numpy``: matrix products and sorts on arrays, plus many small arrays.

Ways to run each (the time includes starting and stopping the measurement
and reading its result, since a test pays for that too):

* ``untraced``: the baseline of every ratio;
* ``tracemalloc (1 frame)``: ``tracemalloc.start(1)``, peak read, ``stop()``;
* ``memguard.limit()``: the default: the exact Python-heap peak from
  memguard's native allocation counter, with sampled sites at the peak
  (``memguard.limit(sites=False)``: without the sampling);
* ``memguard.limit(sites="exact")``: the exact-sites mode: tracemalloc's
  peak and its traces, the counter's hook saying when to copy them;
* ``memguard.limit(source="rss")``: the process peak from the kernel's
  high-water mark (or psutil sampling where there is none);
* ``pytest-memray limit_memory``: what pytest-memray does for its
  ``limit_memory`` marker: a ``memray.Tracker`` writing aggregated records to
  a temporary file (native traces and Python allocators off, its defaults),
  then the high-water-mark records read back and summed;
* ``memray (python allocators)``: the same with ``trace_python_allocators=True``,
  which sees every Python allocation as tracemalloc does;
* ``memory_profiler.memory_usage``: memory_profiler's peak of a call
  (``max_usage=True``, 10 ms sampling from a child process).

Two figures per mode: **warm**, this process, after a warm-up run of every
mode (imports done, caches full); and **fresh**, a new interpreter per
measurement that imports what the mode needs and runs the workload once in
it (what the first test of a suite pays), timed from before the imports.

Every measurement is the CPU time of this process (all its threads), so
that other work on a shared machine does not decide the figures; it is
repeated (rounds interleave the modes, so drift hits them alike) and the
median is kept. memory_profiler samples from a child process, whose CPU
time is not counted.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import re
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import memguard

# One BLAS thread: on a shared machine, multi-threaded matrix products make
# the numpy workload's time depend on the other processes more than on the
# tool measured.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

CLOCK = time.process_time
"""CPU time of this process, all its threads (memguard's catcher, memray's
writer) included. Wall time on a shared 2-core machine says more about the
other processes than about the tool measured; CPU time does not."""

# -- workloads -----------------------------------------------------------------


def alloc_heavy(n: int) -> int:
    """Many small objects, kept alive together, then dropped."""
    rows = []
    for i in range(n):
        rows.append({"id": i, "name": f"user{i}", "pair": (i, i + 1), "tags": [i % 7]})
    return len(rows)


_LOG = re.compile(r"(?P<ts>\d+) (?P<level>[A-Z]+) (?P<who>\w+): (?P<msg>.*)")


def stdlib_mixed(n: int) -> int:
    """json round trips and regular-expression parsing."""
    records = [{"id": i, "name": f"item {i}", "price": i * 0.5, "tags": ["a", "b", str(i)]}
               for i in range(n)]
    text = json.dumps(records)
    back = json.loads(text)
    lines = [f"{i} INFO worker{i % 5}: processed item {i} in {i % 97} ms" for i in range(n)]
    parsed = [m.groupdict() for m in map(_LOG.match, lines) if m is not None]
    return len(back) + len(parsed)


def numpy_work(n: int) -> int:
    """Array arithmetic: big temporaries and many small arrays."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.random((n, n))
    total = 0.0
    for _ in range(3):
        b = a @ a.T
        c = np.sort(b, axis=1)
        total += float(c[:, -1].sum())
    for i in range(n * 8):
        total += float((np.arange(64) * i).sum())
    return int(total)


# -- modes ---------------------------------------------------------------------


@contextlib.contextmanager
def untraced() -> Iterator[None]:
    yield


@contextlib.contextmanager
def bare_tracemalloc() -> Iterator[None]:
    tracemalloc.start(1)
    try:
        yield
        tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()


def memguard_limit(**options: Any) -> Callable[[], contextlib.AbstractContextManager[Any]]:
    def make() -> contextlib.AbstractContextManager[Any]:
        return memguard.limit(gb=100, **options)
    return make


def memray_limit_memory(*, python_allocators: bool) -> Callable[[], Any]:
    import memray

    @contextlib.contextmanager
    def run() -> Iterator[None]:
        with tempfile.TemporaryDirectory(prefix="memguard-bench-memray-") as tmp:
            path = Path(tmp) / "result.bin"
            with memray.Tracker(path, native_traces=False,
                                trace_python_allocators=python_allocators,
                                file_format=memray.FileFormat.AGGREGATED_ALLOCATIONS):
                yield
            reader = memray.FileReader(path)
            sum(record.size for record in reader.get_high_watermark_allocation_records(
                merge_threads=True))
            reader.close()
    return run


def _memory_profiler_time(fn: Callable[[], object]) -> float:
    from memory_profiler import memory_usage

    started = CLOCK()
    memory_usage((fn, (), {}), interval=0.01, max_usage=True)
    return CLOCK() - started


MODES: dict[str, Callable[[], Any]] = {
    "untraced": untraced,
    "tracemalloc (1 frame)": bare_tracemalloc,
    "memguard.limit()": memguard_limit(),
    "memguard.limit(sites=False)": memguard_limit(sites=False),
    'memguard.limit(sites="exact")': memguard_limit(sites="exact"),
    'memguard.limit(source="rss")': memguard_limit(source="rss"),
}


def _peer_modes() -> dict[str, Callable[[], Any]]:
    modes: dict[str, Callable[[], Any]] = {}
    try:
        import memray  # noqa: F401
    except ImportError:
        return modes
    modes["pytest-memray limit_memory"] = memray_limit_memory(python_allocators=False)
    modes["memray (python allocators)"] = memray_limit_memory(python_allocators=True)
    return modes


def time_once(mode: Callable[[], Any], fn: Callable[[], object]) -> float:
    """Seconds to run *fn* once inside a fresh *mode* context."""
    gc.collect()
    started = CLOCK()
    with mode():
        fn()
    return CLOCK() - started


def main(quick: bool) -> dict[str, Any]:
    """Measure every mode on every workload; ratios to the untraced run."""
    repeats = 7 if quick else 15
    sizes = {"alloc-heavy": 40_000 if quick else 200_000,
             "stdlib-mixed": 15_000 if quick else 60_000,
             "numpy": 250 if quick else 500}
    workloads: dict[str, Callable[[], object]] = {
        "alloc-heavy": lambda: alloc_heavy(sizes["alloc-heavy"]),
        "stdlib-mixed": lambda: stdlib_mixed(sizes["stdlib-mixed"]),
    }
    try:
        import numpy  # noqa: F401
    except ImportError:
        pass
    else:
        workloads["numpy"] = lambda: numpy_work(sizes["numpy"])
    modes = {**MODES, **_peer_modes()}
    with_mprof = "memory_profiler" in sys.modules or _has("memory_profiler")
    times: dict[tuple[str, str], list[float]] = {}
    for fn in workloads.values():
        for mode in modes.values():
            time_once(mode, fn)  # warm up: imports, caches, first-touch pages
    order = list(modes)
    for round_ in range(repeats):
        # Rotate the order each round, so no mode always runs first or
        # right after the memory_profiler child process.
        rotated = order[round_ % len(order):] + order[:round_ % len(order)]
        for name, fn in workloads.items():
            for label in rotated:
                times.setdefault((name, label), []).append(time_once(modes[label], fn))
            if with_mprof:
                label = "memory_profiler.memory_usage"
                times.setdefault((name, label), []).append(_memory_profiler_time(fn))
    for name in workloads:
        for label in modes:
            for _ in range(1 if quick else 3):
                times.setdefault((name, f"fresh: {label}"), []).append(
                    _fresh_time(label, name, sizes[name]))
    return _result(workloads, times, repeats, sizes)


def _fresh_time(label: str, workload: str, size: int) -> float:
    """CPU seconds of a new interpreter's first run of *workload* in mode *label*."""
    import subprocess

    out = subprocess.run([sys.executable, __file__, "--fresh", label, workload, str(size)],
                         capture_output=True, text=True, check=True, timeout=None)
    return float(out.stdout.split()[-1])


def _fresh_main(label: str, workload: str, size: int) -> None:
    fns = {"alloc-heavy": alloc_heavy, "stdlib-mixed": stdlib_mixed, "numpy": numpy_work}
    started = CLOCK()
    mode = {**MODES, **_peer_modes()}[label]
    with mode():
        fns[workload](size)
    print(f"{CLOCK() - started:.6f}")


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _result(workloads: dict[str, Any], times: dict[tuple[str, str], list[float]],
            repeats: int, sizes: dict[str, int]) -> dict[str, Any]:
    median = {key: statistics.median(values) for key, values in times.items()}
    labels = [label for label in dict.fromkeys(label for _, label in times)
              if label != "fresh: untraced"]
    ratios: dict[str, float] = {}
    table = []
    for name in workloads:
        base = median[(name, "untraced")]
        fresh_base = median.get((name, "fresh: untraced"), base)
        row: dict[str, Any] = {"workload": name, "untraced ms": round(base * 1000, 1)}
        for label in labels[1:]:
            over = fresh_base if label.startswith("fresh: ") else base
            ratio = round(median[(name, label)] / over, 3)
            row[label] = f"{ratio:.2f}x"
            ratios[f"{name}: {label}"] = ratio
        table.append(row)
    notes = []
    for name in workloads:
        tm = ratios[f"{name}: tracemalloc (1 frame)"]
        mg = ratios[f"{name}: memguard.limit()"]
        rss = ratios[f'{name}: memguard.limit(source="rss")']
        peer = ratios.get(f"{name}: pytest-memray limit_memory")
        target = "met" if mg <= 1.3 and (peer is None or mg < peer) else "missed"
        notes.append(f"{name}: limit() (counter) {mg:.2f}x untraced, target <= 1.3x and below "
                     f"pytest-memray's limit_memory ({peer if peer else 'absent'}): {target}; "
                     f"bare tracemalloc {tm:.2f}x; source=\"rss\" {rss:.2f}x")
    return {
        "title": "limit() overhead",
        "description": (f"CPU time of one run of each workload inside each measurement "
                        f"(this process, all threads), over the untraced run; median of "
                        f"{repeats} interleaved repeats. memory_profiler's sampling runs in a "
                        f"child process, not counted. Sizes: "
                        + ", ".join(f"{k} n={v:,}" for k, v in sizes.items()) + "."),
        "unit": "CPU time / untraced CPU time",
        "ratios": ratios,
        "figures": {f"{n}: {label} ms": round(median[(n, label)] * 1000, 2)
                    for n, label in times},
        "table": table,
        "notes": notes,
    }


if __name__ == "__main__":
    if "--fresh" in sys.argv:
        _index = sys.argv.index("--fresh")
        _fresh_main(sys.argv[_index + 1], sys.argv[_index + 2], int(sys.argv[_index + 3]))
    else:
        print(json.dumps(main("--quick" in sys.argv), indent=2))
