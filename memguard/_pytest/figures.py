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
    "allowed_peak",
    "changes",
    "changes_table",
    "figures_from_properties",
    "peak_table",
    "render_table",
    "run_document",
]

PREFIX = "memguard_"
"""The prefix of every user property memguard adds."""
RUN_FORMAT = "memguard-pytest-run"
"""The ``format`` field of ``--memguard-json`` files (version 1)."""

_FIELDS = ("peak_bytes", "source", "limit_bytes", "baseline_bytes", "allowed_bytes")


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
    allowed_bytes: int | None = None
    """The peak above which the baseline comparison fails this test, if one can."""
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
                "baseline_bytes": self.baseline_bytes, "allowed_bytes": self.allowed_bytes}


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
        allowed_bytes=(None if found.get("allowed_bytes") is None
                       else int(found["allowed_bytes"])),
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


def allowed_peak(baseline_bytes: int, spread_bytes: int, *, margin_bytes: int | None,
                 noise_bytes: int) -> int | None:
    """The highest peak a comparison lets pass, or ``None`` when the test cannot fail.

    The rule (docs/guide/ci-baselines.md): a test fails when its peak exceeds
    its highest recorded peak by more than each of its margin, the spread of
    its recorded peaks (highest - lowest) and the noise floor.

    Example:
        >>> allowed_peak(1000, 0, margin_bytes=100, noise_bytes=10)
        1100
        >>> allowed_peak(1000, 400, margin_bytes=100, noise_bytes=10)  # a noisy test
        1400
    """
    if margin_bytes is None:
        return None
    return baseline_bytes + max(margin_bytes, spread_bytes, noise_bytes)


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """One test's peak against its baseline record."""

    nodeid: str
    baseline_bytes: int | None
    """The highest recorded peak, ``None`` for a test new since the baseline."""
    peak_bytes: int | None
    """This run's peak, ``None`` for a baseline test that did not run."""
    spread_bytes: int = 0
    """The range of the recorded peaks (highest - lowest)."""
    allowed_bytes: int | None = None
    """The peak above which the test fails, ``None`` when it cannot."""

    @property
    def percent(self) -> float | None:
        """Growth in percent of the baseline; ``None`` for new, gone or zero baselines."""
        if self.baseline_bytes is None or self.peak_bytes is None or self.baseline_bytes == 0:
            return None
        return 100.0 * (self.peak_bytes - self.baseline_bytes) / self.baseline_bytes

    @property
    def regressed(self) -> bool:
        """Whether the peak is over the allowed peak."""
        return (self.allowed_bytes is not None and self.peak_bytes is not None
                and self.peak_bytes > self.allowed_bytes)

    def is_noise(self, noise_bytes: int) -> bool:
        """Whether the change is within what the record's spread and the noise floor explain:
        no further below the lowest recorded peak, nor above the highest, than the larger
        of the two."""
        if self.baseline_bytes is None or self.peak_bytes is None or self.regressed:
            return False
        band = max(self.spread_bytes, noise_bytes)
        lowest = self.baseline_bytes - self.spread_bytes
        return lowest - band <= self.peak_bytes <= self.baseline_bytes + band


def changes(results: Mapping[str, TestFigures], baseline: Baseline, *,
            noise_bytes: int = 0) -> list[Change]:
    """Every test of the run or the baseline: regressions first, then by relative change
    (changes within the noise after the others)."""
    found = []
    for nodeid in set(results) | set(baseline.peaks):
        figures = results.get(nodeid)
        found.append(Change(
            nodeid=nodeid, baseline_bytes=baseline.peaks.get(nodeid),
            peak_bytes=figures.peak_bytes if figures is not None else None,
            spread_bytes=baseline.spread(nodeid) if nodeid in baseline.runs else 0,
            allowed_bytes=figures.allowed_bytes if figures is not None else None))

    def key(change: Change) -> tuple[bool, bool, bool, float, str]:
        percent = change.percent
        return (not change.regressed, percent is None, change.is_noise(noise_bytes),
                -abs(percent or 0.0), change.nodeid)

    return sorted(found, key=key)


def changes_table(found: Sequence[Change], *, top: int, noise_bytes: int,
                  fmt: str = "text") -> list[str]:
    """The changes as lines: every regression, then the largest other changes.

    A change within the noise (see :meth:`Change.is_noise`) is marked ``noise``.
    """
    regressed = [c for c in found if c.regressed]
    others = [c for c in found if not c.regressed and c.percent is not None]
    rows = []
    for change in regressed + others[:_shown(len(others), top)]:
        assert change.baseline_bytes is not None
        assert change.peak_bytes is not None
        mark = ("  REGRESSED" if change.regressed
                else "  noise" if change.is_noise(noise_bytes) else "")
        rows.append([format_size(change.baseline_bytes),
                     format_size(change.spread_bytes) if change.spread_bytes else "",
                     format_size(change.peak_bytes), f"{change.percent:+.1f}%",
                     f"{change.nodeid}{mark}"])
    lines = render_table(["baseline", "spread", "now", "change", "test"], rows, fmt=fmt,
                         widths=(10, 9, 10, 8))
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
