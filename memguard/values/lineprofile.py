"""L4 values: :class:`LineProfile`, the line-by-line memory profile of a function.

A profile holds plain data only (names, file names, line numbers, source
text and byte counts), never the profiled function or its objects. It
is shown (``print(profile)``, notebooks) by :mod:`memguard.report.lines`:
the fixed-width table, Markdown, HTML and the chart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..units import format_size
from ._value import Value, shown
from .site import locate

__all__ = ["NATIVE_NOTE", "UNATTRIBUTED_FLOOR", "LineProfile", "LineRow", "row_sort_key"]

NATIVE_NOTE = (
    "native allocations are not seen: only memory allocated through Python's allocators "
    "is traced (tracemalloc); memory that C extensions, numpy or mmap get from malloc "
    "directly is missing from every figure"
)
"""The blind spot every line profile states."""

_FORMAT_VERSION = 1

UNATTRIBUTED_FLOOR = 256
"""Below this, a difference between the counters' retained total and the rows'
is the tracer's own noise (a frame's locals mapping, reading the counters) and
is not worth a note."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LineRow:
    """What one source line did, summed over every time it ran.

    Example:
        >>> row = LineRow(lineno=3, source="data = bytearray(10_000)",
        ...               allocated_bytes=10_057, retained_bytes=10_057,
        ...               peak_share_bytes=10_057, hits=1)
        >>> str(row)
        'line 3: allocated 9.8 KiB, retained 9.8 KiB, at peak 9.8 KiB, 1 hit'
    """

    lineno: int
    """The line number in the file."""
    source: str
    """The line's source text, right-stripped ("" when the source is unavailable)."""
    allocated_bytes: int = 0
    """Bytes the line allocated: the sum of its increments of the traced heap,
    each increment being the highest level reached while the line ran above
    the level when it started (so a temporary that is freed before the next
    line still counts)."""
    retained_bytes: int = 0
    """Net bytes allocated on this line (or in calls from it) still alive when
    the function returned, from tracemalloc's traces."""
    peak_share_bytes: int = 0
    """The line's net contribution to the traced heap at the moment of the
    function's peak; negative when the line freed memory that earlier lines
    allocated. The shares add up to the peak."""
    hits: int = 0
    """How many times the line ran."""

    def __str__(self) -> str:
        plural = "" if self.hits == 1 else "s"
        return (
            f"line {self.lineno}: allocated {format_size(self.allocated_bytes)}, "
            f"retained {format_size(self.retained_bytes)}, "
            f"at peak {format_size(self.peak_share_bytes)}, {self.hits} hit{plural}"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` reverses it."""
        return {
            "lineno": self.lineno,
            "source": self.source,
            "allocated_bytes": self.allocated_bytes,
            "retained_bytes": self.retained_bytes,
            "peak_share_bytes": self.peak_share_bytes,
            "hits": self.hits,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LineRow:
        """Rebuild a row from :meth:`to_dict`'s output."""
        return cls(
            lineno=int(data["lineno"]),
            source=str(data.get("source", "")),
            allocated_bytes=int(data.get("allocated_bytes", 0)),
            retained_bytes=int(data.get("retained_bytes", 0)),
            peak_share_bytes=int(data.get("peak_share_bytes", 0)),
            hits=int(data.get("hits", 0)),
        )


def row_sort_key(row: LineRow) -> tuple[int, int]:
    """Most allocated first, then by line number: the order of "top lines"."""
    return (-row.allocated_bytes, row.lineno)


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class LineProfile(Value, kind="lineprofile"):
    """The line-by-line memory profile of one function.

    Rows come in source order and cover every line of the function, run or
    not (a line that never ran has ``hits == 0``). Figures are exact for
    memory allocated through Python's allocators; see :attr:`blind_spots`.

    Example:
        >>> profile = LineProfile(
        ...     function="build", filename="app.py", first_lineno=1, calls=1,
        ...     rows=(LineRow(lineno=1, source="def build():"),
        ...           LineRow(lineno=2, source="    return bytearray(4096)",
        ...                   allocated_bytes=4153, retained_bytes=4153,
        ...                   peak_share_bytes=4153, hits=1)),
        ...     peak_bytes=4153, retained_total_bytes=4153)
        >>> profile.summary
        'build (app.py:1): 1 call, allocated 4.1 KiB, peak 4.1 KiB, retained 4.1 KiB'
        >>> print(profile)  # doctest: +NORMALIZE_WHITESPACE
        build (app.py:1): 1 call, allocated 4.1 KiB, peak 4.1 KiB, retained 4.1 KiB
        Line  Hits   Allocated    Retained     At peak  Source
           1                                            def build():
           2     1     4.1 KiB     4.1 KiB     4.1 KiB      return bytearray(4096)
        ...
    """

    function: str
    """The function's qualified name."""
    filename: str
    """The file the function's code comes from (an IPython cell's name for
    code typed in a notebook)."""
    first_lineno: int
    """The first line of the function (its first decorator, if any)."""
    rows: tuple[LineRow, ...]
    """One row per source line, in line order."""
    calls: int = 0
    """How many calls were profiled (outermost calls; recursive calls are
    folded into them)."""
    peak_bytes: int = 0
    """The highest traced heap the function's lines reached above where a call
    started (over all calls: the highest of them)."""
    retained_total_bytes: int = 0
    """Net traced bytes the function left behind, by the counters (summed over
    calls); compare with the rows' retained figures."""
    duration_seconds: float = 0.0
    """Wall time of the profiled calls, profiling overhead included."""
    nframes: int = 1
    """Frames tracemalloc stored per allocation: how far retained memory
    allocated in called functions could be traced back to a line. ``0`` with
    the counter (:attr:`method`), whose line tags follow every call, however deep."""
    callees: tuple[LineProfile, ...] = ()
    """Profiles of called functions whose lines were expanded (``expand``),
    each with its own rows; their figures are not in the calling lines."""
    blind_spots: tuple[str, ...] = field(default=(NATIVE_NOTE,))
    """What the figures cannot include, in plain words."""
    method: str = "tracemalloc"
    """How the figures were measured: ``"counter"`` (memguard's native
    allocation counter, each block tagged with the profiled line running in
    its thread) or ``"tracemalloc"`` (its counters, and tracebacks for
    *retained*)."""

    @property
    def allocated_bytes(self) -> int:
        """All bytes the function's lines allocated."""
        return sum(row.allocated_bytes for row in self.rows)

    @property
    def retained_bytes(self) -> int:
        """Bytes still alive at return, attributed to the function's lines."""
        return sum(row.retained_bytes for row in self.rows)

    @property
    def unattributed_bytes(self) -> int:
        """Retained bytes the counters saw but no line could be named for (the
        allocation was more than :attr:`nframes` frames deep, or was freed and
        replaced by memory allocated elsewhere)."""
        return self.retained_total_bytes - self.retained_bytes

    @property
    def label(self) -> str:
        """``function (file:line)``."""
        return f"{self.function} ({locate(self.filename, self.first_lineno)})"

    def row(self, lineno: int) -> LineRow:
        """The row of line *lineno*.

        Raises:
            KeyError: The line is not part of the function.
        """
        for row in self.rows:
            if row.lineno == lineno:
                return row
        raise KeyError(f"line {lineno} is not in {self.label}")

    def top(self, n: int = 5) -> tuple[LineRow, ...]:
        """The *n* lines that allocated most (lines that allocated nothing left out)."""
        ranked = sorted((r for r in self.rows if r.allocated_bytes > 0), key=row_sort_key)
        return tuple(ranked[:n])

    @property
    def summary(self) -> str:
        """One line: calls, allocated, peak and retained in all."""
        plural = "" if self.calls == 1 else "s"
        # "retained" is what the rows below add up to; the counters' total
        # differs when some of it could not be traced back to a line.
        retained = format_size(self.retained_bytes)
        if self.unattributed_bytes:
            retained += (f" in its lines ({format_size(self.retained_total_bytes)} in all, "
                         f"{format_size(self.unattributed_bytes, signed=True)} not traced to "
                         "a line)")
        return (
            f"{self.label}: {self.calls} call{plural}, allocated "
            f"{format_size(self.allocated_bytes)}, peak {format_size(self.peak_bytes)}, "
            f"retained {retained}"
        )

    def table(self, *, source_width: int | None = 60) -> str:
        """The text report, as ``print(profile)`` shows it (kept from 0.1.0, where
        the guide printed ``profile.table()``).

        Args:
            source_width: Cut source lines longer than this (``None``: never).
        """
        return shown(self, "text", source_width=source_width)

    def notes(self) -> tuple[str, ...]:
        """The caveats printed under the table."""
        notes = []
        if abs(self.unattributed_bytes) >= UNATTRIBUTED_FLOOR:
            if self.nframes:
                why = (f"allocated more than {self.nframes} frames deep, or the net of frees "
                       "and allocations elsewhere")
            else:
                why = ("memory allocated before the call and freed in it, or allocated by "
                       "other threads")
            notes.append(
                f"{format_size(self.unattributed_bytes, signed=True)} retained in the end "
                f"could not be traced back to a line ({why})"
            )
        if self.callees:
            notes.append("lines of expanded callees are listed in their own tables and are "
                         "not included in the calling lines")
        notes.extend(self.blind_spots)
        return tuple(notes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` reverses it."""
        return {
            "kind": self.KIND,
            "version": _FORMAT_VERSION,
            "function": self.function,
            "filename": self.filename,
            "first_lineno": self.first_lineno,
            "rows": [row.to_dict() for row in self.rows],
            "calls": self.calls,
            "peak_bytes": self.peak_bytes,
            "retained_total_bytes": self.retained_total_bytes,
            "duration_seconds": self.duration_seconds,
            "nframes": self.nframes,
            "callees": [callee.to_dict() for callee in self.callees],
            "blind_spots": list(self.blind_spots),
            "method": self.method,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LineProfile:
        """Rebuild a profile from :meth:`to_dict`'s output.

        Raises:
            ValueError: *data* is not a line profile, or from a newer version.
        """
        kind = data.get("kind", cls.KIND)
        if kind != cls.KIND:
            raise ValueError(f"data is a {kind!r}, not a line profile")
        version = int(data.get("version", _FORMAT_VERSION))
        if version > _FORMAT_VERSION:
            raise ValueError(f"line profile format version {version} is newer than this "
                             f"memguard reads ({_FORMAT_VERSION})")
        return cls(
            function=str(data["function"]),
            filename=str(data["filename"]),
            first_lineno=int(data["first_lineno"]),
            rows=tuple(LineRow.from_dict(row) for row in data.get("rows", ())),
            calls=int(data.get("calls", 0)),
            peak_bytes=int(data.get("peak_bytes", 0)),
            retained_total_bytes=int(data.get("retained_total_bytes", 0)),
            duration_seconds=float(data.get("duration_seconds", 0.0)),
            nframes=int(data.get("nframes", 1)),
            callees=tuple(cls.from_dict(c) for c in data.get("callees", ())),
            blind_spots=tuple(str(s) for s in data.get("blind_spots", (NATIVE_NOTE,))),
            method=_method(data.get("method", "tracemalloc")),
        )


_METHODS = ("counter", "tracemalloc")


def _method(value: object) -> str:
    if value not in _METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, _METHODS))}, "
                         f"got {value!r}")
    return str(value)
