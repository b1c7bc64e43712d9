"""L2 measurement: tracemalloc's traces grouped into sites, with a named remainder.

This module is the only code in memguard that reads a tracemalloc snapshot's
traces (CPython keeps them as raw tuples in ``snapshot.traces._traces``;
building a ``Trace`` object per block is most of what
``Snapshot.statistics()`` costs). Like CPython's ``tracemalloc._group_by``
behind both ``statistics()`` and ``compare_to()``, one grouping serves every
report: the snapshot value, the diff, ``limit()``'s sites, the program
runner's sites at the peak, the leak check's growing sites, the line
profiler's *retained* and pytest-memray's ``limit_leaks``.

API
---

``group(snapshot, by="lineno", *, skip=None) -> Grouped``
    Sum the live traces by *by*:

    * ``"lineno"``: the innermost frame (what tracemalloc calls a line);
    * ``"traceback"``: the whole traceback (frames kept innermost first);
    * ``"user_line"``: the innermost frame that is neither memguard's, nor the
      import machinery's, nor one *skip* names (when every frame is skipped,
      the innermost skipped one); the first traceback seen is kept with it.

    Whatever is left out by design is not dropped: it is summed, by name, in
    :attr:`Grouped.left_out` (:data:`MEMGUARD`, :data:`IMPORTS`), so that
    ``sum(groups) + sum(left_out)`` is every traced byte and block.

``Grouped.sites(top=None) -> list[TraceGroup]``
    The groups as records, biggest first (by size, then blocks, then place).

``Grouped.remainder() -> tuple[Remainder, ...]``
    What was left out, by name, biggest first.

``changes(after, before) -> Changes``
    What changed from *before* to *after* (both grouped the same way):
    ``Changes.grown`` (sites whose live size grew, with the growth),
    ``Changes.all`` (every site that changed, grown or shrunk, as
    ``TraceGroup`` records whose sizes are differences) and
    ``Changes.left_out`` (the remainder's change, by name).

``owner(filename) -> str | None``
    The remainder a file's frames belong to (:data:`MEMGUARD`,
    :data:`IMPORTS`), ``None`` for the user's code.

``source_line(filename, lineno) -> str``
    The line's source text, trimmed to one short line, ``""`` when unknown;
    read through :mod:`linecache` when a site is built, so that a report
    read later elsewhere still shows it.

``raw(snapshot) -> Sequence[RawTrace]``
    Every trace as a tuple whose item 1 is its size in bytes and item 2 its
    frames ``((filename, lineno), ...)`` innermost first, for code that needs
    its own walk over the traces (the line profiler).

Whose is a trace? Walking its frames from the innermost outwards, import
machinery frames are passed over; the first frame that is memguard's makes
the trace memguard's when nothing but import machinery (or the innermost
frames, when memguard itself allocated) lies inside it: memguard's own
lazy imports are memguard's, while the user's function called by
``check_leaks`` or the program ``memguard run`` starts stay the user's.
With one frame per trace (``tracemalloc.start()``'s default) this is the
innermost frame's owner.

Sums are kept as floats while grouping (exact to 2**53 bytes): a float comes
from the free list, while every new int would itself be traced, which costs
several times the addition when the grouping runs under tracing.
"""

from __future__ import annotations

import importlib
import linecache
import os
import tracemalloc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "IMPORTS",
    "MEMGUARD",
    "By",
    "Changes",
    "Grouped",
    "RawTrace",
    "Remainder",
    "TraceGroup",
    "changes",
    "group",
    "group_sums",
    "is_internal",
    "owner",
    "raw",
    "source_line",
]

MEMGUARD = "memguard"
"""The remainder's name for what memguard (and tracemalloc's module) allocated."""
IMPORTS = "import machinery"
"""The remainder's name for what the import machinery itself allocated."""

By = Literal["lineno", "traceback", "user_line"]
Frames = tuple[tuple[str, int], ...]
RawTrace = tuple[Any, ...]
"""``(domain, size, frames innermost first, ...)``: a trace as CPython keeps it."""

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_IMPORT_PREFIXES = ("<frozen importlib._bootstrap", "<frozen zipimport")
# importlib.import_module() runs in importlib/__init__.py: machinery too.
_IMPORT_FILES = frozenset({importlib.__file__})
_OWN_FILES = frozenset({tracemalloc.__file__})
_BYS = ("lineno", "traceback", "user_line")


def owner(filename: str) -> str | None:
    """Which named remainder code in *filename* belongs to; ``None`` for the user's.

    Example:
        >>> owner("<frozen importlib._bootstrap>"), owner("app.py")
        ('import machinery', None)
    """
    if filename.startswith(_PACKAGE_DIR) or filename in _OWN_FILES:
        return MEMGUARD
    if filename.startswith(_IMPORT_PREFIXES) or filename in _IMPORT_FILES:
        return IMPORTS
    return None


def is_internal(filename: str) -> bool:
    """Whether *filename* is memguard's own code, tracemalloc or the import machinery."""
    return owner(filename) is not None


SOURCE_WIDTH = 60
"""The longest source text a site keeps; longer lines end in ``...``."""


def source_line(filename: str, lineno: int,
                cache: dict[str, list[str]] | None = None) -> str:
    """*filename*'s line *lineno*, stripped and cut to :data:`SOURCE_WIDTH` characters.

    Lines come from :mod:`linecache` when it already holds the file, and
    otherwise from the file itself, read into *cache* (the caller's, dropped
    when it is done) and never into :mod:`linecache`: what memguard reads
    for itself must not stay in the user's heap, where the next snapshot
    would count it as theirs.

    Example:
        >>> source_line(linecache.__file__, 1).endswith("Cache lines from Python source files.")
        True
        >>> source_line("<no such file>", 3)
        ''
    """
    lines = None if cache is None else cache.get(filename)
    if lines is None:
        lines = _lines(filename, {} if cache is None else cache)
    if not 0 < lineno <= len(lines):
        return ""
    text = lines[lineno - 1].strip()
    return text if len(text) <= SOURCE_WIDTH else text[:SOURCE_WIDTH - 3].rstrip() + "..."


def _lines(filename: str, cache: dict[str, list[str]]) -> list[str]:
    lines = cache.get(filename)
    if lines is None:
        entry = linecache.cache.get(filename)
        if entry is not None and len(entry) == 4:  # (size, mtime, lines, path)
            lines = entry[2]
        elif filename.startswith("<") or not os.path.isfile(filename):
            lines = []
        else:
            # Read and decoded here rather than through tokenize's text
            # wrapper, whose caches would outlive the call. The text is for
            # display: a file in another encoding shows replacement marks.
            try:
                with open(filename, "rb") as file:
                    lines = file.read().decode("utf-8", "replace").splitlines()
            except OSError:
                lines = []
        cache[filename] = lines
    return lines


def raw(snapshot: tracemalloc.Snapshot) -> Sequence[RawTrace]:
    """Every trace of *snapshot* as ``(domain, size, frames innermost first, ...)``.

    Example:
        >>> raw(tracemalloc.Snapshot([(0, 64, (("app.py", 3),), 1)], 1))[0][1]
        64
    """
    traces = getattr(snapshot.traces, "_traces", None)
    if isinstance(traces, list | tuple) and (
            not traces or (isinstance(traces[0], tuple) and len(traces[0]) >= 3)):
        return traces
    return [(0, trace.size, tuple((f.filename, f.lineno) for f in reversed(trace.traceback)))
            for trace in snapshot.traces]  # pragma: no cover - other Python implementations


@dataclass(frozen=True, slots=True)
class TraceGroup:
    """Live traced memory at one site (or its change, from :func:`changes`)."""

    filename: str
    """The file of the site's frame."""
    lineno: int
    """The line in it."""
    size_bytes: int
    """Bytes (or their change)."""
    count: int
    """Blocks (or their change)."""
    frames: Frames = ()
    """The traceback, innermost first, when grouped by traceback or user line."""


@dataclass(frozen=True, slots=True)
class Remainder:
    """Traced memory left out of the sites by design, under one name."""

    name: str
    """:data:`MEMGUARD` or :data:`IMPORTS`."""
    size_bytes: int
    """Bytes (or their change)."""
    count: int
    """Blocks (or their change)."""


def _place(key: Any, by: str) -> tuple[str, int]:
    return key[0] if by == "traceback" else key  # type: ignore[no-any-return]


def _sort_key(item: TraceGroup) -> tuple[int, int, str, int]:
    return (-abs(item.size_bytes), -abs(item.count), item.filename, item.lineno)


@dataclass(slots=True)
class Grouped:
    """Live traces summed by site, and what was left out, by name."""

    by: str
    """How the traces were grouped: ``"lineno"``, ``"traceback"`` or ``"user_line"``."""
    sums: dict[Any, list[float]]
    """Site key -> ``[bytes, blocks]``; the key is ``(filename, lineno)``, or
    the frames innermost first when grouped by traceback."""
    frames: dict[Any, Frames]
    """Site key -> the first traceback seen there (grouped by user line)."""
    left_out: dict[str, list[float]]
    """Remainder name -> ``[bytes, blocks]``."""
    hidden: dict[Any, tuple[str, list[float]]]
    """Left-out site key -> ``(remainder name, [bytes, blocks])``, for a
    caller that keeps them apart rather than summed (``diff(internal=True)``)."""

    @property
    def total_bytes(self) -> int:
        """Every traced byte: the sites and the remainder."""
        sites = sum(v[0] for v in self.sums.values())
        return int(sites + sum(v[0] for v in self.left_out.values()))

    def sites(self, top: int | None = None) -> list[TraceGroup]:
        """The sites as records, biggest first."""
        out = [self._record(key, size, count) for key, (size, count) in self.sums.items()]
        out.sort(key=_sort_key)
        return out if top is None else out[:top]

    def remainder(self) -> tuple[Remainder, ...]:
        """What was left out, by name, biggest first."""
        return _remainder(self.left_out)

    def left_out_sites(self) -> list[tuple[str, TraceGroup]]:
        """The left-out sites with their remainder's name, biggest first."""
        out = [(name, self._record(key, size, count))
               for key, (name, (size, count)) in self.hidden.items()]
        out.sort(key=lambda pair: _sort_key(pair[1]))
        return out

    def _record(self, key: Any, size: float, count: float) -> TraceGroup:
        filename, lineno = _place(key, self.by)
        frames = key if self.by == "traceback" else self.frames.get(key, ())
        return TraceGroup(filename, lineno, int(size), int(count), frames)


def _remainder(sums: dict[str, list[float]]) -> tuple[Remainder, ...]:
    out = [Remainder(name, int(size), int(count)) for name, (size, count) in sums.items()
           if size or count]
    out.sort(key=lambda r: (-abs(r.size_bytes), r.name))
    return tuple(out)


def _owner_of(frames: Frames, owners: dict[str, str | None]) -> str | None:
    """Whose allocation a traceback is (see the module's docstring)."""
    if len(frames) == 1:  # the common case (one frame per trace): the file's owner
        who = owners.get(frames[0][0], "?")
        if who == "?":
            who = owners[frames[0][0]] = owner(frames[0][0])
        return who
    inner: str | None = "start"
    for filename, _ in frames:
        who = owners.get(filename, "?")
        if who == "?":
            who = owners[filename] = owner(filename)
        if who == MEMGUARD:
            return MEMGUARD if inner != "user" else None
        inner = "user" if who is None else who
    first = owners.get(frames[0][0]) if frames else None
    return IMPORTS if first == IMPORTS else None


def group(snapshot: tracemalloc.Snapshot, by: By = "lineno", *,
          skip: Callable[[str], bool] | None = None) -> Grouped:
    """Sum *snapshot*'s live traces by site, leaving memguard and imports in a named remainder.

    Args:
        snapshot: A tracemalloc snapshot.
        by: ``"lineno"``, ``"traceback"`` or ``"user_line"`` (see the module).
        skip: With ``"user_line"``, files whose frames are passed over too
            (a library's, say), so that the caller's line names the site.

    Example:
        >>> snap = tracemalloc.Snapshot([(0, 64, (("app.py", 3),), 1),
        ...                              (0, 32, (("<frozen importlib._bootstrap>", 9),), 1)], 1)
        >>> grouped = group(snap)
        >>> grouped.sites(), grouped.remainder()
        ([TraceGroup(filename='app.py', lineno=3, size_bytes=64, count=1, frames=())], \
(Remainder(name='import machinery', size_bytes=32, count=1),))
    """
    if by not in _BYS:
        raise ValueError(f"by must be one of {', '.join(map(repr, _BYS))}, not {by!r}")
    # Pass 1: by traceback (CPython shares one tuple per distinct traceback,
    # so this is one dict lookup per block).
    tracebacks: dict[Frames, list[float]] = {}
    get = tracebacks.get
    for trace in raw(snapshot):
        entry = get(trace[2])
        if entry is None:
            tracebacks[trace[2]] = [float(trace[1]), 1.0]
        else:
            entry[0] += trace[1]
            entry[1] += 1.0
    return group_sums(tracebacks, by, skip=skip)


def group_sums(tracebacks: Mapping[Frames, Sequence[float]], by: By = "lineno", *,
               skip: Callable[[str], bool] | None = None) -> Grouped:
    """:func:`group`'s second half: traces already summed by traceback, to sites.

    For sums made elsewhere: ``memguard run``'s agent sums its copies of
    the traces by traceback in the program's process (see
    :mod:`memguard.program._agent`).

    Example:
        >>> group_sums({(("app.py", 3),): [64, 2]}).sites()
        [TraceGroup(filename='app.py', lineno=3, size_bytes=64, count=2, frames=())]
    """
    if by not in _BYS:
        raise ValueError(f"by must be one of {', '.join(map(repr, _BYS))}, not {by!r}")
    # Each distinct traceback to its owner and site.
    owners: dict[str, str | None] = {}
    out = Grouped(by, {}, {}, {}, {})
    by_traceback = by == "traceback"
    for frames, sums in tracebacks.items():
        who = _owner_of(frames, owners)
        if who is None and by_traceback:
            out.sums[frames] = [float(sums[0]), float(sums[1])]  # its own site
            continue
        key: Any = frames[0] if frames else ("<unknown>", 0)
        if by_traceback:
            key = frames
        elif by == "user_line" and who != MEMGUARD:
            user = _user_line(frames, skip)
            who, key = (IMPORTS, key) if user is None else (None, user)
        if who is None:
            if _add(out.sums, key, sums) and by == "user_line":
                out.frames[key] = frames
            continue
        _add(out.left_out, who, sums)
        place = out.hidden.setdefault(key, (who, [0.0, 0.0]))[1]
        place[0] += sums[0]
        place[1] += sums[1]
    return out


def _add(table: dict[Any, list[float]], key: Any, sums: Sequence[float]) -> bool:
    """Add *sums* to ``table[key]``; whether the key is new."""
    entry = table.get(key)
    if entry is None:
        table[key] = [float(sums[0]), float(sums[1])]
        return True
    entry[0] += sums[0]
    entry[1] += sums[1]
    return False


def _user_line(frames: Frames, skip: Callable[[str], bool] | None) -> tuple[str, int] | None:
    fallback = None
    for frame in frames:
        filename = frame[0]
        if owner(filename) is not None:
            continue
        if skip is not None and skip(filename):
            fallback = fallback or frame
            continue
        return frame
    return fallback


@dataclass(frozen=True, slots=True)
class Changes:
    """What changed between two groupings of the same kind."""

    all: tuple[TraceGroup, ...]
    """Every site that changed, sizes and blocks as differences, biggest change first."""
    left_out: tuple[Remainder, ...]
    """The remainder's change, by name."""

    @property
    def grown(self) -> tuple[TraceGroup, ...]:
        """The sites whose live size grew, with their growth, biggest first."""
        return tuple(site for site in self.all if site.size_bytes > 0)


def changes(after: Grouped, before: Grouped | None) -> Changes:
    """What changed from *before* to *after* (``None``: nothing before).

    Example:
        >>> old = group(tracemalloc.Snapshot([(0, 64, (("app.py", 3),), 1)], 1))
        >>> new = group(tracemalloc.Snapshot([(0, 64, (("app.py", 3),), 1),
        ...                                   (0, 96, (("app.py", 4),), 1)], 1))
        >>> changes(new, old).grown
        (TraceGroup(filename='app.py', lineno=4, size_bytes=96, count=1, frames=()),)
    """
    if before is not None and before.by != after.by:
        raise ValueError(f"cannot compare sites grouped by {after.by!r} and by {before.by!r}")
    old = before.sums if before is not None else {}
    out = []
    for key, (size, count) in after.sums.items():
        was = old.get(key, (0.0, 0.0))
        if size != was[0] or count != was[1]:
            out.append(after._record(key, size - was[0], count - was[1]))
    if before is not None:
        for key, (size, count) in before.sums.items():
            if key not in after.sums:
                out.append(before._record(key, -size, -count))
    out.sort(key=_sort_key)
    left: dict[str, list[float]] = {}
    for name, (size, count) in after.left_out.items():
        left[name] = [size, count]
    for name, (size, count) in (before.left_out if before is not None else {}).items():
        entry = left.setdefault(name, [0.0, 0.0])
        entry[0] -= size
        entry[1] -= count
    return Changes(tuple(out), _remainder(left))
