"""The site's build hook and the benchmark runner's rendering, on fabricated input."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


hooks = _load("memguard_docs_hooks", ROOT / "docs" / "_hooks.py")
run_all = _load("memguard_bench_run_all", ROOT / "benchmarks" / "run_all.py")


def test_nav_orders_known_pages_then_guides_then_reference(tmp_path: Path) -> None:
    for name in ("changelog.md", "index.md", "zebra.md", "troubleshooting.md",
                 "getting-started.md"):
        (tmp_path / name).write_text("# x\n")
    (tmp_path / "guide").mkdir()
    for name in ("new-feature.md", "leaks.md", "limits.md"):
        (tmp_path / "guide" / name).write_text("# x\n")
    nav = hooks.build_nav(tmp_path)
    assert nav[:4] == ["index.md", "getting-started.md", "troubleshooting.md",
                       {"Guides": ["guide/limits.md", "guide/leaks.md", "guide/new-feature.md"]}]
    assert "changelog.md" in nav
    assert nav.index("zebra.md") > nav.index("changelog.md")
    reference = nav[-1]["API reference"]
    assert reference[0] == {"memguard": "reference/memguard.md"}
    assert {"memguard.guards.limit": "reference/memguard.guards.limit.md"} in reference


def test_public_modules_leave_out_private_and_main() -> None:
    modules = hooks.public_modules()
    assert modules[0] == "memguard"
    assert "memguard.units" in modules
    assert not any(part.startswith("_") for m in modules for part in m.split("."))


def test_memguard_page_lists_the_facade() -> None:
    page = hooks.reference_page("memguard")
    assert "| `memguard.limit` | `memguard.guards.limit.limit` |" in page
    assert "members: false" in page


def test_bracketed_chains_are_not_cross_references() -> None:
    html = ('<p>HANDLERS<autoref identifier="3" optional>\'click\'</autoref> and '
            '<autoref identifier="memguard.limit">limit</autoref></p>')
    assert hooks._restore_non_references(html) == (
        "<p>HANDLERS['click'][3] and <autoref identifier=\"memguard.limit\">limit</autoref></p>")


def _results() -> dict[str, Any]:
    return {
        "date": "2026-01-01 00:00 UTC", "quick": True,
        "machine": {"cpu": "Test CPU", "cores": 2, "memory": "4.0 GiB",
                    "python": "CPython 3.11.7", "platform": "Linux", "commit": "abc1234",
                    "load_average": 0.5},
        "benchmarks": {
            "limit": {"ok": True, "quick": True, "seconds": 1.0,
                      "file": "benchmarks/bench_limit.py",
                      "result": {"title": "limit() overhead", "unit": "time / untraced",
                                 "ratios": {"alloc: memguard.limit()": 4.0, "alloc: peer": 1.5},
                                 "table": [{"workload": "alloc", "x": "4.00x"}],
                                 "notes": ["chain a['k'][3] -> <bound method> | x_y"]}},
            "broken": {"ok": False, "seconds": 2.0, "file": "benchmarks/bench_broken.py",
                       "error": "exit code 1\nTraceback ..."},
        },
    }


def test_summary_shows_ratios_notes_and_failures() -> None:
    text = run_all.summary(_results())
    assert "machine: Test CPU, 2 cores, 4.0 GiB, CPython 3.11.7, Linux, load average 0.5" in text
    assert "   alloc: memguard.limit()  4.00x" in text
    assert "== broken: FAILED (2.0 s)" in text


def test_docs_page_escapes_markdown_and_names_the_machine() -> None:
    page = run_all.render_docs(_results(), "assets/benchmarks.png")
    assert "| CPU | Test CPU |" in page
    assert "![benchmark ratios](assets/benchmarks.png)" in page
    assert "- chain a\\['k'\\]\\[3\\] -&gt; &lt;bound method&gt; | x\\_y" in page
    assert "| workload | x |" in page
    assert "| alloc | 4.00x |" in page
    assert "Did not complete in the last run: exit code 1" in page


def test_chart_is_a_png(tmp_path: Path) -> None:
    path = run_all.write_chart(_results(), tmp_path / "chart.png")
    assert path is not None
    assert path.read_bytes().startswith(b"\x89PNG")


def test_reliability_page_lists_the_suite_tests() -> None:
    if not hooks.RELIABILITY_TESTS.is_dir():
        return
    page = hooks.reliability_page()
    names = [line for line in page.splitlines() if line.startswith("- **")]
    sources = [path.read_text() for path in hooks.RELIABILITY_TESTS.glob("test_*.py")]
    defined = sum(text.count("\ndef test_") + text.count("\nasync def test_") for text in sources)
    assert len(names) == defined
