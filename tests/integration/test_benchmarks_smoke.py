"""The benchmark runner works end to end (one quick benchmark; no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_run_all_quick_import_writes_results_and_chart(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--quick", "--only", "import",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((tmp_path / "latest.json").read_text())
    assert set(results["machine"]) >= {"cpu", "cores", "memory", "python", "platform"}
    entry = results["benchmarks"]["import"]
    assert entry["ok"] is True
    ratios = entry["result"]["ratios"]
    assert set(ratios) >= {"tracemalloc", "objgraph", "psutil", "memory_profiler"}
    assert all(value > 0 for value in ratios.values())
    assert (tmp_path / "latest.png").read_bytes().startswith(b"\x89PNG")
    assert "== import: Import cost" in done.stdout


def test_every_benchmark_follows_the_runners_protocol() -> None:
    """Each ``bench_*.py`` defines ``main(quick)``, as ``run_all.py`` calls it.

    ``bench_leaks_heap.py`` defined ``main()`` and failed in every
    ``run_all.py`` run, unnoticed, until the docs page said so.
    """
    import ast

    for path in sorted((ROOT / "benchmarks").glob("bench_*.py")):
        tree = ast.parse(path.read_text())
        mains = [node for node in tree.body
                 if isinstance(node, ast.FunctionDef) and node.name == "main"]
        assert len(mains) == 1, path.name
        params = [arg.arg for arg in mains[0].args.args]
        assert params[:1] == ["quick"], (path.name, params)
