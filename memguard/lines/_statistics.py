"""L6 line profiler: per-line figures of a line profile, and live traces by line.

:class:`Collector` adds up what the tracer (:mod:`memguard.lines._tracer`)
charges to each line: allocated, net, hits, the peak and the lines' shares of
it, call by call. :func:`attribute_traces` names the profiled line each live
trace of a tracemalloc snapshot was allocated from (for *retained*).
"""

from __future__ import annotations

import dis
import tracemalloc
from collections.abc import Iterable
from types import CodeType, FrameType

from .. import traces

__all__ = ["Collector", "Key", "attribute_traces", "code_lines"]

Key = tuple[CodeType, int]
"""A line of a code object: ``(code, line number)``; line 0 is a fresh frame's set-up."""


class Collector:
    """Per-line figures of one profile: its root code and expanded callees."""

    def __init__(self, *, expand: int = 0) -> None:
        self.expand = expand
        self.records: dict[Key, list[int]] = {}  # key -> [allocated, net, hits]
        self.codes: dict[CodeType, None] = {}
        self.keys: dict[CodeType, dict[int, Key]] = {}
        self.level = 0
        self.calls = 0
        self.peak = 0
        self.peak_shares: dict[Key, int] = {}
        self.entries: dict[CodeType, int] = {}
        self._have_peak = False
        self.tail_slot: int | None = None
        self.open_frames: set[FrameType] = set()
        self._call_start: dict[Key, int] = {}
        self._call_base = 0
        self._call_peak = 0
        self._call_shares: dict[Key, int] = {}
        self._pending: tuple[Key, int] | None = None

    def prepare(self, code: CodeType) -> dict[int, Key]:
        """The keys of *code*'s lines, with their records made in advance.

        Made once per code object, on its first call, so that the per-line
        path of the tracer allocates nothing that lasts.
        """
        keys = self.keys.get(code)
        if keys is None:
            keys = self.keys[code] = {}
            for line in (0, *sorted(code_lines(code))):
                key = keys[line] = (code, line)
                self.record(key)
        return keys

    def record(self, key: Key) -> list[int]:
        """The figures of *key*, created on first use."""
        rec = self.records.get(key)
        if rec is None:
            rec = self.records[key] = [0, 0, 0]
            self.codes.setdefault(key[0])
        return rec

    def charge(self, key: Key, delta: int, excursion: int) -> None:
        """Charge a change of the traced heap to the line *key*."""
        rec = self.records.get(key) or self.record(key)
        if not key[1]:
            # Line 0: what tracing a fresh frame costs (its locals mapping,
            # freed with the frame). Kept in the net, so that the teardown
            # balances it, and out of every other figure.
            rec[1] += delta
            return
        if excursion > 0:
            rec[0] += excursion
        high = self.level - self._call_base + excursion
        if high > self._call_peak:
            self._call_peak = high
            # The shares at this peak are the nets just after this charge,
            # adjusted; they are copied only if no later charge beats it.
            self._pending = (key, excursion - delta)
        elif self._pending is not None:
            self._settle()
        rec[1] += delta
        self.level += delta

    def _settle(self) -> None:
        assert self._pending is not None
        key, adjust = self._pending
        self._pending = None
        start = self._call_start
        shares = {k: rec[1] - start.get(k, 0) for k, rec in self.records.items()}
        shares[key] = shares.get(key, 0) + adjust
        self._call_shares = shares

    def begin_call(self) -> None:
        """A new outermost call starts: its peak is measured from here."""
        self.calls += 1
        self._call_start = {k: rec[1] for k, rec in self.records.items()}
        self._call_base = self.level
        self._call_peak = 0
        self._call_shares = {}
        self._pending = None

    def end_call(self) -> None:
        """The outermost call ended: keep its peak if it is the highest."""
        if self._pending is not None:
            self._settle()
        if not self._have_peak or self._call_peak > self.peak:
            self._have_peak = True
            self.peak = self._call_peak
            self.peak_shares = self._call_shares
        self._call_shares = {}


def code_lines(code: CodeType) -> set[int]:
    """The line numbers that *code*'s own instructions are on."""
    return {line for _, _, line in code.co_lines() if line is not None}


_PROLOGUE = frozenset({"RESUME", "MAKE_CELL", "COPY_FREE_VARS", "RETURN_GENERATOR", "POP_TOP",
                       "NOP", "CACHE"})


def _prologue_line(code: CodeType) -> int | None:
    """The ``def`` (or decorator) line when only the frame's set-up runs there.

    What is allocated there is what tracing a fresh frame costs, never the
    function's own work; a one-line function (a lambda) has none.
    """
    first = code.co_firstlineno
    ranges = [(start, end) for start, end, line in code.co_lines() if line == first]
    ops = {i.opname for i in dis.get_instructions(code)
           if any(start <= i.offset < end for start, end in ranges)}
    return first if ops <= _PROLOGUE else None


def attribute_traces(
    snapshot: tracemalloc.Snapshot, codes: Iterable[CodeType]
) -> dict[Key, int]:
    """Live traced bytes by the innermost line of *codes* in each trace's traceback.

    A trace allocated in a callee is attributed to the calling line when the
    traceback (``nframes`` deep) reaches it; other traces are left out.
    """
    owners: dict[tuple[str, int], Key] = {}
    # The line table CPython builds for a code object the first time it runs
    # traced: 2 or 4 bytes per instruction, allocated at the first line.
    line_tables: dict[tuple[str, int], tuple[int, int]] = {}
    for code in codes:
        prologue = _prologue_line(code)
        for line in code_lines(code):
            if line != prologue:
                owners.setdefault((code.co_filename, line), (code, line))
        size = len(code.co_code)
        line_tables[(code.co_filename, code.co_firstlineno)] = (size, 2 * size)
    files = {filename for filename, _ in owners}
    out: dict[Key, int] = {}
    for trace in traces.raw(snapshot):
        size, frames = trace[1], trace[2]
        for filename, lineno in frames:  # innermost first
            if filename not in files:
                if traces.owner(filename) == traces.MEMGUARD:
                    break  # memguard's own bookkeeping, made while a line was traced
                continue
            place = (filename, lineno)
            key = owners.get(place)
            if key is not None:
                if frames[0] == place and size in line_tables.get(place, ()):
                    break
                out[key] = out.get(key, 0) + size
                break
    return out
