"""L4 guards: the line tracer behind :mod:`memguard.guards.profile`.

How figures are made: a trace function (:func:`sys.settrace`) is installed
in the thread while something is being profiled. It gives a local tracer
only to the frames of profiled code. At each ``call``, ``line`` and
``return`` event of those frames it reads tracemalloc's counters through
:func:`memguard._tracing.step` (current traced bytes, and the peak since the
previous event, after which the peak counter restarts) and charges the
change since the previous event to the line that was running:

* the line's *net* change (``current - previous``) and its *allocation*
  (``peak - previous``: the highest point the line reached, so a temporary
  freed within the line still counts);
* everything a line calls, if the callee is not itself traced, rolls up into
  the line, since no event fires until the line ends;
* a traced frame entered from a line (recursion, or a callee expanded with
  ``expand``) takes the charge while it runs, so every byte is charged once,
  to the innermost traced line (figures are exclusive);
* time outside traced frames (a generator or coroutine suspended at
  ``yield``/``await``) is charged to nobody.

A collector's *level* is the running sum of its lines' net changes; its peak
is the highest level reached (inside a line too, from the peak counter), and
the lines' shares of the peak are their net changes up to that moment.

The thread's previous trace function (a debugger, coverage.py) keeps
receiving its events: it is called first for every event, and it is put
back when the last profile in the thread ends.
"""

from __future__ import annotations

import dis
import os
import sys
import threading
import tracemalloc
from collections.abc import Callable, Iterable
from types import CodeType, FrameType
from typing import Any, cast

from .. import _tracing
from ..values.site import is_internal

__all__ = ["Collector", "Matcher", "ThreadTracer", "attribute_traces", "code_lines", "tracer"]

TraceFunction = Callable[[FrameType, str, Any], Any]
Key = tuple[CodeType, int]
Matcher = Callable[[FrameType], "Collector | None"]

_YIELD_VALUE = dis.opmap["YIELD_VALUE"]
_OWN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


_PROBE_BYTES = sys.getsizeof(bytearray(4096))
_calibration: tuple[int, int] | None = None  # (end_noise, dip), the same in every thread
_MAX_NOISE = 1024


def _probe() -> None:
    """Lines of known allocation, traced once per thread to calibrate."""
    nothing = None
    block = bytearray(4096); del block  # noqa: E702
    del nothing


def _is_suspension(frame: FrameType) -> bool:
    """Whether a ``return`` event of *frame* is a ``yield``/``await``, not the end."""
    lasti = frame.f_lasti
    return lasti >= 0 and frame.f_code.co_code[lasti] == _YIELD_VALUE


class Collector:
    """Per-line figures of one profile: its root code and expanded callees."""

    def __init__(self, *, expand: int = 0) -> None:
        self.expand = expand
        self.records: dict[Key, list[int]] = {}  # key -> [allocated, net, hits]
        self.codes: dict[CodeType, None] = {}
        self.level = 0
        self.calls = 0
        self.peak = 0
        self.peak_shares: dict[Key, int] = {}
        self.entries: dict[CodeType, int] = {}
        self._have_peak = False
        self.tail_key: Key | None = None
        self.open_frames: set[FrameType] = set()
        self._call_start: dict[Key, int] = {}
        self._call_base = 0
        self._call_peak = 0
        self._call_shares: dict[Key, int] = {}
        self._pending: tuple[Key, int] | None = None

    def record(self, key: Key) -> list[int]:
        """The figures of *key*, created on first use."""
        rec = self.records.get(key)
        if rec is None:
            rec = self.records[key] = [0, 0, 0]
            self.codes.setdefault(key[0])
        return rec

    def charge(self, key: Key, delta: int, excursion: int) -> None:
        """Charge a change of the traced heap to the line *key*."""
        if not key[1]:
            return  # line 0: the cost of tracing a fresh frame, left out everywhere
        rec = self.records.get(key) or self.record(key)
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

    def hit(self, key: Key) -> None:
        """Count one run of the line *key*."""
        (self.records.get(key) or self.record(key))[2] += 1


class _Entry:
    """A traced frame on the thread's stack of running traced frames."""

    __slots__ = ("collector", "depth", "exception", "frame", "key", "root")

    def __init__(self, frame: FrameType, collector: Collector, depth: int, root: bool) -> None:
        self.frame = frame
        self.collector = collector
        self.depth = depth
        self.key: Key = (frame.f_code, frame.f_lineno)
        self.exception = False
        self.root = root


class ThreadTracer:
    """The trace function of one thread, shared by every profile running in it."""

    def __init__(self) -> None:
        self.users = 0
        self.previous: TraceFunction | None = None
        self.stack: list[_Entry] = []
        self.last = 0
        self.end_noise = 0
        self.dip = 0
        self.raw: list[tuple[int, int, int]] | None = None
        self.roots: dict[FrameType, Collector] = {}
        self.by_code: dict[CodeType, list[Collector]] = {}
        self.matchers: list[Matcher] = []
        self.installed = False
        self.local: TraceFunction = self.on_local  # one bound method, not one per event

    # -- installation -------------------------------------------------------
    def acquire(self) -> None:
        """Install the trace function in this thread (counted)."""
        self.users += 1
        if not self.installed:
            self.previous = cast("TraceFunction | None", sys.gettrace())
            self.stack.clear()
            self._calibrate()
            sys.settrace(self.on_call)
            self.installed = True

    def release(self) -> None:
        """Undo one :meth:`acquire`; the last one restores the previous tracer."""
        self.users -= 1
        if self.users <= 0 and self.installed:
            self.users = 0
            sys.settrace(self.previous)
            self.previous = None
            self.installed = False
            self.stack.clear()

    # -- events -------------------------------------------------------------
    def _calibrate(self) -> None:
        """Measure what the tracing machinery itself adds around a line.

        Calling a Python trace function allocates a little (the frame's
        locals mapping is synchronised, arguments are packed) just before the
        counters are read, and frees part of it after the peak counter has
        restarted. Two constants describe it, measured once per thread on a
        probe function whose lines allocate known sizes: ``end_noise``, the
        peak above the end level of a line that allocates nothing, and
        ``dip``, how far the level at the restart is above the level the
        line's code starts from.
        """
        global _calibration
        if _calibration is not None:
            self.end_noise, self.dip = _calibration
            self.last = _tracing.rebase()
            return
        self.last = _tracing.rebase()
        raw: list[tuple[int, int, int]] = []
        self.raw = raw
        probe = Collector()
        self.by_code[_probe.__code__] = [probe]
        previous = cast("TraceFunction | None", sys.gettrace())
        sys.settrace(self.on_call)
        try:
            _probe()  # the first run of a code object under tracing allocates caches
            raw.clear()
            _probe()
        finally:
            sys.settrace(previous)
            del self.by_code[_probe.__code__]
            self.raw = None
        self.stack.clear()
        # raw: the call interval, the empty line, the transient line. Inside
        # another trace function (a new thread's first event) nothing is
        # traced: the probe then yields nothing and the constants stay 0.
        if len(raw) >= 3:
            end_noise = raw[1][2]
            dip = _PROBE_BYTES - raw[2][1]
            if 0 <= end_noise <= _MAX_NOISE and -_MAX_NOISE <= dip <= _MAX_NOISE:
                self.end_noise, self.dip = _calibration = (end_noise, dip)
        self.last = _tracing.rebase()

    def _charge(self) -> None:
        current, peak = _tracing.refresh()
        last = self.last
        if self.stack:
            delta = current - last
            if self.raw is not None:
                self.raw.append((delta, peak - last, peak - current))
                return
            if peak - current > self.end_noise and peak - last > self.end_noise:
                # The line's peak was inside it, above both of its ends.
                excursion = peak - last + self.dip
                excursion = max(excursion, delta)
            else:
                excursion = delta if delta > 0 else 0
            top = self.stack[-1]
            top.collector.charge(top.key, delta, excursion)

    def _claim(self, frame: FrameType) -> tuple[Collector, int, bool] | None:
        collector = self.roots.get(frame)
        if collector is not None:
            return collector, 0, True
        code = frame.f_code
        owners = self.by_code.get(code)
        if owners:
            return owners[-1], 0, True
        for matcher in self.matchers:
            matched = matcher(frame)
            if matched is not None:
                return matched, 0, True
        if self.stack:
            top = self.stack[-1]
            if (top.depth < top.collector.expand and frame.f_back is top.frame
                    and not is_internal(code.co_filename)):
                return top.collector, top.depth + 1, False
        return None

    def on_call(self, frame: FrameType, event: str, arg: Any) -> TraceFunction | None:
        """The global trace function: picks the frames to trace."""
        theirs = self.previous(frame, event, arg) if self.previous is not None else None
        claim = self._claim(frame)
        if claim is None:
            return theirs
        collector, depth, root = claim
        self._charge()
        entry = _Entry(frame, collector, depth, root)
        if not _is_suspension(frame):
            code = frame.f_code
            # Until its first line runs, a fresh frame does only what tracing
            # it costs (CPython builds the code's line table, the frame's
            # locals mapping): charged to line 0, which reports leave out.
            entry.key = (code, 0)
            collector.entries[code] = collector.entries.get(code, 0) + 1
            if root:
                if not collector.open_frames:
                    collector.begin_call()
                collector.open_frames.add(frame)
        self.stack.append(entry)
        local = self.local if theirs is None else _chain(self.local, theirs)
        # Everything since the reading is memguard's own bookkeeping: drop it.
        self.last = _tracing.rebase()
        return local

    def on_local(self, frame: FrameType, event: str, arg: Any) -> TraceFunction | None:
        """The local trace function of a traced frame."""
        stack = self.stack
        if not stack or stack[-1].frame is not frame:
            if not any(entry.frame is frame for entry in stack):
                return None  # a frame left over from an earlier profile
            while stack[-1].frame is not frame:
                stack.pop()  # frames whose return was never reported
        if event == "line":
            self._charge()
            top = stack[-1]
            top.key = key = (frame.f_code, frame.f_lineno)
            top.exception = False
            top.collector.hit(key)
            self.last = _tracing.rebase()
        elif event == "return":
            self._charge()
            top = stack.pop()
            if top.root and (top.exception or not _is_suspension(frame)):
                top.collector.tail_key = top.key
                self._finish_frame(top.collector, frame)
            self.last = _tracing.rebase()
        elif event == "exception":
            stack[-1].exception = True
        return self.local

    def charge_tail(self, collector: Collector) -> None:
        """Charge what happened since the last event (the frame's teardown,
        freeing its locals) to the line the collector's last call returned from."""
        key = collector.tail_key
        collector.tail_key = None
        if key is None or self.stack:
            return
        current = _tracing.refresh()[0]
        delta = current - self.last
        # A teardown only frees; anything allocated since is memguard's own.
        collector.charge(key, min(delta, 0), 0)
        self.last = _tracing.rebase()

    def _finish_frame(self, collector: Collector, frame: FrameType) -> None:
        if frame in collector.open_frames:
            collector.open_frames.discard(frame)
            if not collector.open_frames:
                collector.end_call()


def _chain(ours: TraceFunction, theirs: TraceFunction) -> TraceFunction:
    """A local tracer that calls another tool's local tracer, then ours."""
    current: TraceFunction | None = theirs

    def local(frame: FrameType, event: str, arg: Any) -> TraceFunction:
        nonlocal current
        if current is not None:
            current = current(frame, event, arg)
        ours(frame, event, arg)
        return local

    return local


_local = threading.local()


def tracer() -> ThreadTracer:
    """This thread's tracer (created on first use)."""
    found: ThreadTracer | None = getattr(_local, "tracer", None)
    if found is None:
        found = _local.tracer = ThreadTracer()
    return found


def code_lines(code: CodeType) -> set[int]:
    """The line numbers that *code*'s own instructions are on."""
    return {line for _, _, line in code.co_lines() if line is not None}


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
        for line in code_lines(code):
            owners.setdefault((code.co_filename, line), (code, line))
        size = len(code.co_code)
        line_tables[(code.co_filename, code.co_firstlineno)] = (size, 2 * size)
    files = {filename for filename, _ in owners}
    out: dict[Key, int] = {}
    for trace in snapshot.traces:
        frames = tuple(trace.traceback)
        for frame in reversed(frames):  # innermost first
            if frame.filename.startswith(_OWN_DIR):
                break  # memguard's own bookkeeping, made while a line was traced
            if frame.filename in files:
                place = (frame.filename, frame.lineno)
                key = owners.get(place)
                if key is not None:
                    if frame is frames[-1] and trace.size in line_tables.get(place, ()):
                        break
                    out[key] = out.get(key, 0) + trace.size
                    break
    return out
