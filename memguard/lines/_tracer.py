"""L6 line profiler: the line tracer behind :mod:`memguard.lines.profile`.

How figures are made: a trace function is installed in the thread while
something is being profiled (in C where memguard's native counter measures,
:func:`memguard._counter.settrace`, which passes over calls that are not
the profiler's without running Python; else :func:`sys.settrace`). It gives
a local tracer only to the frames of profiled code. At each ``call``,
``line`` and ``return`` event of those frames it reads the counters (the
current bytes, and the peak since the previous event, after which that peak
restarts: the counter's line peak, or tracemalloc's through
:func:`memguard._tracing.restart_peak` so that open peak windows keep their
peaks) and charges the change since the previous event to the line that was
running:

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

With the counter, the tracer also sets the thread's line tag at each event
(the running line's slot id, unique in the process; 0 while its own
bookkeeping runs; a context id standing for several slots when the frame
runs inside other profiles' lines), so that the counter can say which live
blocks each line allocated (*retained*). A tracer that matches calls (a
:class:`~memguard.lines.LineTarget`'s) sleeps while none of its frames runs:
a profile function in C watches the calls and wakes it.

Cost: every object created while counting is a counted allocation,
so the per-line path creates none that lasts: readings go into a log of
preallocated arrays and the arithmetic is replayed when the profile ends
(see :class:`ThreadTracer`). The tracer's own small allocations around each
event (the frame's locals mapping under :func:`sys.settrace`, argument
tuples) are measured once per process on a probe function and taken out.

A collector's *level* is the running sum of its lines' net changes; its peak
is the highest level reached (inside a line too, from the peak counter), and
the lines' shares of the peak are their net changes up to that moment.

The thread's previous trace function (a debugger, coverage.py) keeps
receiving its events: it is called first for every event (the Python trace
function is used then), and it is put back when the last profile in the
thread ends.
"""

from __future__ import annotations

import dis
import inspect
import itertools
import sys
import threading
import tracemalloc
import weakref
from array import array
from collections.abc import Callable, Iterable, Iterator
from types import CodeType, FrameType
from typing import Any, cast

from .. import _counter, _tracing
from ..values.site import is_internal
from ._statistics import Collector, Key

__all__ = ["Matcher", "ThreadTracer", "TraceFunction", "tracer"]

TraceFunction = Callable[[FrameType, str, Any], Any]
Matcher = Callable[[FrameType], "Collector | None"]

_YIELD_VALUE = dis.opmap["YIELD_VALUE"]
_get_traced_memory = tracemalloc.get_traced_memory


_PROBE_BYTES = sys.getsizeof(bytearray(4096))
# (end_noise, dip) by (measure is the counter, trace function in C), the same
# in every thread
_calibration: dict[tuple[bool, bool], tuple[int, int]] = {}
# Slot ids, unique in the process: with the counter, a slot's id is the tag
# its line's blocks carry for as long as they live, so an id is never reused.
_slot_ids = itertools.count(1)
# Generations of the trace function's filters, unique in the process.
_generations = itertools.count(1)
_MAX_NOISE = 1024
_LOG_SIZE = 4096
_LAST_SLOT = _LOG_SIZE - 1
_MAX_CHUNKS = 256  # about a million events (32 MiB) before the arithmetic is done on the way
_TAIL = -2
_ALSO = -3


def _probe() -> None:
    """Lines of known allocation, traced once per thread to calibrate."""
    nothing = None
    block = bytearray(4096); del block  # noqa: E702
    del nothing


_GENERATOR_LIKE = (inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR
                   | inspect.CO_ITERABLE_COROUTINE)
_bytecode: weakref.WeakKeyDictionary[CodeType, bytes] = weakref.WeakKeyDictionary()


def _is_suspension(frame: FrameType) -> bool:
    """Whether a ``return`` event of *frame* is a ``yield``/``await``, not the end."""
    code = frame.f_code
    if not code.co_flags & _GENERATOR_LIKE:
        return False
    lasti = frame.f_lasti  # a byte offset in Python, 3.10 included
    if lasti < 0:
        return False
    raw = _bytecode.get(code)
    if raw is None:  # co_code builds a new bytes object on every access
        raw = _bytecode[code] = code.co_code
    return raw[lasti] == _YIELD_VALUE


class _Entry:
    """A traced frame on the thread's stack of running traced frames."""

    __slots__ = ("collector", "depth", "exception", "frame", "outers", "root", "slot", "slots",
                 "tags")

    outers: tuple[_Entry, ...]

    def __init__(self, frame: FrameType, collector: Collector, *, depth: int, root: bool,
                 slots: dict[int, int], slot: int, below: _Entry | None) -> None:
        self.frame = frame
        self.collector = collector
        # The running lines of the other profiles this frame runs inside:
        # each is charged too, as a call rolls up into its calling line.
        outers: list[_Entry] = []
        if below is not None:
            seen = {id(collector)}
            for entry in (below, *below.outers):
                if id(entry.collector) not in seen:
                    seen.add(id(entry.collector))
                    outers.append(entry)
        self.outers = tuple(outers)
        self.depth = depth
        self.slots = slots  # line number -> slot id of (collector, line)
        self.slot = slot
        self.exception = False
        self.root = root
        # With the counter and outer profiles: slot -> the tag of its context
        # (made by the tracer when the frame is entered, so that a line event
        # finds it without creating an object).
        self.tags: dict[int, int] | None = None


class ThreadTracer:
    """The trace function of one thread, shared by every profile running in it.

    Events are *logged*, not computed: each reading of the counters goes
    into preallocated arrays, at positions whose index objects exist in
    advance, so that logging creates no object (every object created while
    tracemalloc traces costs a traced allocation, which is what makes a
    profiler slow). The arithmetic is done in :meth:`flush`, once the
    profile ends (after tracing stopped, when memguard owns it).

    Log columns, per entry: ``charge`` (the slot, a (collector, line) pair,
    that the interval ending with this reading is charged to; ``-1`` for a
    reading that only sets the base, after memguard's own bookkeeping),
    ``op`` (a slot whose hit count grows, ``-1``, :data:`_TAIL`, or a
    collector's call beginning or ending), ``current`` and ``peak``.
    """

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
        # Code objects every matcher turned down: their calls are passed over
        # in on_call with one set lookup, so that a LineTarget costs the rest
        # of the program one cheap call event per function call, not a
        # locked claim. Emptied whenever the matchers change.
        self.rejected: set[CodeType] = set()
        self.installed = False
        self.local: TraceFunction = self.on_local  # one bound method, not one per event
        self.table: dict[int, tuple[Collector, Key]] = {}
        # With the counter: a line running inside other profiles' lines tags
        # its blocks with a context, which stands for all of their slots.
        self.contexts: dict[tuple[int, ...], int] = {}
        self.members: dict[int, tuple[int, ...]] = {}
        self.counted = False
        self._want_counted = False
        # What the trace function in C (memguard._native.settrace) reads to
        # pass over, without calling Python, a call that is not ours: the
        # profiled codes and root frames, the rejected codes, and flags (any
        # matcher set; the running traced frame may expand its callees; a
        # generation, 4 bytes, raised by note_change()).
        self._flags = bytearray(6)
        self._filter = (self.by_code, self.roots, self.rejected, self._flags)
        self.c_traced = False
        self.note_change()
        # A tracer that matches calls (a LineTarget's) sleeps while none of
        # its frames runs: a profile function in C watches the calls only,
        # so the rest of the program runs without line tracing at all.
        self.c_dormant = False
        self._line_read: Callable[[], tuple[int, int]] = _get_traced_memory
        self._set_tag: Callable[[int], None] = _no_tag
        self.slot_ids: dict[tuple[int, Key], int] = {}
        self.slot_maps: dict[tuple[int, CodeType], dict[int, int]] = {}
        self.collectors: list[Collector] = []
        self.collector_ids: dict[int, int] = {}
        self._indices: list[int] = []
        self._free: Iterator[int] = iter(())
        self._at = -1
        self._chunks: list[tuple[array[int], array[int], array[int], array[int]]] = []
        self.logging = False
        self._interval_last = 0
        # Held while an event is logged or the log replayed: a LineTarget
        # replays other threads' logs from the thread that detaches it.
        self.mutex = threading.RLock()
        self._charge = self._op = self._current = self._peak = array("q")

    # -- installation -------------------------------------------------------
    def acquire(self) -> None:
        """Install the trace function in this thread (counted)."""
        if not self.installed:
            self.previous = cast("TraceFunction | None", sys.gettrace())
            self.stack.clear()
            self._sync_expand()
            if not self._chunks:
                self._new_chunk()
            # In C where the counter measures and no other trace function
            # is to be chained; the calibration measures the same path.
            self.c_traced = self.counted and self.previous is None and _counter.can_trace()
            self.c_dormant = self.c_traced and bool(self.matchers) and sys.getprofile() is None
            self._calibrate()
            if self.c_dormant:
                _counter.setprofile(self.on_call)
            else:
                self._install()
            self.installed = True
        self.users += 1

    def _install(self) -> None:
        if self.c_traced:
            _counter.settrace(self.on_call)
        else:
            sys.settrace(self.on_call)

    def note_change(self) -> None:
        """The profiled codes, root frames or matchers changed: the trace
        function in C forgets the calls it decided to pass over."""
        self._flags[2:6] = (next(_generations) & 0xFFFFFFFF).to_bytes(4, "little")

    def _sync_expand(self) -> None:
        """Whether the running traced frame's callees must be seen (``expand``)."""
        top = self.stack[-1] if self.stack else None
        self._flags[1] = 1 if top is not None and top.depth < top.collector.expand else 0

    def add_matcher(self, matcher: Matcher) -> None:
        """Also profile the frames *matcher* picks (a :class:`LineTarget`'s)."""
        self.matchers.append(matcher)
        self.rejected.clear()
        self._flags[0] = 1
        self.note_change()

    def remove_matcher(self, matcher: Matcher) -> None:
        """Stop asking *matcher* (if it was asked)."""
        if matcher in self.matchers:
            self.matchers.remove(matcher)
        self.rejected.clear()
        self._flags[0] = 1 if self.matchers else 0
        self.note_change()

    def measure_for(self) -> bool:
        """Whether a profile starting now in this thread measures with the counter.

        A profile starting inside another one's log (a nested profile, a
        LineTarget) measures as that log does; else the counter where it
        can be used.
        """
        return self.counted if self.logging else _counter.available()

    def prepare(self, counted: bool = False) -> None:
        """Make the log's arrays now (before tracing starts, preferably).

        Args:
            counted: Measure with the counter (a count window with
                :func:`memguard._counter.lines_begin` is open), if the log
                starts now.
        """
        self.mutex.acquire()
        try:
            self._want_counted = counted
            if not self._chunks:
                self._new_chunk()
        finally:
            self.mutex.release()

    def release(self) -> None:
        """Undo one :meth:`acquire`; the last one restores the previous tracer.

        The log is kept until :meth:`flush`.
        """
        self.users -= 1
        if self.users <= 0 and self.installed:
            self.users = 0
            self._set_tag(0)
            sys.settrace(self.previous)
            if self.c_dormant:
                sys.setprofile(None)
                self.c_dormant = False
            self.previous = None
            self.installed = False
            self.stack.clear()
            self._sync_expand()
            self.rejected.clear()

    # -- the log ------------------------------------------------------------
    def _new_chunk(self) -> None:
        if not self.logging:  # a new log: the measure is chosen for all of it
            self._choose_measure(self._want_counted)
        if not self._indices:
            self._indices = list(range(_LOG_SIZE))
        zeros = bytes(8 * _LOG_SIZE)
        chunk = (array("q", zeros), array("q", zeros), array("q", zeros), array("q", zeros))
        self._chunks.append(chunk)
        self._charge, self._op, self._current, self._peak = chunk
        self._free = iter(self._indices)
        self._at = -1
        self.logging = True

    def _choose_measure(self, counted: bool) -> None:
        self.counted = counted
        if counted:
            self._line_read = _counter.line_reader()
            self._set_tag = _counter.tagger()
        else:
            self._line_read = _get_traced_memory
            self._set_tag = _no_tag

    def _read(self) -> tuple[int, int]:
        """``(current, peak)`` now, the peak restarted (folded into open windows first)."""
        current, peak = self._line_read()
        if not self.counted:  # the counter's reading restarts its line peak itself
            _tracing.restart_peak(peak)
        return current, peak

    def _rebase(self) -> int:
        if self.counted:
            return self._line_read()[0]
        return _tracing.rebase()

    def pause(self) -> None:
        """memguard's own work begins in this thread (a profile starting or
        ending): what it allocates carries no line's tag. :meth:`resume` ends it."""
        self._set_tag(0)

    def _tag_of(self, entry: _Entry, slot: int | None = None) -> int:
        """The tag of *entry*'s line *slot* (its running line by default): the
        slot, or a context of it and the lines of the profiles it runs inside."""
        if slot is None:
            slot = entry.slot
        if not entry.outers or not self.table[slot][1][1]:
            # line 0 (a fresh frame's set-up under tracing) is tracing's cost,
            # never an outer profile's line's
            return slot
        if entry.tags is None:
            entry.tags = {}
        tag = entry.tags.get(slot)
        if tag is None:
            key = (slot, *(outer.slot for outer in entry.outers))
            tag = self.contexts.get(key)
            if tag is None:
                tag = self.contexts[key] = next(_slot_ids)
                self.members[tag] = key
            entry.tags[slot] = tag
        return tag

    def retained(self, totals: dict[int, int], collectors: Iterable[Collector]) -> dict[Key, int]:
        """Live bytes by line of *collectors*, from the counter's tag totals."""
        wanted = {id(c) for c in collectors}
        out: dict[Key, int] = {}
        for tag, size in totals.items():
            for slot in self.members.get(tag, (tag,)):
                owner = self.table.get(slot)
                if owner is not None and id(owner[0]) in wanted:
                    out[owner[1]] = out.get(owner[1], 0) + size
        return out

    def _log(self, charge: int, op: int, current: int, peak: int) -> None:
        at = next(self._free)
        self._charge[at] = charge
        self._op[at] = op
        self._current[at] = current
        self._peak[at] = peak
        self._at = at
        if at == _LAST_SLOT:
            self._grow()

    def _grow(self) -> None:
        """The chunk is full: start another (or do the arithmetic, past the cap)."""
        self._set_tag(0)
        if len(self._chunks) >= _MAX_CHUNKS:
            self.flush()
        else:
            self._new_chunk()
        self._base()

    def _base(self) -> None:
        """Log a fresh base reading: what came before it was memguard's own work.

        With the counter, the thread's tag is then the running line's again.
        """
        # The tag is found before the reading: the first run of _tag_of under
        # a trace function builds its line table, memguard's own allocation.
        tag = self._tag_of(self.stack[-1]) if self.counted and self.stack else 0
        current = self._rebase()
        self._log(-1, -1, current, current)
        if self.counted:
            self._set_tag(tag)

    def _collector_op(self, collector: Collector, ending: bool) -> int:
        ident = self.collector_ids.get(id(collector))
        if ident is None:
            ident = self.collector_ids[id(collector)] = len(self.collectors)
            self.collectors.append(collector)
        return -10 - 2 * ident - ending

    def flush(self) -> None:
        """Do the arithmetic of every logged event, in order; empty the log."""
        self.mutex.acquire()
        try:
            self._flush_locked()
        finally:
            self.mutex.release()

    def _flush_locked(self) -> None:
        chunks, self._chunks = self._chunks, []
        last_count = self._at + 1
        for number, (charges, ops, currents, peaks) in enumerate(chunks):
            count = last_count if number == len(chunks) - 1 else _LOG_SIZE
            for index in range(count):
                self._replay(charges[index], ops[index], currents[index], peaks[index])
        if self.installed:
            self._new_chunk()
            self.last = self._rebase()
        else:
            self._at = -1
            self.logging = False
            self._charge = self._op = self._current = self._peak = array("q")
            self.table.clear()
            self.contexts.clear()
            self.members.clear()
            self.slot_ids.clear()
            self.slot_maps.clear()
            self.collectors.clear()
            self.collector_ids.clear()

    def _replay(self, charge: int, op: int, current: int, peak: int) -> None:
        if op == _ALSO:  # the interval just replayed, for an enclosing profile
            last = self._interval_last
        else:
            last = self.last
            self.last = current
            if charge >= 0:
                self._interval_last = last
        if charge >= 0:
            collector, key = self.table[charge]
            delta = current - last
            if op == _TAIL:  # a teardown only frees; what it allocated is memguard's
                collector.charge(key, min(delta, 0), 0)
                return
            if self.raw is not None:
                self.raw.append((delta, peak - last, peak - current))
            else:
                rise = peak - last
                if peak - current > self.end_noise and rise > self.end_noise:
                    # The line's peak was inside it, above both of its ends.
                    excursion = max(rise + self.dip, delta)
                else:
                    excursion = delta if delta > 0 else 0
                collector.charge(key, delta, excursion)
        self._apply(op)

    def _apply(self, op: int) -> None:
        """After an interval's charge: count a line's run, or a call's start or end."""
        if op >= 0:
            collector, key = self.table[op]
            collector.records[key][2] += 1
        elif op <= -10:
            code = -10 - op
            target = self.collectors[code >> 1]
            if code & 1:
                target.end_call()
            else:
                target.begin_call()

    # -- calibration --------------------------------------------------------
    def _calibrate(self) -> None:
        """Measure what the tracing machinery itself adds around a line.

        Calling a Python trace function allocates a little (the frame's
        locals mapping is synchronised, arguments are packed) just before the
        counters are read, and frees part of it after the peak counter has
        restarted. Two constants describe it, measured once per process on a
        probe function whose lines allocate known sizes: ``end_noise``, the
        peak above the end level of a line that allocates nothing, and
        ``dip``, how far the level at the restart is above the level the
        line's code starts from.
        """
        known = _calibration.get((self.counted, self.c_traced))
        if known is not None:
            self.end_noise, self.dip = known
            self._base()
            return
        raw: list[tuple[int, int, int]] = []
        probe = Collector()
        self.by_code[_probe.__code__] = [probe]
        self.note_change()
        previous = cast("TraceFunction | None", sys.gettrace())
        self._base()
        self._install()
        try:
            _probe()  # the first run of a code object under tracing allocates caches
            _probe()
        finally:
            sys.settrace(previous)
            del self.by_code[_probe.__code__]
            self.note_change()
        self.stack.clear()
        self._sync_expand()
        self.raw = raw
        try:
            self.flush()
        finally:
            self.raw = None
        # raw, per run: the call interval, the empty line, the transient
        # line, the last line. Inside another trace function (a new thread's
        # first event) nothing is traced and the constants stay 0.
        if len(raw) >= 8:
            end_noise = raw[5][2]
            dip = _PROBE_BYTES - raw[6][1]
            if 0 <= end_noise <= _MAX_NOISE and -_MAX_NOISE <= dip <= _MAX_NOISE:
                self.end_noise, self.dip = (end_noise, dip)
                _calibration[(self.counted, self.c_traced)] = (end_noise, dip)
        if not self._chunks:
            self._new_chunk()
        self._base()

    # -- events -------------------------------------------------------------
    def _slots_for(self, collector: Collector, code: CodeType) -> dict[int, int]:
        """Line number -> slot id of each line of *code* in *collector*."""
        slots = self.slot_maps.get((id(collector), code))
        if slots is None:
            slots = self.slot_maps[(id(collector), code)] = {}
            for line in collector.prepare(code):
                slots[line] = self._new_slot(collector, code, line)
        return slots

    def _new_slot(self, collector: Collector, code: CodeType, line: int) -> int:
        key = collector.keys.setdefault(code, {}).setdefault(line, (code, line))
        collector.record(key)
        ident = self.slot_ids.get((id(collector), key))
        if ident is None:
            ident = self.slot_ids[(id(collector), key)] = next(_slot_ids)
            self.table[ident] = (collector, key)
        return ident

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
        if self.matchers:
            self.rejected.add(code)
        if self.stack:
            top = self.stack[-1]
            if (top.depth < top.collector.expand and frame.f_back is top.frame
                    and not is_internal(code.co_filename)):
                return top.collector, top.depth + 1, False
        return None

    def on_call(self, frame: FrameType, event: str, arg: Any) -> TraceFunction | None:
        """The global trace function: picks the frames to trace."""
        theirs = self.previous(frame, event, arg) if self.previous is not None else None
        stack = self.stack
        code = frame.f_code
        if ((not self.matchers or code in self.rejected) and code not in self.by_code
                and frame not in self.roots
                and (not stack or stack[-1].depth >= stack[-1].collector.expand)):
            return theirs  # the common case, decided without a call: not ours
        self.mutex.acquire()
        try:
            if not self.logging:
                return theirs  # still set in a thread whose LineTarget was detached
            return self._on_call(frame, theirs)
        finally:
            self.mutex.release()

    def _on_call(self, frame: FrameType, theirs: TraceFunction | None) -> TraceFunction | None:
        claim = self._claim(frame)
        if claim is None:
            return theirs
        current, peak = self._read()
        self._set_tag(0)  # the bookkeeping below is memguard's
        collector, depth, root = claim
        fresh = not _is_suspension(frame)
        op = -1
        if fresh and root:
            if not collector.open_frames:
                op = self._collector_op(collector, False)
            collector.open_frames.add(frame)
        if self.stack:
            below = self.stack[-1]
            self._log(below.slot, op, current, peak)
            for outer in below.outers:
                self._log(outer.slot, _ALSO, current, peak)
        else:
            self._log(-1, op, current, peak)
        code = frame.f_code
        slots = self._slots_for(collector, code)
        if fresh:
            collector.entries[code] = collector.entries.get(code, 0) + 1
        # Until its first line runs, a fresh frame does only what tracing it
        # costs (CPython builds the code's line table, the frame's locals
        # mapping): that is charged to line 0, which reports leave out.
        line = 0 if fresh else frame.f_lineno
        slot = slots.get(line)
        if slot is None:
            slot = slots[line] = self._new_slot(collector, code, line)
        entry = _Entry(frame, collector, depth=depth, root=root, slot=slot, slots=slots,
                       below=self.stack[-1] if self.stack else None)
        if self.counted and entry.outers:
            for line_slot in slots.values():
                self._tag_of(entry, line_slot)
        self.stack.append(entry)
        self._sync_expand()
        local = self.local if theirs is None else _chain(self.local, theirs)
        if self.c_dormant and sys.gettrace() is None:
            # Asleep, and called by something other than the profile function
            # (a new thread's first call, through threading.settrace's hook):
            # the frame's lines need the trace function.
            _counter.settrace(self.on_call)
        self._base()
        return local

    def on_local(self, frame: FrameType, event: str, arg: Any) -> TraceFunction | None:
        """The local trace function of a traced frame."""
        self.mutex.acquire()
        try:
            if not self.logging:
                return None
            return self._on_local(frame, event)
        finally:
            self.mutex.release()

    def _on_local(self, frame: FrameType, event: str) -> TraceFunction | None:
        stack = self.stack
        if not stack or stack[-1].frame is not frame:
            if not any(entry.frame is frame for entry in stack):
                return None  # a frame left over from an earlier profile
            while stack[-1].frame is not frame:
                stack.pop()  # frames whose return was never reported
            self._sync_expand()
        if event == "line":
            # The hot path: one reading, logged without creating an object.
            counted = self.counted
            current, peak = self._line_read()
            top = stack[-1]
            slot = top.slots.get(frame.f_lineno)
            if slot is None:  # not a line of the code's table: rare, allocates
                self._new_line(top, frame, current, peak)
                return self.local
            at = next(self._free)
            self._charge[at] = top.slot
            self._op[at] = slot
            self._current[at] = current
            self._peak[at] = peak
            self._at = at
            top.slot = slot
            top.exception = False
            if at == _LAST_SLOT:
                if not counted:
                    _tracing.restart_peak(peak)
                self._grow()
            elif counted:
                self._set_tag(slot if top.tags is None else self._context_tag(top, slot))
            else:
                _tracing.restart_peak(peak)
            for outer in top.outers:
                self._log(outer.slot, _ALSO, current, peak)
        elif event == "return":
            self._on_return(frame)
        elif event == "exception":
            stack[-1].exception = True
        return self.local

    def _new_line(self, top: _Entry, frame: FrameType, current: int, peak: int) -> None:
        """A line event on a line that is not in the code's line table."""
        self._set_tag(0)
        slot = top.slots[frame.f_lineno] = self._new_slot(top.collector, frame.f_code,
                                                          frame.f_lineno)
        self._log(top.slot, slot, current, peak)
        for outer in top.outers:
            self._log(outer.slot, _ALSO, current, peak)
        top.slot = slot
        self._base()

    def _context_tag(self, top: _Entry, slot: int) -> int:
        """The tag of line *slot* of a frame running inside other profiles' lines."""
        tag = top.tags.get(slot) if top.tags is not None else None
        if tag is None:  # a line first run by another call of the code
            self._set_tag(0)
            tag = self._tag_of(top, slot)
        return tag

    def _on_return(self, frame: FrameType) -> None:
        current, peak = self._read()
        self._set_tag(0)
        top = self.stack.pop()
        self._sync_expand()
        op = -1
        if top.root and (top.exception or not _is_suspension(frame)):
            collector = top.collector
            collector.tail_slot = top.slot
            if frame in collector.open_frames:
                collector.open_frames.discard(frame)
                if not collector.open_frames:
                    op = self._collector_op(collector, True)
        self._log(top.slot, op, current, peak)
        for outer in top.outers:
            self._log(outer.slot, _ALSO, current, peak)
        self._base()
        if self.c_dormant and not self.stack and sys.gettrace() == self.on_call:
            # asleep until the profile function sees a call of ours (a trace
            # function someone set meanwhile is theirs, and stays)
            sys.settrace(None)

    def resume(self) -> None:
        """After memguard's own work in a traced line (an inner profile ending,
        printing its table): start the line's next interval here."""
        self.mutex.acquire()
        try:
            if self.logging and self.installed:
                self._base()
        finally:
            self.mutex.release()

    def charge_tail(self, collector: Collector) -> None:
        """Charge what happened since the last event (the frame's teardown,
        freeing its locals) to the line the collector's last call returned from."""
        slot = collector.tail_slot
        collector.tail_slot = None
        if slot is None or self.stack or not self.installed:
            return
        current, peak = self._read()
        self._log(slot, _TAIL, current, peak)
        self._base()


def _no_tag(_tag: int) -> None:
    """Tags are the counter's: under tracemalloc, tracebacks name the lines."""


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
