"""Importing memguard, or its pytest plugin module, stays cheap.

Each import runs in a fresh interpreter, so nothing the test session has
already imported can hide a heavy import.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("matplotlib", "objgraph", "pympler", "IPython", "psutil", "numpy")

PROBE = """
import json, sys, tracemalloc
import {module}
heavy = {heavy!r}
loaded = sorted(name for name in sys.modules if name.partition(".")[0] in heavy)
print(json.dumps({{"loaded": loaded, "tracing": tracemalloc.is_tracing()}}))
"""


def _probe(module: str) -> dict[str, object]:
    code = PROBE.format(module=module, heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=False)  # a hang guard only
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("module", ["memguard", "memguard.pytest_plugin"])
def test_import_loads_no_heavy_package_and_starts_no_tracing(module: str) -> None:
    result = _probe(module)
    assert result["loaded"] == [], f"import {module} loaded {result['loaded']}"
    assert result["tracing"] is False


def test_probe_sees_a_heavy_import() -> None:
    """The probe itself works: a module that imports psutil is reported."""
    result = _probe("psutil")
    assert "psutil" in result["loaded"]  # type: ignore[operator]
