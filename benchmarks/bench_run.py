"""``memguard run`` on whole programs: its traced peak against python -X tracemalloc, its cost.

Two programs, each written to a temporary folder and run as a script:

* ``imports``: 30 standard-library packages and 20,000 rows of JSON, the
  collector off (``tests/integration/test_run_imports.py``'s program): the
  case where a program's imports are most of its memory;
* ``churn``: builds and drops a million small objects in waves, no import
  beyond ``gc``.

Each program reads its own traced peak above its first line (the first line
imports only built-in modules) and prints it; under ``memguard run`` the run
file's peak is read too. Accuracy ratios are memguard's figure over
``python -X tracemalloc``'s (1.0 is exact). Time ratios are wall time over
plain ``python``'s, median of the rounds, with ``python -X tracemalloc``,
``memray run`` and ``mprof run`` (memory_profiler) measured beside, where
installed, in the same rounds.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

_HEAD = """\
import _tracemalloc, gc, sys
gc.disable()
start = _tracemalloc.get_traced_memory()[0]
"""
_TAIL = """\
peak = _tracemalloc.get_traced_memory()[1] - start
print("peak", peak, file=sys.stderr)
"""
PROGRAMS = {
    "imports": _HEAD + textwrap.dedent("""\
        import argparse, asyncio, csv, dataclasses, datetime, decimal, email.message
        import email.parser, html.parser, http.client, http.server, inspect, json
        import logging.handlers, pickle, pprint, sqlite3, statistics, tarfile, typing
        import unittest, urllib.request, uuid, xml.dom.minidom, xml.etree.ElementTree
        import zipfile, gzip, shlex, shutil, platform
        rows = [{"n": i, "s": str(i) * 3} for i in range(20000)]
        text = json.dumps(rows)
        del rows
    """) + _TAIL,
    "churn": _HEAD + textwrap.dedent("""\
        kept = []
        for wave in range(10):
            batch = [(i, str(i), [i]) for i in range(100_000)]
            kept.append(batch[::100])
            del batch
    """) + _TAIL,
}


def _peak(stderr: str) -> int:
    line = next(x for x in stderr.splitlines() if x.startswith("peak "))
    return int(line.split()[1])


def _timed(command: list[str], folder: Path) -> tuple[float, str]:
    began = time.perf_counter()
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=600,
                          check=True)
    return time.perf_counter() - began, done.stderr


def _tools(script: Path, folder: Path) -> dict[str, list[str]]:
    python = sys.executable
    out = str(folder / "out")
    tools = {
        "python": [python, str(script)],
        "python -X tracemalloc": [python, "-X", "tracemalloc", str(script)],
        "memguard run": [python, "-m", "memguard", "run", "--force", "-o", out + ".json",
                         str(script)],
        "memguard run --no-sites": [python, "-m", "memguard", "run", "--no-sites", "--force",
                                    "-o", out + ".json", str(script)],
    }
    if shutil.which("memray") or _importable("memray"):
        tools["memray run"] = [python, "-m", "memray", "run", "-f", "-q", "-o", out + ".bin",
                               str(script)]
    if _importable("memory_profiler"):
        tools["mprof run"] = [python, "-m", "mprof", "run", "-o", out + ".dat", str(script)]
    return tools


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def main(quick: bool) -> dict[str, Any]:
    """Run each program under each tool; accuracy and time ratios."""
    from memguard.values.files import load

    rounds = 3 if quick else 7
    ratios: dict[str, float] = {}
    figures: dict[str, float] = {}
    table = []
    with tempfile.TemporaryDirectory(prefix="memguard-bench-run-") as name:
        folder = Path(name)
        for program, source in PROGRAMS.items():
            script = folder / f"{program}.py"
            script.write_text(source)
            tools = _tools(script, folder)
            times: dict[str, list[float]] = {tool: [] for tool in tools}
            peaks: dict[str, int] = {}
            for _ in range(rounds):
                for tool, command in tools.items():  # interleaved: load moves them alike
                    seconds, stderr = _timed(command, folder)
                    times[tool].append(seconds)
                    if tool in ("python -X tracemalloc", "memguard run",
                                "memguard run --no-sites"):
                        peaks[tool] = _peak(stderr)
                    if tool == "memguard run":
                        peaks["memguard run (run file)"] = load(
                            folder / "out.json").traced_peak_above_start_bytes
            exact = peaks["python -X tracemalloc"]
            plain = statistics.median(times["python"])
            for tool in ("memguard run", "memguard run --no-sites", "memguard run (run file)"):
                ratios[f"{program}: peak, {tool}"] = round(peaks[tool] / exact, 4)
            for tool, runs in times.items():
                if tool != "python":
                    ratios[f"{program}: time, {tool}"] = round(statistics.median(runs) / plain, 2)
                figures[f"{program}: {tool} s"] = round(statistics.median(runs), 3)
            figures[f"{program}: python -X tracemalloc peak bytes"] = exact
            table.append({"program": program, "python -X tracemalloc peak": exact,
                          **{f"{tool} peak": peaks[tool] for tool in peaks if tool != exact},
                          **{f"{tool} s": round(statistics.median(runs), 3)
                             for tool, runs in times.items()}})
    return {
        "title": "memguard run: traced peak and cost",
        "description": ("Each program's own traced peak above its first line, and the run "
                        "file's, over python -X tracemalloc's (1.0 is exact); wall time over "
                        f"plain python's, median of {rounds} interleaved rounds."),
        "unit": "peak / python -X tracemalloc's, time / python's",
        "ratios": ratios,
        "figures": figures,
        "table": table,
        "notes": [f"{os.cpu_count()} cores; memray and mprof where installed"],
    }


if __name__ == "__main__":
    print(json.dumps(main("--quick" in sys.argv), indent=2))
