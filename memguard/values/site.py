"""L4 values: allocation sites (file:line, size, count) and their frames.

Holds plain data only. Which frames are memguard's own or the import
machinery's, and how traces are grouped into sites, is decided in one place,
:mod:`memguard.traces`; :func:`is_internal` is its rule, re-exported.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .. import traces
from ..traces import is_internal
from ..units import format_size

__all__ = [
    "FILTERED",
    "SMALLER",
    "AllocationSite",
    "Frame",
    "LeftOut",
    "LocationNamer",
    "add_location_namer",
    "is_internal",
    "is_users",
    "left_out_of",
    "locate",
    "site_of",
    "site_sort_key",
    "sites_from_snapshot",
    "with_source",
]


LocationNamer = Callable[[str, int], "str | None"]
"""``namer(filename, lineno)``: a readable name for a place, or ``None`` to pass."""

_namers: list[LocationNamer] = []


def add_location_namer(namer: LocationNamer) -> Callable[[], None]:
    """Let *namer* name places in every report; returns the function that removes it.

    A front end whose code lives in files nobody should read adds one: the
    IPython extension names ipykernel's per-cell temporary files by their cell
    (``In [7], line 3``). The values keep the real file name; only what is
    printed changes. The namer most recently added is asked first; one that
    raises is skipped.

    Example:
        >>> remove = add_location_namer(lambda f, n: "the demo" if f == "demo.py" else None)
        >>> locate("demo.py", 3), locate("app.py", 3)
        ('the demo', 'app.py:3')
        >>> remove()
        >>> locate("demo.py", 3)
        'demo.py:3'
    """
    if not callable(namer):
        raise TypeError(f"namer must be callable, not {type(namer).__name__}")
    _namers.append(namer)

    def remove() -> None:
        if namer in _namers:
            _namers.remove(namer)

    return remove


def locate(filename: str, lineno: int) -> str:
    """How reports name a place: ``file:line``, unless a registered namer knows better.

    Example:
        >>> locate("/app/util.py", 2)
        '/app/util.py:2'
    """
    for namer in reversed(_namers):
        try:
            name = namer(filename, lineno)
        except Exception:  # a namer must never break a failure message
            continue
        if name:
            return name
    return f"{filename}:{lineno}"


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame of an allocation's traceback."""

    filename: str
    """The source file, as the interpreter names it."""
    lineno: int
    """The line number in that file."""

    def __str__(self) -> str:
        return locate(self.filename, self.lineno)

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
    source: str = ""
    """The line's source text, trimmed, read when the site was measured
    (``""`` when the file could not be read)."""
    left_out: str | None = None
    """The named remainder this site belongs to when it is not the user's:
    ``"memguard"`` (memguard's own work, tracemalloc's module) or ``"import
    machinery"``; ``None`` for the user's code. Reports leave such sites out
    of their rows and show them as one named row."""

    @property
    def where(self) -> str:
        """``file:line``, or what a registered namer calls the place (:func:`locate`)."""
        return locate(self.filename, self.lineno)

    def __str__(self) -> str:
        size = format_size(self.size_bytes)
        text = f"{self.where}: {size} in {self.count:,} blocks"
        return f"{text}  {self.source}" if self.source else text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "filename": self.filename,
            "lineno": self.lineno,
            "size_bytes": self.size_bytes,
            "count": self.count,
            "traceback": [frame.to_dict() for frame in self.traceback],
            "source": self.source,
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
            source=str(data.get("source", "")),
            left_out=None if data.get("left_out") is None else str(data["left_out"]),
        )


FILTERED = "filtered out"
"""The left-out name for sites a caller's include/exclude patterns left out."""
SMALLER = "smaller sites"
"""The left-out name for the user's sites too small to keep one by one."""


@dataclass(frozen=True, slots=True)
class LeftOut:
    """Traced memory a list of sites does not show site by site, under one name.

    Every table of sites adds up: its rows, then its smaller sites, then one
    row per :class:`LeftOut` (memguard's own work, the import machinery,
    what filters left out), to the total.

    Example:
        >>> str(LeftOut("memguard", 2048, 3))
        'memguard: 2.0 KiB in 3 blocks'
    """

    name: str
    """``"memguard"``, ``"import machinery"``, ``"smaller sites"`` or ``"filtered out"``."""
    size_bytes: int
    """Bytes (a change, in a diff)."""
    count: int
    """Blocks (a change, in a diff)."""
    sites: int = 0
    """How many sites are summed here (0 when not counted)."""

    def __str__(self) -> str:
        return f"{self.name}: {format_size(self.size_bytes)} in {self.count:,} blocks"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"name": self.name, "size_bytes": self.size_bytes, "count": self.count,
                "sites": self.sites}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LeftOut:
        """Rebuild from :meth:`to_dict`."""
        return cls(name=str(data["name"]), size_bytes=int(data["size_bytes"]),
                   count=int(data["count"]), sites=int(data.get("sites", 0)))


def left_out_of(site: AllocationSite) -> str | None:
    """The named remainder *site* belongs to, ``None`` when it is the user's."""
    return site.left_out or traces.owner(site.filename)


def is_users(site: AllocationSite) -> bool:
    """Whether *site* is the user's: not memguard's, tracemalloc's or the import machinery's."""
    return site.left_out is None and not is_internal(site.filename)


def site_sort_key(site: AllocationSite) -> tuple[int, int, str, int]:
    """Biggest first, then most blocks, then by place (stable output)."""
    return (-abs(site.size_bytes), -site.count, site.filename, site.lineno)


def site_of(group: traces.TraceGroup, left_out: str | None = None, *,
            cache: dict[tuple[str, int], Frame] | None = None,
            source: bool = True,
            sources: dict[str, list[str]] | None = None) -> AllocationSite:
    """The value of a grouped trace record (frames kept innermost last).

    *cache* shares one :class:`Frame` per place among many sites; *source*
    reads the line's text (the user's sites only), *sources* shares the
    files read among many sites.
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
                          left_out=left_out,
                          source=traces.source_line(group.filename, group.lineno, sources)
                          if source and left_out is None else "")


def with_source(site: AllocationSite) -> AllocationSite:
    """*site* with its line's source text, read now if it has none."""
    if site.source or site.left_out is not None:
        return site
    # Made here rather than by dataclasses.replace, so that a later snapshot
    # charges the new site to memguard's frame, not to dataclasses.py.
    return AllocationSite(filename=site.filename, lineno=site.lineno, size_bytes=site.size_bytes,
                          count=site.count, traceback=site.traceback,
                          source=traces.source_line(site.filename, site.lineno))


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
    sources: dict[str, list[str]] = {}
    sites = [site_of(g, sources=sources) for g in grown[:top]]
    sites.sort(key=site_sort_key)
    return tuple(sites[:top] if top is not None else sites)
