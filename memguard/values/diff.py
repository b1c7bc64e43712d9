"""L4 values: :class:`SnapshotDiff` and :func:`compare`, what changed between two snapshots.

Pure functions over :class:`~memguard.values.snapshot.Snapshot` values: no
I/O, no printing. Sites are grouped by line, file or traceback, and every
list is sorted by absolute change, biggest first, as tracemalloc's
``Snapshot.compare_to`` does. memguard's own frames, tracemalloc's and the
import machinery's are left out unless ``internal=True``.
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .. import traces
from ..units import format_size
from ._value import Value
from .site import FILTERED, AllocationSite, Frame, LeftOut, locate
from .snapshot import Snapshot

__all__ = ["GroupBy", "SiteDelta", "SnapshotDiff", "TypeDelta", "compare"]

GroupBy = Literal["lineno", "filename", "traceback"]
_GROUPINGS = ("lineno", "filename", "traceback")


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteDelta:
    """How the live memory allocated at one site changed.

    Example:
        >>> str(SiteDelta(filename="app.py", lineno=7, size_bytes=3072,
        ...               size_diff_bytes=2048, count=3, count_diff=2))
        'app.py:7: 3.0 KiB (+2.0 KiB), 3 blocks (+2)'
    """

    filename: str
    """The file of the innermost frame."""
    lineno: int
    """The line in it; 0 when grouped by file."""
    size_bytes: int
    """Live bytes at the site in the later snapshot."""
    size_diff_bytes: int
    """Change in live bytes since the earlier snapshot."""
    count: int
    """Live blocks at the site in the later snapshot."""
    count_diff: int
    """Change in live blocks."""
    traceback: tuple[Frame, ...] = ()
    """The traceback, innermost last, when grouped by traceback."""
    source: str = ""
    """The line's source text, trimmed, as the snapshots read it (``""``
    when grouped by file or unknown)."""

    @property
    def where(self) -> str:
        """``file:line``, or the file alone when grouped by file."""
        return locate(self.filename, self.lineno) if self.lineno else self.filename

    def __str__(self) -> str:
        return (f"{self.where}: {format_size(self.size_bytes)} "
                f"({format_size(self.size_diff_bytes, signed=True)}), "
                f"{self.count:,} blocks ({self.count_diff:+,d})"
                + (f"  {self.source}" if self.source else ""))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"filename": self.filename, "lineno": self.lineno, "size_bytes": self.size_bytes,
                "size_diff_bytes": self.size_diff_bytes, "count": self.count,
                "count_diff": self.count_diff,
                "traceback": [f.to_dict() for f in self.traceback], "source": self.source}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SiteDelta:
        """Rebuild from :meth:`to_dict`."""
        return cls(filename=str(data["filename"]), lineno=int(data["lineno"]),
                   size_bytes=int(data["size_bytes"]),
                   size_diff_bytes=int(data["size_diff_bytes"]), count=int(data["count"]),
                   count_diff=int(data["count_diff"]),
                   traceback=tuple(Frame.from_dict(f) for f in data.get("traceback", ())),
                   source=str(data.get("source", "")))


@dataclass(frozen=True, slots=True)
class TypeDelta:
    """How many live objects of one type there are, and the change.

    Example:
        >>> str(TypeDelta("dict", 120, 20))
        'dict: 120 (+20)'
    """

    name: str
    """The type's name, module-qualified unless a builtin."""
    count: int
    """Live objects in the later snapshot."""
    count_diff: int
    """Change since the earlier snapshot."""

    def __str__(self) -> str:
        return f"{self.name}: {self.count} ({self.count_diff:+d})"


def _delta_sort_key(delta: SiteDelta) -> tuple[int, int, int, str, int]:
    return (-abs(delta.size_diff_bytes), -abs(delta.count_diff), -delta.size_bytes,
            delta.filename, delta.lineno)


def _type_sort_key(delta: TypeDelta) -> tuple[int, int, str]:
    return (-abs(delta.count_diff), -delta.count, delta.name)


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class SnapshotDiff(Value, kind="diff"):
    """What changed from one :class:`Snapshot` to a later one.

    A figure either snapshot lacks is absent (``None``) here too, with the
    reason in :attr:`absent`. Sites and types that did not change are left
    out.

    Example:
        >>> diff = SnapshotDiff(before="a", after="b", by="lineno", traced_diff_bytes=4096)
        >>> diff.summary
        'diff a -> b: traced +4.0 KiB'

    .. versionadded:: 0.1.0
    """

    before: str | None
    """The earlier snapshot's label."""
    after: str | None
    """The later snapshot's label."""
    by: GroupBy
    """How sites are grouped: ``"lineno"``, ``"filename"`` or ``"traceback"``."""
    elapsed_seconds: float = 0.0
    """Time between the two snapshots."""
    sites: tuple[SiteDelta, ...] | None = None
    """Changed sites, biggest absolute change first."""
    types: tuple[TypeDelta, ...] | None = None
    """Changed object counts by type, biggest absolute change first."""
    traced_diff_bytes: int | None = None
    """Change in the traced Python heap."""
    rss_diff_bytes: int | None = None
    """Change in the process's resident set size."""
    uss_diff_bytes: int | None = None
    """Change in the process's unique set size."""
    fds_opened: tuple[str, ...] = ()
    """Descriptors open in the later snapshot only (``"fd -> path"``)."""
    fds_closed: tuple[str, ...] = ()
    """Descriptors open in the earlier snapshot only."""
    threads_started: tuple[str, ...] = ()
    """Names of threads alive in the later snapshot only."""
    threads_ended: tuple[str, ...] = ()
    """Names of threads alive in the earlier snapshot only."""
    include: tuple[str, ...] = ()
    """File patterns sites were limited to."""
    exclude: tuple[str, ...] = ()
    """File patterns left out."""
    internal: bool = False
    """Whether memguard's own frames and the import machinery were kept."""
    left_out: tuple[LeftOut, ...] = ()
    """The change of what :attr:`sites` leaves out, by name: memguard's own
    work, the import machinery, the sites the filters left out. With the
    sites it adds up to the change of every traced site."""
    absent: tuple[tuple[str, str], ...] = ()
    """Figures that could not be compared: ``(field name, reason)``."""

    @property
    def sites_diff_bytes(self) -> int | None:
        """The sum of the site changes shown (after filtering)."""
        return None if self.sites is None else sum(s.size_diff_bytes for s in self.sites)

    @property
    def summary(self) -> str:
        """One line: the labels and the changes in totals."""
        head = f"diff {self.before or 'before'} -> {self.after or 'after'}"
        parts = []
        if self.traced_diff_bytes is not None:
            parts.append(f"traced {format_size(self.traced_diff_bytes, signed=True)}")
        if self.rss_diff_bytes is not None:
            parts.append(f"RSS {format_size(self.rss_diff_bytes, signed=True)}")
        if self.types:
            parts.append(f"{len(self.types)} types changed")
        return f"{head}: " + (", ".join(parts) if parts else "no figures")

    def reason(self, name: str) -> str | None:
        """Why figure *name* is absent, or ``None`` when it was compared."""
        return dict(self.absent).get(name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` reverses it."""
        return {
            "kind": self.KIND, "before": self.before, "after": self.after, "by": self.by,
            "elapsed_seconds": self.elapsed_seconds,
            "sites": None if self.sites is None else [s.to_dict() for s in self.sites],
            "types": None if self.types is None else [[t.name, t.count, t.count_diff]
                                                      for t in self.types],
            "traced_diff_bytes": self.traced_diff_bytes, "rss_diff_bytes": self.rss_diff_bytes,
            "uss_diff_bytes": self.uss_diff_bytes, "fds_opened": list(self.fds_opened),
            "fds_closed": list(self.fds_closed), "threads_started": list(self.threads_started),
            "threads_ended": list(self.threads_ended), "include": list(self.include),
            "exclude": list(self.exclude), "internal": self.internal,
            "left_out": [item.to_dict() for item in self.left_out],
            "absent": dict(self.absent),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SnapshotDiff:
        """Rebuild a diff from :meth:`to_dict`'s output."""
        by = data["by"]
        if by not in _GROUPINGS:
            raise ValueError(f"unknown grouping by={by!r}")
        sites, types = data.get("sites"), data.get("types")

        def _opt(name: str) -> int | None:
            value = data.get(name)
            return None if value is None else int(value)

        def _strs(name: str) -> tuple[str, ...]:
            return tuple(str(x) for x in data.get(name, ()))

        return cls(
            before=data.get("before"), after=data.get("after"), by=by,
            elapsed_seconds=float(data.get("elapsed_seconds", 0.0)),
            sites=None if sites is None else tuple(SiteDelta.from_dict(s) for s in sites),
            types=None if types is None else tuple(TypeDelta(str(n), int(c), int(d))
                                                   for n, c, d in types),
            traced_diff_bytes=_opt("traced_diff_bytes"), rss_diff_bytes=_opt("rss_diff_bytes"),
            uss_diff_bytes=_opt("uss_diff_bytes"), fds_opened=_strs("fds_opened"),
            fds_closed=_strs("fds_closed"), threads_started=_strs("threads_started"),
            threads_ended=_strs("threads_ended"), include=_strs("include"),
            exclude=_strs("exclude"), internal=bool(data.get("internal", False)),
            left_out=tuple(LeftOut.from_dict(item) for item in data.get("left_out", ())),
            absent=tuple((str(k), str(v)) for k, v in dict(data.get("absent", {})).items()),
        )


def _patterns(value: str | Iterable[str] | None, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    patterns = tuple(value)
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise TypeError(f"{name} must be file patterns (strings), got {pattern!r}")
    return patterns


def _key_of(by: str) -> Any:
    if by == "lineno":
        return lambda site: (site.filename, site.lineno)
    if by == "filename":
        return lambda site: site.filename
    return lambda site: site.traceback or (site.filename, site.lineno)


def _group(sites: Sequence[AllocationSite], by: str, kept: Mapping[str, str | None], *,
           internal: bool, left: dict[str, list[int]], sign: int) -> dict[Any, list[Any]]:
    """Sum sizes and counts per grouping key: ``key -> [size, count, site]``;
    what is left out is added, times *sign*, to *left* by name."""
    groups: dict[Any, list[Any]] = {}
    get = groups.get
    key_of = _key_of(by)
    for site in sites:
        name = (None if internal else site.left_out) or kept[site.filename]
        if name is not None:
            sums = left.setdefault(name, [0, 0])
            sums[0] += sign * site.size_bytes
            sums[1] += sign * site.count
            continue
        key = key_of(site)
        entry = get(key)
        if entry is None:
            groups[key] = [site.size_bytes, site.count, site]
        else:
            entry[0] += site.size_bytes
            entry[1] += site.count
    return groups


def _kept(files: Iterable[str], include: tuple[str, ...], exclude: tuple[str, ...],
          internal: bool) -> dict[str, str | None]:
    """Which files' sites a diff leaves out, and under what name (``None``:
    shown); each file judged once, not once per site."""
    out: dict[str, str | None] = {}
    for name in files:
        owner = None if internal else traces.owner(name)
        shown = ((not include or any(fnmatch.fnmatch(name, p) for p in include))
                 and not any(fnmatch.fnmatch(name, p) for p in exclude))
        out[name] = owner or (None if shown else FILTERED)
    return out


def _site_deltas(before: Snapshot, after: Snapshot, by: str, *, include: tuple[str, ...],
                 exclude: tuple[str, ...], internal: bool,
                 left: dict[str, list[int]]) -> tuple[SiteDelta, ...] | None:
    if before.sites is None or after.sites is None:
        return None
    files = {site.filename for site in before.sites}
    files.update(site.filename for site in after.sites)
    kept = _kept(files, include, exclude, internal)
    old = _group(before.sites, by, kept, internal=internal, left=left, sign=-1)
    new = _group(after.sites, by, kept, internal=internal, left=left, sign=1)
    for sign, snapshot in ((-1, before), (1, after)):  # what a cut snapshot summed already
        for item in snapshot.sites_left_out:
            sums = left.setdefault(item.name, [0, 0])
            sums[0] += sign * item.size_bytes
            sums[1] += sign * item.count
    by_file = by == "filename"
    by_traceback = by == "traceback"
    deltas = []
    for key, (size, count, site) in new.items():
        was = old.pop(key, None)
        size_diff, count_diff = (size, count) if was is None else (size - was[0], count - was[1])
        # A snapshot keeps the text of its biggest sites; the earlier one may have it.
        text = site.source or ("" if was is None else was[2].source)
        if size_diff or count_diff:
            deltas.append(SiteDelta(
                filename=site.filename, lineno=0 if by_file else site.lineno,
                size_bytes=size, size_diff_bytes=size_diff, count=count, count_diff=count_diff,
                traceback=site.traceback if by_traceback else (),
                source="" if by_file else text))
    for size, count, site in old.values():
        deltas.append(SiteDelta(
            filename=site.filename, lineno=0 if by_file else site.lineno,
            size_bytes=0, size_diff_bytes=-size, count=0, count_diff=-count,
            traceback=site.traceback if by_traceback else (),
            source="" if by_file else site.source))
    deltas.sort(key=_delta_sort_key)
    return tuple(deltas)


def _type_deltas(before: Snapshot, after: Snapshot) -> tuple[TypeDelta, ...] | None:
    if before.types is None or after.types is None:
        return None
    old = dict(before.types)
    deltas = [TypeDelta(name, count, count - old.pop(name, 0)) for name, count in after.types]
    deltas.extend(TypeDelta(name, 0, -count) for name, count in old.items())
    return tuple(sorted((d for d in deltas if d.count_diff), key=_type_sort_key))


def _minus(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a - b


def _multiset_minus(a: Iterable[str], b: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted((Counter(a) - Counter(b)).elements()))


def compare(
    before: Snapshot,
    after: Snapshot,
    *,
    by: GroupBy = "lineno",
    include: str | Iterable[str] | None = None,
    exclude: str | Iterable[str] | None = None,
    internal: bool = False,
) -> SnapshotDiff:
    """What changed from *before* to *after*.

    Args:
        before: The earlier snapshot.
        after: The later snapshot.
        by: Group sites by ``"lineno"`` (file and line), ``"filename"`` or
            ``"traceback"`` (the full traceback, as deep as tracemalloc kept).
        include: Keep only sites whose file matches one of these
            :mod:`fnmatch` patterns (``"*/myapp/*"``).
        exclude: Leave out sites whose file matches one of these patterns.
        internal: Keep memguard's own frames, tracemalloc's and the import
            machinery's, which are left out by default.

    Returns:
        A :class:`SnapshotDiff`; sites and types sorted by absolute change.

    Raises:
        ValueError: *by* is not one of the groupings.
        TypeError: *before* or *after* is not a :class:`Snapshot`.

    Example:
        >>> a = Snapshot(label="a", timestamp=0.0, sites=())
        >>> b = Snapshot(label="b", timestamp=1.0, sites=(
        ...     AllocationSite(filename="app.py", lineno=3, size_bytes=100, count=1),))
        >>> [str(s) for s in compare(a, b).sites]
        ['app.py:3: 100 B (+100 B), 1 blocks (+1)']
    """
    if by not in _GROUPINGS:
        raise ValueError(f"by must be one of 'lineno', 'filename', 'traceback', got {by!r}")
    for name, value in (("before", before), ("after", after)):
        if not isinstance(value, Snapshot):
            raise TypeError(f"{name} must be a memguard Snapshot, not {type(value).__name__}")
    inc, exc = _patterns(include, "include"), _patterns(exclude, "exclude")
    absent: dict[str, str] = {}
    for name in ("sites", "types", "traced_bytes", "rss_bytes", "uss_bytes", "fds"):
        why = before.reason(name) or after.reason(name)
        if why is None:  # absent without a recorded reason: say which side lacks it
            lacking = [f"{side} snapshot {snap.label or side!r}" if snap.label else
                       f"{side} snapshot" for side, snap in (("the earlier", before),
                                                            ("the later", after))
                       if getattr(snap, name) is None]
            why = f"not measured in {' and '.join(lacking)}" if lacking else None
        if why is not None:
            absent[name] = why
    opened: tuple[str, ...] = ()
    closed: tuple[str, ...] = ()
    if before.fds is not None and after.fds is not None:
        old_fds = {f"{fd} -> {path}" for fd, path in before.fds}
        new_fds = {f"{fd} -> {path}" for fd, path in after.fds}
        opened, closed = tuple(sorted(new_fds - old_fds)), tuple(sorted(old_fds - new_fds))
    left: dict[str, list[int]] = {}
    sites = _site_deltas(before, after, by, include=inc, exclude=exc, internal=internal,
                         left=left)
    return SnapshotDiff(
        before=before.label, after=after.label, by=by,
        elapsed_seconds=after.timestamp - before.timestamp,
        sites=sites,
        left_out=tuple(LeftOut(name, size, count) for name, (size, count) in sorted(left.items())
                       if size or count),
        types=_type_deltas(before, after),
        traced_diff_bytes=_minus(after.traced_bytes, before.traced_bytes),
        rss_diff_bytes=_minus(after.rss_bytes, before.rss_bytes),
        uss_diff_bytes=_minus(after.uss_bytes, before.uss_bytes),
        fds_opened=opened, fds_closed=closed,
        threads_started=_multiset_minus(after.threads, before.threads),
        threads_ended=_multiset_minus(before.threads, after.threads),
        include=inc, exclude=exc, internal=internal, absent=tuple(sorted(absent.items())),
    )
