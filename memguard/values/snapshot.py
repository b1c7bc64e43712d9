"""L4 values: :class:`Snapshot`, the state of the process's memory at one moment.

A snapshot keeps plain data only: allocation statistics by site (while
tracemalloc traces), live objects by type name, process memory (RSS, USS),
open descriptors and threads, the time, and Python/platform metadata. A
figure that cannot be measured is *absent* (``None``), with the reason kept
in :attr:`Snapshot.absent`; it is never recorded as zero.

:func:`take_snapshot` reads the measurement layer (:mod:`memguard._tracing`,
:mod:`memguard.process`, :mod:`memguard.objects`).
"""

from __future__ import annotations

import dataclasses
import heapq
import os
import platform
import sys
import time
import tracemalloc
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import _tracing, objects, process, traces
from ..exceptions import MeasurementUnavailable
from ..units import format_size
from ._value import Value
from .site import (
    SMALLER,
    AllocationSite,
    Frame,
    LeftOut,
    is_users,
    left_out_of,
    site_sort_key,
)

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["Snapshot", "snapshot_from", "take_snapshot"]

SOURCED_SITES = 1000
"""How many of a snapshot's biggest user sites keep their line's source text."""


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class Snapshot(Value, kind="snapshot"):
    """The process's memory at one moment, as plain data.

    Every measured figure is optional: ``None`` means *absent*, and
    :attr:`absent` says why (tracemalloc was not tracing, psutil cannot read
    USS here, ...). Absent is never written as zero.

    Example:
        >>> snap = Snapshot(label="start", timestamp=0.0, traced_bytes=2048,
        ...                 sites=(AllocationSite(filename="app.py", lineno=3,
        ...                                       size_bytes=2048, count=2),))
        >>> snap.summary
        'snapshot start: traced 2.0 KiB in 1 sites'

    .. versionadded:: 0.1.0
    """

    label: str | None = None
    """What the snapshot is called in reports."""
    timestamp: float
    """When it was taken, in seconds since the epoch."""
    sites: tuple[AllocationSite, ...] | None = None
    """Live traced memory by allocation site (grouped by full traceback when
    tracemalloc keeps several frames), biggest first; ``None`` when
    tracemalloc was not tracing."""
    traceback_limit: int = 0
    """Frames tracemalloc kept per allocation (0 when not tracing)."""
    sites_left_out: tuple[LeftOut, ...] = ()
    """What :attr:`sites` no longer holds site by site, by name, when they
    were cut to the biggest (:meth:`biggest`); with them, every traced block."""
    traced_bytes: int | None = None
    """The traced Python heap in use, in bytes: every traced block but memguard's own
    (an earlier snapshot's records, say), which :attr:`sites` names apart."""
    traced_peak_bytes: int | None = None
    """tracemalloc's peak counter when the snapshot was taken."""
    types: tuple[tuple[str, int], ...] | None = None
    """Live objects by type name, most numerous first, including objects
    the garbage collector does not track."""
    rss_bytes: int | None = None
    """Resident set size of the process."""
    uss_bytes: int | None = None
    """Unique set size of the process (memory no other process shares)."""
    fds: tuple[tuple[int, str], ...] | None = None
    """Open file descriptors and what each points at."""
    threads: tuple[str, ...] = ()
    """Names of the live Python threads."""
    pid: int = 0
    """The process id."""
    python: str = ""
    """Python implementation and version, e.g. ``"CPython 3.11.7"``."""
    platform: str = ""
    """The platform string, e.g. ``"Linux-6.1-x86_64"``."""
    absent: tuple[tuple[str, str], ...] = ()
    """Figures that could not be measured: ``(field name, reason)``."""

    @property
    def summary(self) -> str:
        """One line: the traced heap, the object count and the RSS."""
        name = f"snapshot {self.label}" if self.label else "snapshot"
        parts = []
        if self.traced_bytes is not None and self.sites is not None:
            parts.append(f"traced {format_size(self.traced_bytes)} in {len(self.sites)} sites")
        if self.types is not None:
            parts.append(f"{sum(n for _, n in self.types)} objects")
        if self.rss_bytes is not None:
            parts.append(f"RSS {format_size(self.rss_bytes)}")
        return f"{name}: " + (", ".join(parts) if parts else "no figures")

    def reason(self, name: str) -> str | None:
        """Why figure *name* is absent, or ``None`` when it was measured.

        Example:
            >>> Snapshot(timestamp=0.0, absent=(("uss_bytes", "refused"),)).reason("uss_bytes")
            'refused'
        """
        return dict(self.absent).get(name)

    def top_sites(self, n: int = 10, *, internal: bool = False) -> tuple[AllocationSite, ...]:
        """The *n* biggest sites, leaving out memguard's and importlib's own by default.

        Example:
            >>> Snapshot(timestamp=0.0).top_sites()
            ()
        """
        if self.sites is None:
            return ()
        chosen = (s for s in self.sites if internal or is_users(s))
        return tuple(heapq.nsmallest(n, chosen, key=site_sort_key))

    def biggest(self, n: int) -> Snapshot:
        """This snapshot with its *n* biggest user sites only, the rest summed
        by name in :attr:`sites_left_out` (smaller sites, memguard's own, the
        import machinery).

        Example:
            >>> snap = Snapshot(timestamp=0.0, sites=(
            ...     AllocationSite(filename="a.py", lineno=1, size_bytes=300, count=3),
            ...     AllocationSite(filename="a.py", lineno=2, size_bytes=20, count=2)))
            >>> [str(item) for item in snap.biggest(1).sites_left_out]
            ['smaller sites: 20 B in 2 blocks']
        """
        if self.sites is None:
            return self
        kept = self.top_sites(n)
        listed = set(map(id, kept))
        sums: dict[str, list[int]] = {}
        for item in self.sites_left_out:
            sums[item.name] = [item.size_bytes, item.count, item.sites]
        for site in self.sites:
            if id(site) not in listed:
                entry = sums.setdefault(left_out_of(site) or SMALLER, [0, 0, 0])
                entry[0] += site.size_bytes
                entry[1] += site.count
                entry[2] += 1
        left = tuple(LeftOut(name, size, count, number)
                     for name, (size, count, number) in sorted(sums.items()))
        return dataclasses.replace(self, sites=kept, sites_left_out=left)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` reverses it.

        Sites are written as compact rows ``[filename, lineno, size, count,
        traceback, source]`` because a snapshot may hold 100,000 of them; a
        site left out of the user's figures has its remainder's name as a
        seventh item (files written before 0.2 have five).

        Example:
            >>> Snapshot(timestamp=1.5).to_dict()["kind"]
            'snapshot'
        """
        sites = None
        if self.sites is not None:
            sites = [[s.filename, s.lineno, s.size_bytes, s.count,
                      [[f.filename, f.lineno] for f in s.traceback], s.source,
                      *(() if s.left_out is None else (s.left_out,))] for s in self.sites]
        return {
            "kind": self.KIND,
            "label": self.label,
            "timestamp": self.timestamp,
            "sites": sites,
            "traceback_limit": self.traceback_limit,
            "sites_left_out": [item.to_dict() for item in self.sites_left_out],
            "traced_bytes": self.traced_bytes,
            "traced_peak_bytes": self.traced_peak_bytes,
            "types": None if self.types is None else [[k, n] for k, n in self.types],
            "rss_bytes": self.rss_bytes,
            "uss_bytes": self.uss_bytes,
            "fds": None if self.fds is None else [[fd, path] for fd, path in self.fds],
            "threads": list(self.threads),
            "pid": self.pid,
            "python": self.python,
            "platform": self.platform,
            "absent": dict(self.absent),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Snapshot:
        """Rebuild a snapshot from :meth:`to_dict`'s output.

        Raises:
            KeyError, TypeError, ValueError: *data* is not a snapshot.

        Example:
            >>> Snapshot.from_dict(Snapshot(timestamp=2.0).to_dict()).timestamp
            2.0
        """
        sites = None
        if data["sites"] is not None:
            frames: dict[tuple[str, int], Frame] = {}
            sites = tuple(
                AllocationSite(filename=str(f), lineno=int(ln), size_bytes=int(size),
                               count=int(count), traceback=_frames(tb, frames),
                               source=str(rest[0]) if rest else "",
                               left_out=str(rest[1]) if len(rest) > 1 else None)
                for f, ln, size, count, tb, *rest in data["sites"]
            )
        types = data.get("types")
        fds = data.get("fds")
        return cls(
            label=None if data.get("label") is None else str(data["label"]),
            timestamp=float(data["timestamp"]),
            sites=sites,
            traceback_limit=int(data.get("traceback_limit", 0)),
            sites_left_out=tuple(LeftOut.from_dict(item)
                                 for item in data.get("sites_left_out", ())),
            traced_bytes=_opt_int(data.get("traced_bytes")),
            traced_peak_bytes=_opt_int(data.get("traced_peak_bytes")),
            types=None if types is None else tuple((str(k), int(n)) for k, n in types),
            rss_bytes=_opt_int(data.get("rss_bytes")),
            uss_bytes=_opt_int(data.get("uss_bytes")),
            fds=None if fds is None else tuple((int(fd), str(p)) for fd, p in fds),
            threads=tuple(str(t) for t in data.get("threads", ())),
            pid=int(data.get("pid", 0)),
            python=str(data.get("python", "")),
            platform=str(data.get("platform", "")),
            absent=tuple((str(k), str(v)) for k, v in dict(data.get("absent", {})).items()),
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the snapshot as versioned JSON (gzip when *path* ends in ``.gz``).

        Returns:
            The path written.

        Example:
            >>> import tempfile, pathlib
            >>> target = pathlib.Path(tempfile.mkdtemp()) / "s.json.gz"
            >>> Snapshot(timestamp=0.0).save(target).name
            's.json.gz'
        """
        from .files import save

        return save(self, path)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _frames(rows: Iterable[Any], cache: dict[tuple[str, int], Frame]) -> tuple[Frame, ...]:
    out = []
    for filename, lineno in rows:
        key = (str(filename), int(lineno))
        frame = cache.get(key)
        if frame is None:
            frame = cache[key] = Frame(filename=key[0], lineno=key[1])
        out.append(frame)
    return tuple(out)


def group_traces(snapshot: tracemalloc.Snapshot) -> tuple[AllocationSite, ...]:
    """Group a tracemalloc snapshot's traces by full traceback.

    A site keeps its frames in :attr:`AllocationSite.traceback` (innermost
    last) only when there are several; a one-frame site is its filename and
    line. memguard's own allocations and the import machinery's are kept,
    marked with :attr:`AllocationSite.left_out`, so that reports can name
    them as one row (and ``diff(internal=True)`` can show them).

    Example:
        >>> import tracemalloc
        >>> group_traces(tracemalloc.Snapshot([], 1))
        ()
    """
    grouped = traces.group(snapshot, "traceback")
    cache: dict[tuple[str, int], Frame] = {}
    sources: dict[str, list[str]] = {}
    sites = [_site(tb, size, count, None, cache=cache)
             for tb, (size, count) in grouped.sums.items()]
    sites.extend(_site(tb, size, count, name, cache=cache)
                 for tb, (name, (size, count)) in grouped.hidden.items())
    sites.sort(key=site_sort_key)
    # The source text of the biggest sites, those any report shows (reading
    # 100,000 lines would cost a fifth of the snapshot); a diff takes a
    # site's text from whichever snapshot has it.
    shown = 0
    for index, site in enumerate(sites):
        if shown == SOURCED_SITES:
            break
        if site.left_out is None:
            shown += 1
            text = traces.source_line(site.filename, site.lineno, sources)
            if text:  # made here, not by dataclasses.replace: see _site
                sites[index] = AllocationSite(
                    filename=site.filename, lineno=site.lineno, size_bytes=site.size_bytes,
                    count=site.count, traceback=site.traceback, source=text)
    return tuple(sites)


def _site(tb: tuple[tuple[str, int], ...], size: float, count: float, left_out: str | None, *,
          cache: dict[tuple[str, int], Frame]) -> AllocationSite:
    """A site of a traceback (frames innermost first), without an interim record.

    Sites are made in this module's frames, so that a later snapshot counts
    them as memguard's (an object made through ``dataclasses.replace`` would
    be charged to dataclasses.py, the user's figures).
    """
    filename, lineno = tb[0] if tb else ("<unknown>", 0)
    return AllocationSite(
        filename=filename, lineno=lineno, size_bytes=int(size), count=int(count),
        traceback=_frames(reversed(tb), cache) if len(tb) > 1 else (), left_out=left_out)


def take_snapshot(label: str | None = None, *, census: bool = True) -> Snapshot:
    """Measure the process's memory now.

    Args:
        label: What to call the snapshot in reports.
        census: Count live objects by type (one pass over the heap, the
            costliest part); ``False`` leaves :attr:`Snapshot.types` absent.

    Returns:
        An immutable :class:`Snapshot` holding no user objects.

    Note:
        Allocation sites exist only while tracemalloc traces (start it with
        :func:`memguard.record`, ``tracemalloc.start()`` or ``-X
        tracemalloc``); memguard does not start tracing for a snapshot,
        because sites of allocations made before tracing began are unknown.

        The trace walk and the census are left out of every open peak (a
        ``limit()`` around a snapshot sees the snapshot value it keeps, plus
        about 60 KiB of reading /proc for RSS, USS and descriptors); a spike
        another thread makes during the walk's Python part (tens of
        milliseconds per 100,000 sites) is left out with them.

    Example:
        >>> snap = take_snapshot("here", census=False)
        >>> snap.label, snap.rss_bytes is not None or snap.reason("rss_bytes") is not None
        ('here', True)
    """
    if label is not None and not isinstance(label, str):
        raise TypeError(f"label must be a string or None, not {type(label).__name__} {label!r}")
    absent: dict[str, str] = {}
    # Reading /proc releases the GIL, so it stays outside excluded(): other
    # threads' spikes must not be dropped from open peaks; it costs them ~40 KiB.
    # It comes before the walk of the traces, with everything else that may
    # import or cache something on its first call (psutil, platform): what
    # memguard keeps for itself is then in this snapshot's traces already,
    # and never shows as the user's growth in the next one.
    rss = _measure(process.rss_bytes, "rss_bytes", absent)
    facts = _process_facts(absent)
    raw = None
    peak = None
    types = None
    with _tracing.excluded():
        timestamp = time.time()
        if tracemalloc.is_tracing():
            peak = tracemalloc.get_traced_memory()[1]
        # The census comes first, so that it does not count this snapshot's
        # own site records.
        if census:
            types = objects.count_types(untracked=True)
        else:
            absent["types"] = "the object census was switched off (census=False)"
        if peak is not None:
            raw = tracemalloc.take_snapshot()
        snapshot = _build(label, timestamp, raw, peak=peak, counts=types, rss=rss, facts=facts,
                          absent=absent)
        del raw, types
    return snapshot


def snapshot_from(label: str | None, *, timestamp: float, traces: tracemalloc.Snapshot | None,
                  peak_bytes: int | None, types: dict[str, int] | None,
                  rss_bytes: int | None, absent: dict[str, str]) -> Snapshot:
    """A :class:`Snapshot` of figures read earlier, elsewhere: the rest is read now.

    For ``memguard run``'s agent, which copies the program's traces and
    counts its objects at its end, before memguard is imported (see
    :mod:`memguard.program.child`); the process's USS, descriptors and
    threads are read when this is called.

    Args:
        label: What to call the snapshot in reports.
        timestamp: When the traces were copied (``time.time()``).
        traces: The copy of the traces, or ``None`` when nothing traced.
        peak_bytes: tracemalloc's peak then.
        types: The object census then (:func:`memguard.objects.count_types`),
            or ``None`` with its reason in *absent*.
        rss_bytes: The resident memory then, or ``None`` with its reason in *absent*.
        absent: Reasons for the figures left out, by field; completed here.

    Example:
        >>> import tracemalloc
        >>> copy = tracemalloc.Snapshot([(0, 64, (("app.py", 3),), 1)], 1)
        >>> snap = snapshot_from("end", timestamp=0.0, traces=copy, peak_bytes=64,
        ...                      types={"dict": 2}, rss_bytes=None, absent={"rss_bytes": "no"})
        >>> snap.traced_bytes, snap.types
        (64, (('dict', 2),))
    """
    absent = dict(absent)
    facts = _process_facts(absent)
    return _build(label, timestamp, traces, peak=peak_bytes, counts=types, rss=rss_bytes,
                  facts=facts, absent=absent)


_Facts = tuple[int | None, tuple[tuple[int, str], ...] | None, tuple[str, ...], str, str]


def _process_facts(absent: dict[str, str]) -> _Facts:
    """USS, descriptors, thread names, the Python and the platform, read now."""
    uss = _measure(process.uss_bytes, "uss_bytes", absent)
    try:
        fds: tuple[tuple[int, str], ...] | None = tuple(sorted(
            (fd + 0, str(path)) for fd, path in process.open_fds().items()))
    except MeasurementUnavailable as error:
        fds, absent["fds"] = None, str(error)
    threads = tuple(sorted(process.thread_names().values()))
    python = f"{platform.python_implementation()} {platform.python_version()}"
    system = f"{platform.platform()} ({sys.platform})"
    return uss, fds, threads, python, system


def _build(label: str | None, timestamp: float, raw: tracemalloc.Snapshot | None, *,
           peak: int | None, counts: dict[str, int] | None, rss: int | None, facts: _Facts,
           absent: dict[str, str]) -> Snapshot:
    types = None
    if counts is not None:
        types = tuple(sorted(((str(k), int(n)) for k, n in counts.items()),
                             key=lambda kv: (-kv[1], kv[0])))
    sites = traced = None
    limit = 0
    if raw is not None:
        limit = raw.traceback_limit
        sites = group_traces(raw)
        # The figure is the program's: the blocks of these sites, memguard's
        # own left out (the census just made is among them), so that a diff's
        # traced change and its table of sites are one quantity (issue 14).
        traced = sum(site.size_bytes for site in sites if site.left_out != traces.MEMGUARD)
    else:
        absent["sites"] = absent["traced_bytes"] = (
            "tracemalloc was not tracing; start it (memguard.record(), "
            "tracemalloc.start() or python -X tracemalloc) to see allocation sites")
    uss, fds, threads, python, system = facts
    return Snapshot(
        label=label, timestamp=timestamp, sites=sites, traceback_limit=limit,
        traced_bytes=traced, traced_peak_bytes=peak, types=types, rss_bytes=rss,
        uss_bytes=uss, fds=fds, threads=threads, pid=os.getpid(), python=python,
        platform=system, absent=tuple(sorted(absent.items())),
    )


def _measure(read: Any, name: str, absent: dict[str, str]) -> int | None:
    try:
        # ``+ 0`` makes a new int here, in memguard's frame: the one the
        # reader returned was allocated in psutil's, which the next snapshot
        # would show as the user's growth while this snapshot lives.
        return int(read()) + 0
    except MeasurementUnavailable as error:
        absent[name] = str(error)
        return None
