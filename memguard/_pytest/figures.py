"""L9 front end: one test's memory figures, their tables, and the run's JSON.

Figures travel as ``report.user_properties`` pairs (``memguard_peak_bytes``
and friends): pytest copies them into JUnit XML as properties, and
pytest-xdist sends them from a worker to the controller with the report,
where :func:`figures_from_properties` reads them back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..units import format_size
from ..values.baseline import Baseline

__all__ = [
    "PREFIX",
    "RUN_FORMAT",
    "Change",
    "TestFigures",
    "changes",
    "changes_table",
    "figures_from_properties",
    "is_regression",
    "peak_table",
    "render_table",
    "run_document",
]

PREFIX = "memguard_"
"""The prefix of every user property memguard adds."""
RUN_FORMAT = "memguard-pytest-run"
"""The ``format`` field of ``--memguard-json`` files (version 1)."""

_FIELDS = ("peak_bytes", "source", "limit_bytes", "baseline_bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class TestFigures:
    """What memguard measured for one test's call.

    Example:
        >>> figures = TestFigures(nodeid="t.py::test_a", peak_bytes=2048, source="python")
        >>> figures.properties()
        [('memguard_peak_bytes', 2048), ('memguard_source', 'python')]
    """

    __test__ = False  # a value, not a pytest test class

    nodeid: str
    peak_bytes: int
    source: str
    limit_bytes: int | None = None
    baseline_bytes: int | None = None
    outcome: str = ""

    def properties(self) -> list[tuple[str, object]]:
        """The figures as ``user_properties`` pairs (no ``None`` values)."""
        pairs: list[tuple[str, object]] = []
        for name in _FIELDS:
            value = getattr(self, name)
            if value is not None:
                pairs.append((PREFIX + name, value))
        return pairs

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"nodeid": self.nodeid, "outcome": self.outcome, "peak_bytes": self.peak_bytes,
                "source": self.source, "limit_bytes": self.limit_bytes,
                "baseline_bytes": self.baseline_bytes}


def figures_from_properties(nodeid: str, properties: Iterable[Sequence[object]],
                            outcome: str) -> TestFigures | None:
    """Read memguard's figures back from a report's ``user_properties``."""
    found: dict[str, Any] = {}
    for pair in properties:
        if len(pair) == 2 and isinstance(pair[0], str) and pair[0].startswith(PREFIX):
            found[pair[0][len(PREFIX):]] = pair[1]
    if "peak_bytes" not in found:
        return None
    return TestFigures(
        nodeid=nodeid,
        peak_bytes=int(found["peak_bytes"]),
        source=str(found.get("source", "python")),
        limit_bytes=None if found.get("limit_bytes") is None else int(found["limit_bytes"]),
        baseline_bytes=(None if found.get("baseline_bytes") is None
                        else int(found["baseline_bytes"])),
        outcome=outcome,
    )


def _shown(count: int, top: int) -> int:
    return count if top == 0 else min(top, count)


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *,
                 fmt: str = "text", widths: Sequence[int] = ()) -> list[str]:
    """Lines of a table: sizes right-aligned, the last column (the test) left.

    Example:
        >>> render_table(["peak", "test"], [["1.0 KiB", "t.py::a"]], fmt="markdown")
        ['| peak | test |', '| ---: | --- |', '| 1.0 KiB | `t.py::a` |']
    """
    if fmt == "markdown":
        lines = ["| " + " | ".join(headers) + " |",
                 "| " + " | ".join(["---:"] * (len(headers) - 1) + ["---"]) + " |"]
        for row in rows:
            name, _, mark = row[-1].partition("  ")
            test = f"`{name}`" + (f" **{mark}**" if mark else "")
            lines.append("| " + " | ".join([*row[:-1], test]) + " |")
        return lines
    sizes = [max([widths[i] if i < len(widths) else 10, len(headers[i])]
                 + [len(row[i]) for row in rows]) for i in range(len(headers) - 1)]

    def line(cells: Sequence[str]) -> str:
        sized = [f"{cell:>{sizes[i]}}" for i, cell in enumerate(cells[:-1])]
        return "  ".join([*sized, cells[-1]])

    return [line(headers), *(line(row) for row in rows)]


def peak_table(results: Mapping[str, TestFigures], *, top: int, fmt: str = "text") -> list[str]:
    """The biggest peaks, biggest first, as lines for the terminal.

    Example:
        >>> rows = {"t.py::a": TestFigures(nodeid="t.py::a", peak_bytes=3 << 20, source="python",
        ...                                limit_bytes=10 << 20)}
        >>> print("\\n".join(peak_table(rows, top=5)))
              peak       limit  test
           3.0 MiB    10.0 MiB  t.py::a
    """
    ordered = sorted(results.values(), key=lambda f: (-f.peak_bytes, f.nodeid))
    rows = [[format_size(f.peak_bytes),
             "" if f.limit_bytes is None else format_size(f.limit_bytes), f.nodeid]
            for f in ordered[:_shown(len(ordered), top)]]
    return render_table(["peak", "limit", "test"], rows, fmt=fmt)


@dataclass(frozen=True, slots=True)
class Change:
    """One test's peak against the baseline's."""

    nodeid: str
    baseline_bytes: int | None
    peak_bytes: int | None

    @property
    def percent(self) -> float | None:
        """Growth in percent of the baseline; ``None`` for new, gone or zero baselines."""
        if self.baseline_bytes is None or self.peak_bytes is None or self.baseline_bytes == 0:
            return None
        return 100.0 * (self.peak_bytes - self.baseline_bytes) / self.baseline_bytes


def changes(results: Mapping[str, TestFigures], baseline: Baseline) -> list[Change]:
    """Every test of the run or the baseline, biggest relative growth first."""
    nodeids = set(results) | set(baseline.peaks)
    found = [Change(nodeid, baseline.peaks.get(nodeid),
                    results[nodeid].peak_bytes if nodeid in results else None)
             for nodeid in nodeids]

    def key(change: Change) -> tuple[int, float, str]:
        percent = change.percent
        return (percent is None, -abs(percent or 0.0), change.nodeid)

    return sorted(found, key=key)


def is_regression(change: Change, *, fail_over_percent: float | None, noise_bytes: int) -> bool:
    """Whether *change* grew past the threshold and past the noise floor."""
    if fail_over_percent is None or change.baseline_bytes is None or change.peak_bytes is None:
        return False
    growth = change.peak_bytes - change.baseline_bytes
    allowed = change.baseline_bytes * fail_over_percent / 100.0
    return growth > allowed and growth >= noise_bytes


def changes_table(found: Sequence[Change], *, top: int, fail_over_percent: float | None,
                  noise_bytes: int, fmt: str = "text") -> list[str]:
    """The changes as lines: every regression, then the largest other changes."""
    regressed = [c for c in found if is_regression(c, fail_over_percent=fail_over_percent,
                                                   noise_bytes=noise_bytes)]
    others = [c for c in found if c not in regressed and c.percent is not None]
    rows = []
    for change in regressed + others[:_shown(len(others), top)]:
        assert change.baseline_bytes is not None
        assert change.peak_bytes is not None
        mark = "  REGRESSED" if change in regressed else ""
        rows.append([format_size(change.baseline_bytes), format_size(change.peak_bytes),
                     f"{change.percent:+.1f}%", f"{change.nodeid}{mark}"])
    lines = render_table(["baseline", "now", "change", "test"], rows, fmt=fmt,
                         widths=(10, 10, 8))
    new = sum(1 for c in found if c.baseline_bytes is None)
    gone = sum(1 for c in found if c.peak_bytes is None)
    if new or gone:
        lines.append(f"({new} test(s) not in the baseline, {gone} baseline test(s) not run)")
    return lines


def run_document(results: Mapping[str, TestFigures], *, source: str) -> dict[str, Any]:
    """The ``--memguard-json`` document: every test's figures, by node id order."""
    return {
        "format": RUN_FORMAT,
        "version": 1,
        "source": source,
        "tests": [results[nodeid].to_dict() for nodeid in sorted(results)],
    }
