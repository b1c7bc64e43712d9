"""Leak verdicts on the leak corpus: memguard's check_leaks next to its peers.

Every scenario of ``tests/leak_corpus`` (leaks and clean look-alikes) is
judged by each tool, tools interleaved per scenario, the scenario reset in
between. The confusion matrix per tool (leaks caught, leaks missed, clean
cases flagged, clean cases passed) and the share it names (the culprit text
in its report) are printed side by side.

Tools and the rule that turns their output into a verdict:

* ``memguard check_leaks``: defaults; a raised ``LeakDetected`` (here
  ``fail=False`` and ``report.leaked``). Named: the scenario's culprit text
  is in ``report.message()``.
* ``objgraph growth``: 5 warm-up calls, ``objgraph.growth()`` as the
  baseline, 40 calls, ``growth()`` again: a leak when any type grew (the
  ``assert not objgraph.growth()`` idiom).
* ``tracemalloc diff``: 1 warm-up call, a snapshot, 40 calls, ``gc.collect()``,
  a snapshot: a leak when the traced total grew by more than 40 x 32 bytes.
* ``pympler SummaryTracker``: 5 warm-up calls, a tracker and a first
  ``diff()`` (which absorbs the tracker's own summaries), 40 calls,
  ``diff()`` again: a leak when some type gained at least one object per
  call (40), or the total size grew by more than 40 x 64 bytes.
* ``psleak``: ``MemoryLeakTestCase.execute(fn)`` with its defaults
  (10 warm-up calls, runs of 200 calls, retries while memory grows; heap,
  USS, RSS, fds, threads, gc garbage): a leak when it raises.
* ``pytest-memray limit_leaks``: every scenario as a test marked
  ``@pytest.mark.limit_leaks("1 KB")`` (5 + 40 calls), one ``pytest --memray``
  subprocess (full run only: it needs a fresh interpreter under memray).

Run: ``.venv/bin/python benchmarks/bench_leaks.py [--quick]`` or through
``run_all.py``. ``--quick`` judges 12 scenarios (6 leaks, 6 clean) and skips
pytest-memray.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from memguard import track_leaks  # noqa: E402
from tests.leak_corpus import SCENARIOS, Scenario  # noqa: E402

CALLS = 40
QUICK = ("dict_cache", "registry_callbacks", "every_tenth_call", "ctypes_native", "fd_leak",
         "tiny_64_bytes", "warmup_cache", "lru_cache_128", "gc_cycles", "fragmentation",
         "interned_strings", "thread_pool")

Verdict = tuple[bool, bool]  # (flagged as a leak, culprit named)


def _repeat(fn: Callable[[], object], times: int) -> None:
    for _ in range(times):
        fn()


def judge_memguard(scenario: Scenario) -> Verdict:
    report = track_leaks(fail=False).check(scenario.run)
    named = bool(scenario.culprit) and scenario.culprit in report.message()
    return report.leaked, named


def judge_objgraph(scenario: Scenario) -> Verdict:
    import objgraph

    peak: dict[str, int] = {}
    _repeat(scenario.run, 5)
    objgraph.growth(limit=None, peak_stats=peak)
    _repeat(scenario.run, CALLS)
    grown = objgraph.growth(limit=None, peak_stats=peak)
    text = " ".join(name for name, _, _ in grown)
    return bool(grown), bool(scenario.culprit) and scenario.culprit in text


def judge_tracemalloc(scenario: Scenario) -> Verdict:
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start(8)
    try:
        scenario.run()
        gc.collect()
        before = tracemalloc.take_snapshot()
        _repeat(scenario.run, CALLS)
        gc.collect()
        after = tracemalloc.take_snapshot()
        diff = after.compare_to(before, "lineno")
        grown = sum(stat.size_diff for stat in diff)
        text = "\n".join(str(stat) for stat in diff[:10])
        del before, after, diff
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return grown > CALLS * 32, bool(scenario.culprit) and scenario.culprit in text


def judge_pympler(scenario: Scenario) -> Verdict:
    from pympler import tracker

    _repeat(scenario.run, 5)
    summary = tracker.SummaryTracker()
    summary.diff()  # the first diff holds the tracker's own summaries: absorb it
    _repeat(scenario.run, CALLS)
    gc.collect()
    rows = summary.diff()
    flagged = any(count >= CALLS for _, count, _ in rows) or (
        sum(size for _, _, size in rows) > CALLS * 64)
    text = " ".join(str(name) for name, count, _ in rows if count > 0)
    del summary
    return flagged, bool(scenario.culprit) and scenario.culprit in text


def _psleak_child(names: list[str]) -> None:
    """In a ``PYTHONMALLOC=malloc`` child (psleak's requirement): judge, print JSON lines."""
    import json

    import psleak

    class Case(psleak.MemoryLeakTestCase):  # type: ignore[misc]
        def runTest(self) -> None:
            """Unused: execute() is called directly."""

    for name in names:
        scenario = next(s for s in SCENARIOS if s.name == name)
        started = time.perf_counter()
        try:
            Case().execute(scenario.run)
        except psleak.Error as error:
            verdict = (True, bool(scenario.culprit) and scenario.culprit in str(error))
        else:
            verdict = (False, False)
        finally:
            scenario.reset()
        print(json.dumps({"name": name, "flagged": verdict[0], "named": verdict[1],
                          "seconds": time.perf_counter() - started}), flush=True)


def judge_psleak(names: list[str]) -> tuple[dict[str, bool], dict[str, bool], float]:
    """Every scenario under psleak, in one child process; (flagged, named, seconds)."""
    import json

    env = dict(os.environ, PYTHONMALLOC="malloc", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, __file__, "--psleak-child", *names],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=1200,
                          check=False)
    flagged, named, seconds = {}, {}, 0.0
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            data = json.loads(line)
            flagged[data["name"]], named[data["name"]] = data["flagged"], data["named"]
            seconds += data["seconds"]
    if len(flagged) != len(names):
        raise RuntimeError("psleak child did not judge every scenario:\n"
                           + done.stdout[-2000:] + done.stderr[-2000:])
    return flagged, named, seconds


TOOLS: dict[str, Callable[[Scenario], Verdict]] = {
    "memguard check_leaks": judge_memguard,
    "objgraph growth": judge_objgraph,
    "tracemalloc diff": judge_tracemalloc,
    "pympler SummaryTracker": judge_pympler,
}

_MEMRAY_TEST = '''
import pytest
from tests.leak_corpus import SCENARIOS

@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
@pytest.mark.limit_leaks("1 KB")
def test_scenario(scenario):
    try:
        for _ in range(5 + {calls}):
            scenario.run()
    finally:
        pass  # reset after the test: freeing inside it would hide the leak


@pytest.fixture(autouse=True)
def _reset(request):
    yield
    request.node.callspec.params["scenario"].reset()
'''


def judge_memray(names: list[str]) -> dict[str, bool]:
    """Run every scenario under pytest-memray's limit_leaks; name -> flagged."""
    with tempfile.TemporaryDirectory() as directory:
        test = Path(directory) / "test_memray_corpus.py"
        test.write_text(_MEMRAY_TEST.format(calls=CALLS))
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        done = subprocess.run(
            [sys.executable, "-m", "pytest", str(test), "--memray", "-q", "-rA",
             "-p", "no:cacheprovider", "-p", "no:randomly", "-W", "ignore",
             "--rootdir", directory],
            capture_output=True, text=True, env=env, cwd=directory, timeout=600, check=False)
    verdicts: dict[str, bool] = {}
    for line in done.stdout.splitlines():
        for name in names:
            if f"test_scenario[{name}]" in line:
                if line.startswith(("FAILED", "MEMORY PROBLEMS", "ERROR")):
                    verdicts[name] = True
                elif line.startswith("PASSED"):
                    verdicts.setdefault(name, False)
    if len(verdicts) != len(names):
        raise RuntimeError("pytest-memray run did not report every scenario:\n"
                           + done.stdout[-2000:] + done.stderr[-2000:])
    return verdicts


def _busy_1ms() -> None:
    deadline = time.perf_counter() + 0.001
    while time.perf_counter() < deadline:
        pass


def _clean_1ms_at_100k() -> float:
    """Seconds for a default check of a clean 1 ms function with 100,000 extra live objects."""
    heap = [[i] for i in range(100_000)]
    try:
        started = time.perf_counter()
        report = track_leaks(fail=False).check(_busy_1ms)
        spent = time.perf_counter() - started
        assert not report.leaked, report.message()
        return spent
    finally:
        heap.clear()


def confusion(scenarios: list[Scenario], flagged: dict[str, bool],
              named: dict[str, bool] | None) -> dict[str, Any]:
    leaks = [s for s in scenarios if s.expected_leak]
    clean = [s for s in scenarios if not s.expected_leak]
    caught = sum(flagged[s.name] for s in leaks)
    false_alarms = sum(flagged[s.name] for s in clean)
    correct = caught + len(clean) - false_alarms
    row: dict[str, Any] = {
        "leaks caught": f"{caught}/{len(leaks)}",
        "leaks missed": len(leaks) - caught,
        "clean flagged": f"{false_alarms}/{len(clean)}",
        "accuracy": round(correct / len(scenarios), 3),
        "named": "-" if named is None else f"{sum(named[s.name] for s in leaks)}/{len(leaks)}",
    }
    return row


def main(quick: bool) -> dict[str, Any]:
    scenarios = [s for s in SCENARIOS if not quick or s.name in QUICK]
    flagged: dict[str, dict[str, bool]] = {tool: {} for tool in TOOLS}
    named: dict[str, dict[str, bool]] = {tool: {} for tool in TOOLS}
    seconds: dict[str, float] = dict.fromkeys(TOOLS, 0.0)
    memguard_seconds: dict[str, float] = {}
    for scenario in scenarios:
        for tool, judge in TOOLS.items():
            started = time.perf_counter()
            try:
                flagged[tool][scenario.name], named[tool][scenario.name] = judge(scenario)
            finally:
                scenario.reset()
                gc.collect()
            spent = time.perf_counter() - started
            seconds[tool] += spent
            if tool == "memguard check_leaks":
                memguard_seconds[scenario.name] = spent
    names = [s.name for s in scenarios]
    flagged["psleak"], named["psleak"], seconds["psleak"] = judge_psleak(names)
    notes = ["psleak runs in its own PYTHONMALLOC=malloc process, which it requires"]
    if not quick:
        started = time.perf_counter()
        flagged["pytest-memray limit_leaks"] = judge_memray(names)
        seconds["pytest-memray limit_leaks"] = time.perf_counter() - started
    else:
        notes.append("pytest-memray limit_leaks is run only without --quick (it needs its own "
                     "pytest --memray subprocess)")
    table = []
    for tool, verdicts in flagged.items():
        row = {"tool": tool, **confusion(scenarios, verdicts, named.get(tool)),
               "seconds": round(seconds[tool], 1)}
        table.append(row)
    per_scenario = [{"scenario": s.name, "expected": "leak" if s.expected_leak else "clean",
                     **{tool: "LEAK" if flagged[tool][s.name] else "ok" for tool in flagged}}
                    for s in scenarios]
    wrong = {tool: [s.name for s in scenarios if flagged[tool][s.name] != s.expected_leak]
             for tool in flagged}
    notes.extend(f"{tool} misjudged: {', '.join(names)}" for tool, names in wrong.items()
                 if names)
    unnamed = [s.name for s in scenarios if s.expected_leak
               and not named["memguard check_leaks"].get(s.name)]
    leak_count = sum(s.expected_leak for s in scenarios)
    notes.append(f"memguard names the culprit in {leak_count - len(unnamed)} of {leak_count} "
                 f"leaks")
    clean_1ms = _clean_1ms_at_100k()
    notes.append(f"a default check of a clean 1 ms function with 100k extra live objects: "
                 f"{clean_1ms:.2f} s (target < 0.3 s)")
    if "tuples_20000_keep_200" in memguard_seconds:
        notes.append(f"the 20,000-tuple fragmentation pattern: "
                     f"{memguard_seconds['tuples_20000_keep_200']:.2f} s (target < 1 s)")
    slowest = sorted(memguard_seconds.items(), key=lambda p: -p[1])[:5]
    notes.append("memguard's slowest checks: " + ", ".join(f"{n} {t:.1f} s" for n, t in slowest))
    if unnamed:
        notes.append(f"memguard check_leaks did not name the culprit of: {', '.join(unnamed)}")
    return {
        "title": "Leak verdicts on the leak corpus",
        "description": (f"{len(scenarios)} scenarios ({sum(s.expected_leak for s in scenarios)} "
                        "leaks, the rest clean look-alikes) from tests/leak_corpus, judged by "
                        "each tool; accuracy is the share classified correctly, named the "
                        "share of leaks whose report contains the culprit."),
        "unit": "share of scenarios classified correctly",
        "ratios": {f"corpus accuracy: {row['tool']}": row["accuracy"] for row in table},
        "figures": {**{f"{row['tool']} seconds": row["seconds"] for row in table},
                    "clean 1 ms function at 100k objects, seconds": round(clean_1ms, 3)},
        "table": table,
        "per_scenario": per_scenario,
        "notes": notes,
    }


def _print(result: dict[str, Any]) -> None:
    print(f"== {result['title']}: {result['description']}")
    columns = list(result["table"][0])
    widths = [max(len(str(c)), *(len(str(r[c])) for r in result["table"])) for c in columns]
    print("  ".join(str(c).ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in result["table"]:
        print("  ".join(str(row[c]).ljust(w) for c, w in zip(columns, widths, strict=True)))
    for note in result["notes"]:
        print(f"note: {note}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--psleak-child"]:
        _psleak_child(sys.argv[2:])
    else:
        _print(main("--quick" in sys.argv))
