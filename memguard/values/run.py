"""L4 values: :class:`RunReport`, what ``memguard run`` measured in a program.

A run file is this value as versioned JSON (kind ``"run"``, see
:mod:`memguard.values.files`). It holds plain data only: the command and its
exit code, the timeline with the exact peaks, when the traced peak happened,
the allocation sites live near the peak, child-process memory when asked
for, a snapshot of what the program still held when it ended, and the
verdict of ``--limit``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..units import format_size
from ._value import Value, renamed
from .limit import LimitReport, sites_level
from .lineprofile import LineProfile
from .site import AllocationSite, LeftOut
from .snapshot import Snapshot
from .timeline import Timeline

__all__ = ["RunReport"]

_WHY = "above the start; None when absent; the absolute levels are run.timeline's"


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class RunReport(Value, kind="run"):
    """What ``memguard run`` measured while a program ran.

    Example:
        >>> from memguard.values.timeline import Timeline
        >>> run = RunReport(command="app.py --fast", argv=("app.py", "--fast"), exit_code=0,
        ...                 duration_seconds=2.0, peak_seconds=1.25,
        ...                 timeline=Timeline(interval_seconds=0.01, duration_seconds=2.0,
        ...                                   traced_start_bytes=0,
        ...                                   traced_peak_bytes=3 * 1024**2))
        >>> run.summary
        'app.py --fast: traced peak 3.0 MiB at 1.25 s of 2.00 s, exit code 0'

    .. versionadded:: 0.1.0
    """

    command: str
    """The command as typed after ``memguard run`` (``app.py --fast``, ``-m pkg``)."""
    argv: tuple[str, ...]
    """The program's ``sys.argv`` as it started."""
    exit_code: int
    """The program's exit code (1 for an uncaught exception, as under ``python``)."""
    duration_seconds: float
    """How long the program ran."""
    timeline: Timeline
    """The samples, and the exact traced and RSS peaks (absolute levels)."""
    peak_seconds: float = 0.0
    """When the traced peak happened, in seconds from the start (to one sampling interval)."""
    error: str | None = None
    """``"ValueError: bad input"`` when the program raised, else ``None``."""
    started_at: str = ""
    """When the program started, as an ISO 8601 UTC time."""
    sites: tuple[AllocationSite, ...] = ()
    """The top allocation sites live at the highest level captured, biggest first."""
    sites_above_start_bytes: int | None = None
    """The traced level above the start at which :attr:`sites` were captured;
    ``None`` when none were."""
    sites_seconds: float = 0.0
    """When :attr:`sites` were captured, in seconds from the start."""
    sites_left_out: tuple[LeftOut, ...] = ()
    """What :attr:`sites` does not list, by name (smaller sites, memguard's
    own work, the import machinery, runpy): with the sites it adds up to the
    traced growth at the capture."""
    rss: bool = False
    """Whether process memory was asked for (``--rss``)."""
    children: tuple[tuple[float, int], ...] = ()
    """``(seconds, bytes)`` samples of the process and its children's resident
    memory together (``--children``), oldest first."""
    limit: LimitReport | None = None
    """The verdict of ``--limit``, or ``None`` when no limit was set."""
    final: Snapshot | None = None
    """What the program still held when it ended (top sites, object counts, RSS)."""
    lines: tuple[LineProfile, ...] = ()
    """Line-by-line profiles of the function named by ``--lines``, one per
    matching code object; empty when not asked for or never called."""
    lines_target: str | None = None
    """The ``--lines`` target (``MODULE_OR_FILE:FUNCTION``), or ``None``."""

    @property
    def traced_peak_above_start_bytes(self) -> int | None:
        """The exact peak of the traced Python heap above its level at the start.

        ``None`` when the run has no traced figures. (The absolute levels are
        the timeline's: ``run.timeline.traced_peak_bytes``.)
        """
        return self.timeline.traced_peak_above_start_bytes

    @property
    def traced_end_above_start_bytes(self) -> int | None:
        """Traced Python heap still live when the program ended, above the start; or ``None``."""
        end, start = self.timeline.traced_end_bytes, self.timeline.traced_start_bytes
        return None if end is None or start is None else end - start

    @property
    def traced_peak_bytes(self) -> int:
        """Deprecated: :attr:`traced_peak_above_start_bytes` (0 when absent).

        The name meant an absolute level everywhere else (``Timeline``,
        ``Snapshot``); it is kept for code written against 0.1.
        """
        renamed("RunReport", "traced_peak_bytes", "traced_peak_above_start_bytes", _WHY)
        return self.traced_peak_above_start_bytes or 0

    @property
    def traced_end_bytes(self) -> int:
        """Deprecated: :attr:`traced_end_above_start_bytes` (0 when absent)."""
        renamed("RunReport", "traced_end_bytes", "traced_end_above_start_bytes", _WHY)
        return self.traced_end_above_start_bytes or 0

    @property
    def sites_level_bytes(self) -> int:
        """Deprecated: :attr:`sites_above_start_bytes` (0 when absent)."""
        renamed("RunReport", "sites_level_bytes", "sites_above_start_bytes")
        return self.sites_above_start_bytes or 0

    @property
    def rss_peak_bytes(self) -> int | None:
        """The process's peak resident memory (absolute), native allocations included."""
        return self.timeline.rss_peak_bytes

    @property
    def children_peak_bytes(self) -> int | None:
        """The highest sampled memory of the process with its children, or ``None``."""
        return max((n for _, n in self.children), default=None)

    @property
    def sites_fraction(self) -> float:
        """How close to the peak the sites were captured (1.0: at the peak).

        Example:
            >>> from memguard.values.timeline import Timeline
            >>> RunReport(command="a.py", argv=("a.py",), exit_code=0, duration_seconds=1.0,
            ...           timeline=Timeline(interval_seconds=0.01, duration_seconds=1.0),
            ...           ).sites_fraction
            0.0
        """
        peak = self.traced_peak_above_start_bytes
        if not peak:  # absent or 0 (it is never below 0)
            return 0.0
        return min(1.0, (self.sites_above_start_bytes or 0) / peak)

    def peak_snapshot(self) -> Snapshot:
        """The run at its peak as a :class:`Snapshot`, for comparing two runs.

        Its sites are :attr:`sites`; its totals are the exact traced peak
        above the start and the RSS peak.

        Example:
            >>> from memguard.values.timeline import Timeline
            >>> run = RunReport(command="a.py", argv=("a.py",), exit_code=0,
            ...                 duration_seconds=1.0,
            ...                 timeline=Timeline(interval_seconds=0.01, duration_seconds=1.0))
            >>> run.peak_snapshot().label
            'a.py (peak)'
        """
        return Snapshot(label=f"{self.command} (peak)", timestamp=self.timeline.started_at
                        + self.sites_seconds, sites=self.sites,
                        traced_bytes=self.traced_peak_above_start_bytes,
                        rss_bytes=self.rss_peak_bytes,
                        absent=tuple(sorted({
                            "types": "a run counts objects only at its end, not at its peak",
                            "uss_bytes": "a run does not measure USS",
                            "fds": "a run does not list descriptors at its peak",
                            **({} if self.rss_peak_bytes is not None else
                               {"rss_bytes": "the run did not measure RSS (memguard run "
                                             "--rss)"}),
                        }.items())))

    @property
    def summary(self) -> str:
        """One line: the command, the traced peak and when, the exit code."""
        peak = self.traced_peak_above_start_bytes
        traced = ("no traced peak" if peak is None
                  else f"traced peak {format_size(peak)} at {self.peak_seconds:.2f} s")
        text = (f"{self.command}: {traced} of {self.duration_seconds:.2f} s, "
                f"exit code {self.exit_code}")
        if self.rss and self.rss_peak_bytes is not None:
            text += f", peak RSS {format_size(self.rss_peak_bytes)}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` reverses it."""
        return {
            "kind": self.KIND,
            "command": self.command,
            "argv": list(self.argv),
            "exit_code": self.exit_code,
            "error": self.error,
            "started_at": self.started_at,
            "duration_seconds": self.duration_seconds,
            "peak_seconds": self.peak_seconds,
            "timeline": self.timeline.to_dict(),
            "sites": [site.to_dict() for site in self.sites],
            "sites_above_start_bytes": self.sites_above_start_bytes,
            "sites_seconds": self.sites_seconds,
            "sites_left_out": [item.to_dict() for item in self.sites_left_out],
            "rss": self.rss,
            "children": [[round(t, 6), n] for t, n in self.children],
            "limit": None if self.limit is None else self.limit.to_dict(),
            "final": None if self.final is None else self.final.to_dict(),
            "lines": [profile.to_dict() for profile in self.lines],
            "lines_target": self.lines_target,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunReport:
        """Rebuild a report from :meth:`to_dict`'s output.

        Raises:
            KeyError, TypeError, ValueError: *data* is not a run's dict.
        """
        if data.get("kind", cls.KIND) != cls.KIND:
            raise ValueError(f"not a run: kind {data.get('kind')!r}")
        limit, final, error = data.get("limit"), data.get("final"), data.get("error")
        return cls(
            command=str(data["command"]),
            argv=tuple(str(arg) for arg in data["argv"]),
            exit_code=int(data["exit_code"]),
            error=None if error is None else str(error),
            started_at=str(data.get("started_at", "")),
            duration_seconds=float(data["duration_seconds"]),
            peak_seconds=float(data.get("peak_seconds", 0.0)),
            timeline=Timeline.from_dict(data["timeline"]),
            sites=tuple(AllocationSite.from_dict(s) for s in data.get("sites", ())),
            sites_above_start_bytes=sites_level(data),
            sites_seconds=float(data.get("sites_seconds", 0.0)),
            sites_left_out=tuple(LeftOut.from_dict(item)
                                 for item in data.get("sites_left_out", ())),
            rss=bool(data.get("rss", False)),
            children=tuple((float(t), int(n)) for t, n in data.get("children", ())),
            limit=None if limit is None else LimitReport.from_dict(limit),
            final=None if final is None else Snapshot.from_dict(final),
            lines=tuple(LineProfile.from_dict(p) for p in data.get("lines", ())),
            lines_target=None if data.get("lines_target") is None else str(data["lines_target"]),
        )

