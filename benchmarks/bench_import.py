"""Import cost: ``import memguard`` next to the tools a test suite might import.

Each import runs in a fresh interpreter under ``python -X importtime``; the
figure is the cumulative import time of the module (and its parent
packages), which leaves the interpreter's own start-up out. Every module is
imported once first so that its bytecode caches are written, then the
median of several runs is kept. Ratios are each module's import time over
``import memguard``'s.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
from typing import Any

MODULES = {
    "memguard": "memguard",
    # A pytest plugin is imported by pytest, so pytest is already loaded: its
    # cost is what the plugin adds on top of ``import pytest``.
    "memguard.pytest_plugin (after pytest)": "pytest: memguard.pytest_plugin",
    "tracemalloc": "tracemalloc",
    "psutil": "psutil",
    "objgraph": "objgraph",
    "pympler (asizeof + tracker)": "pympler.asizeof, pympler.tracker",
    "memory_profiler": "memory_profiler",
    "memray": "memray",
    "pytest_memray (after pytest)": "pytest: pytest_memray",
}

_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)\s*$")


def import_seconds(statement: str) -> tuple[float, int]:
    """Cumulative import time of ``import <statement>`` and how many modules it loaded.

    ``"pytest: name"`` imports pytest first and measures only ``name``.
    """
    preload, _, statement = statement.rpartition(":")
    preload = preload.strip()
    targets = {name.strip() for name in statement.split(",")}
    code = (f"import {preload}; " if preload else "") + f"import {statement}"
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code],
                          capture_output=True, text=True, timeout=120, check=True)
    total_us = 0
    loaded = 0
    seen_prelude = True
    for line in done.stderr.splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        _, cumulative, indent, name = match.groups()
        if name == "site":  # start-up imports end with site
            seen_prelude = False
            loaded = 0
            continue
        if seen_prelude:
            continue
        loaded += 1
        top_level = len(indent) <= 1
        if preload and top_level and name == preload:
            loaded = 0  # what the preload imported is not the measured module's
            continue
        wanted = any(t == name or t.startswith(name + ".") for t in targets)
        if top_level and wanted:
            total_us += int(cumulative)
    return total_us / 1e6, loaded


def main(quick: bool) -> dict[str, Any]:
    """Measure every module's import time; ratios to ``import memguard``."""
    repeats = 3 if quick else 15
    medians: dict[str, float] = {}
    loaded: dict[str, int] = {}
    for label, statement in MODULES.items():
        import_seconds(statement)  # write bytecode caches
        runs = [import_seconds(statement) for _ in range(repeats)]
        medians[label] = statistics.median(seconds for seconds, _ in runs)
        loaded[label] = runs[-1][1]
    base = medians["memguard"]
    table = [{"import": label, "ms": round(seconds * 1000, 2), "modules loaded": loaded[label],
              "x memguard": round(seconds / base, 2)} for label, seconds in medians.items()]
    return {
        "title": "Import cost",
        "description": ("Cumulative `python -X importtime` of each import in a fresh "
                        f"interpreter, median of {repeats} runs; ratios are to "
                        "`import memguard`."),
        "unit": "import time / import memguard",
        "ratios": {label: round(seconds / base, 2) for label, seconds in medians.items()
                   if label != "memguard"},
        "figures": {f"{label} ms": round(seconds * 1000, 3) for label, seconds in medians.items()},
        "table": table,
        "notes": [f"import memguard: {medians['memguard'] * 1000:.1f} ms, "
                  f"{loaded['memguard']} modules loaded"],
    }


if __name__ == "__main__":
    import json

    print(json.dumps(main("--quick" in sys.argv), indent=2))
