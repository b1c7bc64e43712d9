"""L3 values: allocation sites (file:line, size, count) and their frames.

Holds plain data only. Which frames are memguard's own or the import
machinery's, and how traces are grouped into sites, is decided in one place,
:mod:`memguard.traces`; :func:`is_internal` is its rule, re-exported.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import traces
from ..traces import is_internal
from ..units import format_size

__all__ = [
    "AllocationSite",
    "Frame",
    "is_internal",
    "is_users",
    "site_of",
    "site_sort_key",
    "sites_from_snapshot",
]


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame of an allocation's traceback."""

    filename: str
    """The source file, as the interpreter names it."""
    lineno: int
    """The line number in that file."""

    def __str__(self) -> str:
        return f"{self.filename}:{self.lineno}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"filename": self.filename, "lineno": self.lineno}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Frame:
        """Rebuild from :meth:`to_dict`."""
        return cls(filename=str(data["filename"]), lineno=int(data["lineno"]))


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocationSite:
    """Live traced memory allocated at one place."""

    filename: str
    """The source file of the innermost frame."""
    lineno: int
    """The line in that file."""
    size_bytes: int
    """Bytes allocated there and still live."""
    count: int
    """Memory blocks allocated there and still live."""
    traceback: tuple[Frame, ...] = ()
    """The full traceback, innermost last, when grouped by traceback."""
    left_out: str | None = None
    """The named remainder this site belongs to when it is not the user's:
    ``"memguard"`` (memguard's own work, tracemalloc's module) or ``"import
    machinery"``; ``None`` for the user's code. Reports leave such sites out
    of their rows and show them as one named row."""

    def __str__(self) -> str:
        size = format_size(self.size_bytes)
        return f"{self.filename}:{self.lineno}: {size} in {self.count:,} blocks"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "filename": self.filename,
            "lineno": self.lineno,
            "size_bytes": self.size_bytes,
            "count": self.count,
            "traceback": [frame.to_dict() for frame in self.traceback],
            **({} if self.left_out is None else {"left_out": self.left_out}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AllocationSite:
        """Rebuild from :meth:`to_dict`."""
        return cls(
            filename=str(data["filename"]),
            lineno=int(data["lineno"]),
            size_bytes=int(data["size_bytes"]),
            count=int(data["count"]),
            traceback=tuple(Frame.from_dict(f) for f in data.get("traceback", ())),
            left_out=None if data.get("left_out") is None else str(data["left_out"]),
        )


def is_users(site: AllocationSite) -> bool:
    """Whether *site* is the user's: not memguard's, tracemalloc's or the import machinery's."""
    return site.left_out is None and not is_internal(site.filename)


def site_sort_key(site: AllocationSite) -> tuple[int, int, str, int]:
    """Biggest first, then most blocks, then by place (stable output)."""
    return (-abs(site.size_bytes), -site.count, site.filename, site.lineno)


def site_of(group: traces.TraceGroup, left_out: str | None = None, *,
            cache: dict[tuple[str, int], Frame] | None = None) -> AllocationSite:
    """The value of a grouped trace record (frames kept innermost last).

    *cache* shares one :class:`Frame` per place among many sites.
    """
    frames: tuple[Frame, ...] = ()
    if len(group.frames) > 1:
        cache = {} if cache is None else cache
        out = []
        for place in reversed(group.frames):
            frame = cache.get(place)
            if frame is None:
                frame = cache[place] = Frame(filename=place[0], lineno=place[1])
            out.append(frame)
        frames = tuple(out)
    return AllocationSite(filename=group.filename, lineno=group.lineno,
                          size_bytes=group.size_bytes, count=group.count, traceback=frames,
                          left_out=left_out)


def sites_from_snapshot(
    snapshot: tracemalloc.Snapshot,
    *,
    baseline: tracemalloc.Snapshot | None = None,
    top: int | None = None,
) -> tuple[AllocationSite, ...]:
    """Group a tracemalloc snapshot by line, leaving out memguard's own frames.

    Args:
        snapshot: The snapshot to group.
        baseline: If given, only growth since it is reported (sites that
            shrank are left out).
        top: Keep this many sites at most.

    Returns:
        Sites sorted by :func:`site_sort_key`.
    """
    after = traces.group(snapshot, "lineno")
    if baseline is None:
        grown = [g for g in after.sites() if g.size_bytes > 0]
    else:
        grown = list(traces.changes(after, traces.group(baseline, "lineno")).grown)
    sites = [site_of(g) for g in grown]
    sites.sort(key=site_sort_key)
    return tuple(sites[:top] if top is not None else sites)
