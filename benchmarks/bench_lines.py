"""Line-by-line memory profiles: ``memguard.profile`` next to memory_profiler's ``@profile``.

Workloads (plain functions of a few lines each):

* ``small_dicts``: a loop that builds small dicts (the case the issue
  measured at about 7x under memory_profiler);
* ``big_blocks``: a few large allocations per line, some kept, some freed
  within their line, repeated;
* ``json_roundtrip``: ``json.dumps``/``json.loads`` in a loop, so each line
  calls into the standard library (callees roll up into the line);
* ``recursive``: a recursive function building a list of blocks.

And the cost of ``memguard run --lines FILE:FUNCTION`` to the rest of the
program (``program: ...``): a call-heavy program (a recursive ``fib``) that
calls the named function once per run. ``traced`` is the program under
tracemalloc alone (what ``memguard run`` adds); ``--lines`` is the same with a
:class:`memguard.lines.LineTarget` attached, which sees every call to decide
whether it is the target's; both are ratios to the plain program.

Tools, each on the same function in the same run, interleaved, median of
the repeats:

* ``unprofiled``: the plain call, the baseline;
* ``memguard``: ``memguard.profile(show=False)`` as it runs by default: with
  memguard's native allocation counter where it is built (one C call per
  line event, line tags for *retained*; tracemalloc is not started);
* ``memguard tracemalloc``: the same with the counter switched off
  (``MEMGUARD_NO_NATIVE=1``, the fallback): tracemalloc's counters read at
  every line, tracemalloc started and stopped by the profile;
* ``memory_profiler``: its ``LineProfiler`` (what ``@profile`` uses, RSS read
  through psutil at every line), without the printing.

The ratio is a tool's time over the unprofiled time. The per-line figures of
``big_blocks`` are printed side by side with the exact sizes, since
memory_profiler's increments are RSS deltas (the allocator returns freed
memory to the OS or not, pages are touched or not) and memguard's come from
tracemalloc.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from memory_profiler import LineProfiler

import memguard
from memguard import _counter
from memguard.values.lineprofile import LineProfile

MIB = 1024 * 1024


def small_dicts(n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        out.append({"id": i, "name": "x", "tags": None})
    return out


def big_blocks(n: int) -> int:
    total = 0
    for _ in range(n):
        kept = bytearray(8 * MIB)
        scratch = bytearray(16 * MIB); del scratch  # noqa: E702
        numbers = [0] * 1_000_000
        total += len(kept) + len(numbers)
        del kept, numbers
    return total


def json_roundtrip(n: int) -> int:
    record = {"id": 1, "values": list(range(20)), "name": "widget"}
    size = 0
    for _ in range(n):
        text = json.dumps(record)
        size += len(json.loads(text)["values"])
    return size


def recursive(n: int) -> list[bytearray]:
    if n == 0:
        return []
    out = recursive(n - 1)
    out.append(bytearray(1000))
    return out


def make_doc(n: int) -> list[bytes]:
    return [bytes(100) for _ in range(n)]


def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def call_heavy_program(n: int) -> int:
    """Tens of thousands of calls outside the target, one call of it."""
    total = fib(n)
    make_doc(100)
    return total


def _program_ratios(n: int, repeats: int) -> dict[str, float]:
    """The program plain, under tracemalloc, and under tracemalloc with
    ``--lines`` on make_doc, interleaved: medians, then ratios to plain."""
    import tracemalloc

    from memguard.lines import LineTarget

    call_heavy_program(n)  # warm up
    times: dict[str, list[float]] = {"plain": [], "traced": [], "lines": []}
    calls = 0
    for _ in range(repeats):
        times["plain"].append(_timed(lambda: call_heavy_program(n)))
        tracemalloc.start()
        try:
            times["traced"].append(_timed(lambda: call_heavy_program(n)))
            target = LineTarget.parse(f"{__file__}:make_doc")
            target.attach()
            try:
                times["lines"].append(_timed(lambda: call_heavy_program(n)))
            finally:
                target.detach()
        finally:
            tracemalloc.stop()
        calls += sum(profile.calls for profile in target.results())
    assert calls == repeats, calls
    plain, traced, lines = (statistics.median(times[k]) for k in ("plain", "traced", "lines"))
    return {"program: traced": round(traced / plain, 2),
            "program: --lines": round(lines / plain, 2),
            "program: --lines / traced": round(lines / traced, 2)}


def _fallback(call: Callable[[], Any]) -> Callable[[], Any]:
    """*call* with the counter switched off (read when no count is open)."""
    def run() -> Any:
        os.environ[_counter.ENV_DISABLE] = "1"
        try:
            return call()
        finally:
            del os.environ[_counter.ENV_DISABLE]
    return run


def _timed(call: Callable[[], Any]) -> float:
    gc.collect()
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _mp_rows(profiler: LineProfiler) -> dict[int, tuple[float, int]]:
    rows: dict[int, tuple[float, int]] = {}
    for _filename, lines in profiler.code_map.items():
        for lineno, measure in lines:
            if measure is not None:
                rows[lineno] = (measure[0], measure[2])
    return rows


def _line_comparison(n: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Per-line figures of big_blocks from both tools, next to the exact sizes."""
    profiler = LineProfiler()
    profiler(big_blocks)(n)
    theirs = _mp_rows(profiler)
    decorated = memguard.profile(show=False)(big_blocks)
    decorated(n)
    ours: LineProfile = decorated.last_profile
    first = big_blocks.__code__.co_firstlineno
    expected = {
        first + 3: n * sys.getsizeof(bytearray(8 * MIB)),
        first + 4: n * sys.getsizeof(bytearray(16 * MIB)),
        first + 5: n * 8_000_000,
    }
    table = []
    for lineno, exact in expected.items():
        row = ours.row(lineno)
        increment = theirs.get(lineno, (float("nan"), 0))[0]
        table.append({
            "line": row.source.strip()[:40],
            "exact allocated": memguard.format_size(exact),
            "memguard allocated": memguard.format_size(row.allocated_bytes),
            "memory_profiler increment": f"{increment:+.1f} MiB",
        })
    notes = []
    negative = [lineno for lineno, (inc, _) in theirs.items() if inc < 0]
    if negative:
        notes.append(f"memory_profiler reported negative increments on {len(negative)} "
                     f"line(s) of big_blocks; memguard's allocated figures are never negative")
    return table, notes


def main(quick: bool) -> dict[str, Any]:
    sizes = ({"small_dicts": 20_000, "big_blocks": 2, "json_roundtrip": 2_000, "recursive": 200}
             if quick else
             {"small_dicts": 200_000, "big_blocks": 8, "json_roundtrip": 20_000,
              "recursive": 800})
    repeats = 3 if quick else 5
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 5_000))
    # First, in a fresh process (RSS not yet grown by the timing runs below).
    table, notes = _line_comparison(sizes["big_blocks"])
    workloads: dict[str, Callable[[int], Any]] = {
        "small_dicts": small_dicts, "big_blocks": big_blocks,
        "json_roundtrip": json_roundtrip, "recursive": recursive,
    }
    times: dict[tuple[str, str], list[float]] = {}
    for name, fn in workloads.items():
        n = sizes[name]
        ours = memguard.profile(show=False)(fn)
        tools: dict[str, Callable[[], Any]] = {
            "unprofiled": lambda fn=fn, n=n: fn(n),
            "memguard": lambda ours=ours, n=n: ours(n),
            "memguard tracemalloc": _fallback(lambda ours=ours, n=n: ours(n)),
            "memory_profiler": lambda fn=fn, n=n: LineProfiler()(fn)(n),
        }
        for call in tools.values():  # warm up: imports, line tables, caches
            call()
        for _ in range(repeats):
            for tool, call in tools.items():
                times.setdefault((name, tool), []).append(_timed(call))
    median = {key: statistics.median(value) for key, value in times.items()}
    ratios: dict[str, float] = {}
    for name in workloads:
        base = median[(name, "unprofiled")]
        for tool in ("memguard", "memguard tracemalloc", "memory_profiler"):
            ratios[f"{name}: {tool}"] = round(median[(name, tool)] / base, 2)
    ratios.update(_program_ratios(22 if quick else 25, 2 * repeats + 1))
    cheaper = [name for name in workloads
               if ratios[f"{name}: memguard"] < ratios[f"{name}: memory_profiler"]]
    notes.append(f"memguard cheaper than memory_profiler on {len(cheaper)} of "
                 f"{len(workloads)} workloads ({', '.join(cheaper) or 'none'})")
    notes.append(f"memguard's default measure here: {_counter.measurement()}"
                 + ("" if _counter.available() else f" ({_counter.unavailable_reason()})"))
    return {
        "title": "line profile overhead",
        "description": (f"Time of one profiled call over the unprofiled call; median of "
                        f"{repeats} interleaved repeats. Sizes: "
                        + ", ".join(f"{k} n={v:,}" for k, v in sizes.items()) + "."),
        "unit": "time / unprofiled time",
        "ratios": ratios,
        "figures": {f"{name}: {tool} ms": round(median[(name, tool)] * 1000, 2)
                    for name, tool in median},
        "table": table,
        "notes": notes,
    }


def _print(result: dict[str, Any]) -> None:
    print(result["title"], "-", result["unit"])
    for key, value in result["ratios"].items():
        print(f"  {key:<34} {value:>7.2f}x")
    print("\nbig_blocks, per line:")
    for row in result["table"]:
        print("  " + " | ".join(f"{k}: {v}" for k, v in row.items()))
    for note in result["notes"]:
        print("note:", note)


if __name__ == "__main__":
    outcome = main("--full" not in sys.argv)
    if "--json" in sys.argv:
        print(json.dumps(outcome, indent=2))
    else:
        _print(outcome)
