"""L3 values: allocation sites (file:line, size, count) and their frames.

Holds plain data only, and the one rule for which frames are memguard's own
or the import machinery's, so every report filters them the same way.
"""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..units import format_size

__all__ = [
    "AllocationSite",
    "Frame",
    "is_internal",
    "site_sort_key",
    "sites_from_snapshot",
]

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_INTERNAL_PREFIXES = ("<frozen importlib._bootstrap", "<frozen zipimport")
_INTERNAL_FILES = frozenset({tracemalloc.__file__})


def is_internal(filename: str) -> bool:
    """Whether *filename* is memguard's own code, tracemalloc or the import machinery."""
    return (
        filename.startswith(_PACKAGE_DIR)
        or filename.startswith(_INTERNAL_PREFIXES)
        or filename in _INTERNAL_FILES
    )


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
        )


def site_sort_key(site: AllocationSite) -> tuple[int, int, str, int]:
    """Biggest first, then most blocks, then by place (stable output)."""
    return (-abs(site.size_bytes), -site.count, site.filename, site.lineno)


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
    statistics: Iterable[tracemalloc.Statistic | tracemalloc.StatisticDiff]
    if baseline is None:
        statistics = snapshot.statistics("lineno")
        pairs = ((s.traceback[0], s.size, s.count) for s in statistics)
    else:
        statistics = snapshot.compare_to(baseline, "lineno")
        pairs = ((s.traceback[0], s.size_diff, s.count_diff) for s in statistics)
    sites = [
        AllocationSite(filename=frame.filename, lineno=frame.lineno, size_bytes=size, count=count)
        for frame, size, count in pairs
        if size > 0 and not is_internal(frame.filename)
    ]
    sites.sort(key=site_sort_key)
    return tuple(sites[:top] if top is not None else sites)
