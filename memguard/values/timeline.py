"""L4 values: :class:`Timeline`, memory sampled over time while a block ran.

Samples are for charts; the peaks are exact: :attr:`Timeline.traced_peak_bytes`
comes from tracemalloc's peak counter and :attr:`Timeline.rss_peak_bytes` from
the kernel's high-water mark where Linux offers it, so a spike shorter than
the sampling interval is never missed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..units import format_size
from ._value import Value

__all__ = ["Mark", "Sample", "Timeline"]



@dataclass(frozen=True, slots=True)
class Sample:
    """Memory at one moment of a timeline.

    Example:
        >>> str(Sample(0.25, 2048, None))
        '0.250 s: traced 2.0 KiB'
    """

    time_seconds: float
    """Seconds since the timeline began."""
    traced_bytes: int | None
    """The traced Python heap, or ``None`` when tracemalloc was not tracing."""
    rss_bytes: int | None
    """The process's resident set size, or ``None`` when unavailable."""

    def __str__(self) -> str:
        parts = []
        if self.traced_bytes is not None:
            parts.append(f"traced {format_size(self.traced_bytes)}")
        if self.rss_bytes is not None:
            parts.append(f"RSS {format_size(self.rss_bytes)}")
        return f"{self.time_seconds:.3f} s: " + ", ".join(parts)


@dataclass(frozen=True, slots=True)
class Mark:
    """A labelled moment of a timeline (``timeline.mark("loaded")``).

    Example:
        >>> str(Mark("loaded", 1.5, 4096))
        'loaded at 1.500 s (traced 4.0 KiB)'
    """

    label: str
    """What happened."""
    time_seconds: float
    """Seconds since the timeline began."""
    traced_bytes: int | None = None
    """The traced Python heap at that moment."""

    def __str__(self) -> str:
        extra = "" if self.traced_bytes is None else f" (traced {format_size(self.traced_bytes)})"
        return f"{self.label} at {self.time_seconds:.3f} s{extra}"


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class Timeline(Value, kind="timeline"):
    """Memory over the run of a block, with marks and the exact peaks.

    Example:
        >>> tl = Timeline(label="load", interval_seconds=0.01, duration_seconds=0.5,
        ...               traced_start_bytes=1000, traced_peak_bytes=3048,
        ...               samples=(Sample(0.0, 1000, None), Sample(0.5, 2024, None)))
        >>> tl.summary
        'timeline load: 2 samples over 0.500 s, traced peak 2.0 KiB above start'

    .. versionadded:: 0.1.0
    """

    label: str | None = None
    """What the timeline is called in reports."""
    started_at: float = 0.0
    """When it began, in seconds since the epoch."""
    interval_seconds: float
    """The sampling interval asked for."""
    duration_seconds: float
    """How long the block ran."""
    samples: tuple[Sample, ...] = ()
    """The samples, oldest first."""
    marks: tuple[Mark, ...] = ()
    """Labelled moments, oldest first."""
    traced_start_bytes: int | None = None
    """The traced Python heap when the block began."""
    traced_end_bytes: int | None = None
    """The traced Python heap when the block ended."""
    traced_peak_bytes: int | None = None
    """The exact highest traced Python heap during the block (tracemalloc's
    own peak counter, not a sample)."""
    rss_start_bytes: int | None = None
    """RSS when the block began."""
    rss_peak_bytes: int | None = None
    """The highest RSS during the block; see :attr:`rss_peak_method`."""
    rss_peak_method: str = "unavailable"
    """``"kernel-hwm"`` (exact), ``"sampled"`` (the highest sample) or ``"unavailable"``."""
    absent: tuple[tuple[str, str], ...] = ()
    """Figures that could not be measured: ``(field name, reason)``."""

    @property
    def traced_peak_above_start_bytes(self) -> int | None:
        """The exact traced peak above the level at the start."""
        if self.traced_peak_bytes is None or self.traced_start_bytes is None:
            return None
        return max(0, self.traced_peak_bytes - self.traced_start_bytes)

    @property
    def rss_peak_above_start_bytes(self) -> int | None:
        """The RSS peak above the level at the start."""
        if self.rss_peak_bytes is None or self.rss_start_bytes is None:
            return None
        return max(0, self.rss_peak_bytes - self.rss_start_bytes)

    def reason(self, name: str) -> str | None:
        """Why figure *name* is absent, or ``None`` when it was measured."""
        return dict(self.absent).get(name)

    @property
    def summary(self) -> str:
        """One line: the samples, the duration and the traced peak above the start."""
        name = f"timeline {self.label}" if self.label else "timeline"
        text = f"{name}: {len(self.samples)} samples over {self.duration_seconds:.3f} s"
        above = self.traced_peak_above_start_bytes
        if above is not None:
            text += f", traced peak {format_size(above)} above start"
        return text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; samples are compact ``[time, traced, rss]`` rows.

        Example:
            >>> Timeline(interval_seconds=0.1, duration_seconds=0.0).to_dict()["kind"]
            'timeline'
        """
        return {
            "kind": self.KIND, "label": self.label, "started_at": self.started_at,
            "interval_seconds": self.interval_seconds,
            "duration_seconds": self.duration_seconds,
            "samples": [[s.time_seconds, s.traced_bytes, s.rss_bytes] for s in self.samples],
            "marks": [[m.label, m.time_seconds, m.traced_bytes] for m in self.marks],
            "traced_start_bytes": self.traced_start_bytes,
            "traced_end_bytes": self.traced_end_bytes,
            "traced_peak_bytes": self.traced_peak_bytes,
            "rss_start_bytes": self.rss_start_bytes, "rss_peak_bytes": self.rss_peak_bytes,
            "rss_peak_method": self.rss_peak_method, "absent": dict(self.absent),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Timeline:
        """Rebuild a timeline from :meth:`to_dict`'s output."""

        def _opt(value: Any) -> int | None:
            return None if value is None else int(value)

        return cls(
            label=None if data.get("label") is None else str(data["label"]),
            started_at=float(data.get("started_at", 0.0)),
            interval_seconds=float(data["interval_seconds"]),
            duration_seconds=float(data["duration_seconds"]),
            samples=tuple(Sample(float(t), _opt(tr), _opt(rss)) for t, tr, rss in data["samples"]),
            marks=tuple(Mark(str(lb), float(t), _opt(tr)) for lb, t, tr in data["marks"]),
            traced_start_bytes=_opt(data.get("traced_start_bytes")),
            traced_end_bytes=_opt(data.get("traced_end_bytes")),
            traced_peak_bytes=_opt(data.get("traced_peak_bytes")),
            rss_start_bytes=_opt(data.get("rss_start_bytes")),
            rss_peak_bytes=_opt(data.get("rss_peak_bytes")),
            rss_peak_method=str(data.get("rss_peak_method", "unavailable")),
            absent=tuple((str(k), str(v)) for k, v in dict(data.get("absent", {})).items()),
        )
