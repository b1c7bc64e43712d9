"""L4 values: :class:`LimitReport`, the result of one ``limit()`` block."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..units import format_size
from ._value import Value, renamed, renamed_field, shown
from .site import AllocationSite

__all__ = [
    "ATTRIBUTED_FRACTION",
    "CAPTURE_GROWTH",
    "KEPT_SITES",
    "LimitReport",
    "SitesStatus",
    "Source",
    "sites_level",
    "sites_status",
]

Source = Literal["python", "rss"]
SitesStatus = Literal["peak", "partial", "unattributed", "off", "not-needed", "unavailable"]

# The one peak-catcher policy (limit() and memguard run both follow it):
CAPTURE_GROWTH = 1.10
"""Sites are captured again when the level reaches this multiple of the last capture."""
ATTRIBUTED_FRACTION = 0.90
"""Sites captured at this fraction of the peak or more are "the sites at the peak"."""
KEPT_SITES = 20
"""How many sites a capture keeps."""


def sites_status(*, wanted: bool, exceeded: bool, captured_above_start_bytes: int | None,
                 peak_above_start_bytes: int, named: int) -> SitesStatus:
    """Where the sites of a peak come from, or why there are none: the one rule.

    Args:
        wanted: Whether sites were to be captured at all.
        exceeded: Whether the peak went over the limit (no limit: pass ``True``).
        captured_above_start_bytes: The level above the start at the highest
            capture, ``None`` when nothing was captured.
        peak_above_start_bytes: The peak above the start.
        named: How many sites the capture named (after memguard's own and
            the import machinery's are left out).

    Returns:
        ``"peak"`` when the capture was made at 90% of the peak or more,
        ``"partial"`` when below, ``"unattributed"`` when nothing was captured
        (the peak rose and fell between two chances to capture), ``"off"``,
        or ``"not-needed"`` when the limit held.

    Example:
        >>> sites_status(wanted=True, exceeded=True, captured_above_start_bytes=950,
        ...              peak_above_start_bytes=1000, named=3)
        'peak'
        >>> sites_status(wanted=True, exceeded=True, captured_above_start_bytes=None,
        ...              peak_above_start_bytes=1000, named=0)
        'unattributed'
    """
    if not wanted:
        return "off"
    if not exceeded:
        return "not-needed"
    if captured_above_start_bytes is None or named == 0:
        return "unattributed"
    if captured_above_start_bytes < ATTRIBUTED_FRACTION * peak_above_start_bytes:
        return "partial"
    return "peak"


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class LimitReport(Value, kind="limit"):
    """What one ``limit()`` block measured.

    Example:
        >>> report = LimitReport(label="test_load", source="python", method="tracemalloc",
        ...                      limit_bytes=1_000_000, peak_above_start_bytes=1_500_000)
        >>> report.summary
        'test_load: peak 1.4 MiB > limit 976.6 KiB (+488.3 KiB), traced Python heap'
    """

    label: str
    """Where the block ran: a function's qualified name or ``file:line``."""
    source: Source
    """``"python"`` (the traced Python heap) or ``"rss"`` (process memory)."""
    method: str
    """How the peak was measured: ``"counter"`` (memguard's native allocation counter),
    ``"tracemalloc"``, ``"kernel-hwm"`` or ``"sampled"``."""
    limit_bytes: int
    """The limit that was set."""
    peak_above_start_bytes: int
    """The peak above the level at the start of the block (the start's level is
    :attr:`start_bytes`; the absolute peak is their sum)."""
    start_bytes: int = 0
    """The level (traced heap or RSS) when the block began."""
    end_bytes: int = 0
    """The level when the block ended."""
    duration_seconds: float = 0.0
    """How long the block ran."""
    sites: tuple[AllocationSite, ...] = ()
    """The top allocation sites at the peak, biggest first."""
    sites_status: SitesStatus = "not-needed"
    """Where :attr:`sites` come from, or why there are none."""
    sites_above_start_bytes: int | None = None
    """The level above the start at which :attr:`sites` were captured; ``None``
    when none were."""
    interval_seconds: float = 0.0
    """The sampling interval when :attr:`method` is ``"sampled"``."""
    sample_interval_bytes: float = 0.0
    """The mean sampling interval when :attr:`sites` are sampled estimates; 0: exact sites."""

    @property
    def exceeded(self) -> bool:
        """Whether the peak went over the limit."""
        return self.peak_above_start_bytes > self.limit_bytes

    @property
    def overshoot_bytes(self) -> int:
        """How far the peak went over the limit (negative: headroom)."""
        return self.peak_above_start_bytes - self.limit_bytes

    @property
    def end_above_start_bytes(self) -> int:
        """How much the level grew from the start to the end of the block (negative: fell)."""
        return self.end_bytes - self.start_bytes

    @property
    def peak_bytes(self) -> int:
        """Deprecated: :attr:`peak_above_start_bytes` (the name read as an absolute level)."""
        renamed("LimitReport", "peak_bytes", "peak_above_start_bytes")
        return self.peak_above_start_bytes

    @property
    def retained_bytes(self) -> int:
        """Deprecated: :attr:`end_above_start_bytes` (a line's ``retained_bytes`` is what it
        left live; this was the block's end level minus its start level)."""
        renamed("LimitReport", "retained_bytes", "end_above_start_bytes")
        return self.end_above_start_bytes

    @property
    def sites_level_bytes(self) -> int:
        """Deprecated: :attr:`sites_above_start_bytes` (0 when absent)."""
        renamed("LimitReport", "sites_level_bytes", "sites_above_start_bytes")
        return self.sites_above_start_bytes or 0

    @property
    def measured(self) -> str:
        """What was measured, in words."""
        if self.source == "python":
            return "counted Python heap" if self.method == "counter" else "traced Python heap"
        if self.method == "sampled":
            return f"process RSS, sampled every {self.interval_seconds * 1000:g} ms"
        return "process RSS (kernel high-water mark)"

    @property
    def summary(self) -> str:
        """One line: the peak, the limit and the overshoot or headroom."""
        relation = ">" if self.exceeded else "<="
        sign = "+" if self.exceeded else "headroom "
        amount = abs(self.overshoot_bytes)
        return (
            f"{self.label}: peak {format_size(self.peak_above_start_bytes)} {relation} limit "
            f"{format_size(self.limit_bytes)} ({sign}{format_size(amount)}), {self.measured}"
        )

    def message(self, *, top: int = 5) -> str:
        """The verdict a failed block raises: its first line, then the top sites (up to
        *top*) or why there are none. Written by the presentation layer
        (:mod:`memguard.report.verdict`)."""
        return shown(self, "verdict", top=top)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` reverses it."""
        return {
            "kind": self.KIND,
            "label": self.label,
            "source": self.source,
            "method": self.method,
            "limit_bytes": self.limit_bytes,
            "peak_above_start_bytes": self.peak_above_start_bytes,
            "start_bytes": self.start_bytes,
            "end_bytes": self.end_bytes,
            "duration_seconds": self.duration_seconds,
            "sites": [site.to_dict() for site in self.sites],
            "sites_status": self.sites_status,
            "sites_above_start_bytes": self.sites_above_start_bytes,
            "interval_seconds": self.interval_seconds,
            "sample_interval_bytes": self.sample_interval_bytes,
            "exceeded": self.exceeded,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LimitReport:
        """Rebuild a report from :meth:`to_dict`'s output."""
        return cls(
            label=str(data["label"]),
            source=data["source"],
            method=str(data["method"]),
            limit_bytes=int(data["limit_bytes"]),
            peak_above_start_bytes=int(renamed_field(data, "peak_above_start_bytes",
                                                      "peak_bytes")),
            start_bytes=int(data.get("start_bytes", 0)),
            end_bytes=int(data.get("end_bytes", 0)),
            duration_seconds=float(data.get("duration_seconds", 0.0)),
            sites=tuple(AllocationSite.from_dict(s) for s in data.get("sites", ())),
            sites_status=data.get("sites_status", "not-needed"),
            sites_above_start_bytes=sites_level(data),
            interval_seconds=float(data.get("interval_seconds", 0.0)),
            sample_interval_bytes=float(data.get("sample_interval_bytes", 0.0)),
        )


def sites_level(data: Mapping[str, Any]) -> int | None:
    """The capture level of a limit's or a run's dict: ``None`` when no sites were
    captured (version 1 files wrote 0 then, under ``sites_level_bytes``)."""
    level = renamed_field(data, "sites_above_start_bytes", "sites_level_bytes", None)
    if level is None or (level == 0 and not data.get("sites")):
        return None
    return int(level)
