"""Writes docs/reliability.md from a full run of the reliability suite, on request.

Run from the repository's root::

    .venv/bin/python -m tests.reliability.page

It runs ``pytest tests/reliability`` with this module as a plugin, which
records each test's outcome (every parametrized case) and the inputs,
faults and uses it counted through :func:`_ledger.tried`. When every test
defined in ``tests/reliability`` ran (extra arguments such as ``-k`` make a
partial run, which leaves the page alone), it rewrites the page from the
tests' docstrings, their outcomes and their counts. A plain ``pytest`` run
(``./check``, CI) never writes the tracked page. The exit code is pytest's.
"""

from __future__ import annotations

import ast
import platform
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.reliability import _ledger

HERE = Path(__file__).resolve().parent
PAGE = HERE.parents[1] / "docs" / "reliability.md"

_outcomes: dict[str, dict[str, str]] = defaultdict(dict)  # function id -> case id -> outcome
_xfail_reasons: dict[str, str] = {}
_state: dict[str, object] = {"complete": False, "deselected": False, "written": ""}


def _function_id(nodeid: str) -> str:
    return nodeid.split("[", 1)[0]


def _defined() -> dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]]:
    found = {}
    for path in sorted(HERE.glob("test_*.py")):
        tree = ast.parse(path.read_text())
        found[path.name] = [node for node in tree.body
                            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                            and node.name.startswith("test_")]
    return found


def _mine(nodeid: str) -> bool:
    return nodeid.startswith("tests/reliability/")


def pytest_deselected(items: list[pytest.Item]) -> None:
    if any(_mine(item.nodeid) for item in items):
        _state["deselected"] = True


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    collected = {(Path(item.nodeid.split("::")[0]).name, item.nodeid.split("::")[1].split("[")[0])
                 for item in items if _mine(item.nodeid) and "::" in item.nodeid}
    defined = {(name, node.name) for name, nodes in _defined().items() for node in nodes}
    _state["complete"] = bool(defined) and collected == defined


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not _mine(report.nodeid):
        return
    cases = _outcomes[_function_id(report.nodeid)]
    wasxfail = getattr(report, "wasxfail", None)
    if report.when == "call" or report.outcome != "passed":
        if report.failed:
            outcome = "failed"
        elif wasxfail is not None:
            outcome = "xpassed" if report.passed else "xfailed"
            _xfail_reasons[report.nodeid] = str(wasxfail)
        else:
            outcome = report.outcome
        if cases.get(report.nodeid) != "failed":
            cases[report.nodeid] = outcome


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput"):
        return
    if not _state["complete"] or _state["deselected"] or not _outcomes:
        _state["written"] = "not written: a partial run of tests/reliability"
        return
    text = render_page()
    if not PAGE.exists() or PAGE.read_text() != text:
        PAGE.write_text(text)
        _state["written"] = f"wrote {PAGE}"
    else:
        _state["written"] = f"{PAGE} is up to date"


def _docstring(node: ast.AST) -> list[str]:
    doc = ast.get_docstring(node)  # type: ignore[arg-type]
    return [line.rstrip() for line in (doc or "").strip().splitlines()]


def _case(nodeid: str) -> str:
    return nodeid.partition("[")[2].rstrip("]") or "the test"


def _verdict(cases: dict[str, str]) -> str:
    total = len(cases)
    counts: dict[str, int] = defaultdict(int)
    for outcome in cases.values():
        counts[outcome] += 1
    notes = []
    for nodeid, outcome in cases.items():
        if outcome == "xfailed":
            notes.append(f"known bug in {_case(nodeid)}, recorded as an expected failure: "
                         f"{_xfail_reasons.get(nodeid, '')}")
        elif outcome == "xpassed":
            notes.append(f"{_case(nodeid)} held this run, though marked as an intermittent "
                         f"known bug: {_xfail_reasons.get(nodeid, '')}")
    if counts["failed"]:
        head = f"**FAILED** {counts['failed']} of {total}"
    elif counts["skipped"] == total:
        head = "skipped here (not available on this platform)"
    else:
        held = counts["passed"] + counts["xpassed"]
        head = "held" if total == held == 1 else f"held in {held} of {total} cases"
    return "; ".join([head, *notes])


def render_page() -> str:
    """The page's Markdown, from the recorded outcomes and counts."""
    sections: list[str] = []
    totals: dict[str, int] = defaultdict(int)
    for filename, nodes in _defined().items():
        module = ast.parse((HERE / filename).read_text())
        title = (_docstring(module) or [filename])[0].rstrip(".")
        lines = [f"## {title}", "", f"`tests/reliability/{filename}`, {len(nodes)} tests:", ""]
        for node in nodes:
            key = f"tests/reliability/{filename}::{node.name}"
            cases = _outcomes.get(key, {})
            tries = _ledger.TRIES.get(key, 0)
            totals["tests"] += 1
            totals["cases"] += len(cases)
            for outcome in cases.values():
                totals[outcome] += 1
            totals["tries"] += tries
            detail = [f"{len(cases)} cases"] if len(cases) > 1 else []
            if tries:
                detail.append(f"{tries:,} tried")
            name = node.name.removeprefix("test_").replace("_", " ")
            doc = _docstring(node)
            head = f"- **{name}**" + (f" ({'; '.join(detail)})" if detail else "")
            head += f": {_verdict(cases)}."
            lines.append(head)
            if doc:
                lines.append("")
                lines += [f"    {line}" if line else "" for line in doc]
                lines.append("")
        sections += [*lines, ""]
    summary = (
        f"The last full run (Python {platform.python_version()}, {platform.system()}) ran "
        f"{totals['tests']} tests in {totals['cases']} cases: "
        f"{totals['passed'] + totals['xpassed']} held, "
        f"{totals['xfailed']} cases of known bugs recorded as expected failures, "
        f"{totals['failed']} failed, {totals['skipped']} skipped here. Together they tried "
        f"{totals['tries']:,} inputs, faults and uses."
    )
    head = [
        "# Reliability",
        "",
        "memguard runs inside other people's test suites and notebooks, so it must never",
        "be what crashes, hangs, corrupts state or leaks. The reliability suite in",
        "`tests/reliability/` tries hostile inputs, concurrency, interrupts, forks,",
        "hostile objects, missing platform features and memguard's own footprint.",
        "",
        "This page is written by the suite itself: the command",
        "",
        "```bash",
        ".venv/bin/python -m tests.reliability.page",
        "```",
        "",
        "runs `tests/reliability` in full and rewrites it from each test's docstring, its",
        "outcome and what it counted, so the figures below are those of that run, not",
        "written by hand (a plain `pytest` run leaves the page alone). \"Tried\"",
        "counts the inputs, injected faults or guard uses a test exercised (every",
        "hypothesis example counts once); a test that runs in several cases says how",
        "many of them held.",
        "",
        summary,
        "",
    ]
    return "\n".join(head + sections).rstrip() + "\n"


def main(argv: Sequence[str] = ()) -> int:
    """Run the reliability suite with this plugin; write the page after a full run."""
    code = pytest.main([str(HERE), "-q", "-p", "no:cacheprovider", *argv],
                       plugins=[sys.modules[__name__]])
    print(f"reliability page: {_state['written'] or 'not written'}")
    return int(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
