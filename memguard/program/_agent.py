"""L7 program runner: the agent that runs a program for ``memguard run`` in a fresh interpreter.

``memguard run`` starts ``python .../memguard/program/_agent.py SPEC``: a new
interpreter whose only import beyond what ``python`` itself loads at start-up
is this file's, and this file imports nothing but modules built into the
interpreter (``_tracemalloc``, ``_thread``, ``_signal``, ``gc``, ``marshal``,
``posix``, ...) until the program has ended. So the program's own imports
cost what they cost under ``python -X tracemalloc``: no module is already
there because memguard needed it, and no name is already interned because
memguard's copy of a module made it.

While the program runs, the agent (see :class:`Agent`):

* samples the traced level, the peak and (``--rss``) the resident memory on
  a thread of its own (:mod:`_thread`, not :mod:`threading`), reading them
  without making a container the collector counts, into arrays reserved
  before tracing began;
* copies the live traces at each new high worth a copy (the policy of
  :class:`memguard.guards._catcher.TraceCatcher`), summed by traceback into
  a file: in a forked copy of the process, which the program waits for,
  where the native counter is built, else in the main thread between two
  bytecodes (see :meth:`Agent._capture`);
* turns SIGTERM into :class:`Terminated` in the program, as Ctrl-C raises
  :class:`KeyboardInterrupt`, and holds both once the program has ended.

When the program has ended, it reads the end level, counts the objects
(the list of them is kept), copies the final traces, stops its trace, and
only then imports memguard (:mod:`memguard.program.child`), which builds the
report from what was kept and writes it for the parent process
(:mod:`memguard.program.spawn`).

Not a module of the package to import: it is run by path.
"""

import _operator
import _signal  # type: ignore[import-not-found]  # (no stub: signal's, without enum)
import _thread
import _tracemalloc
import atexit
import gc
import itertools
import marshal
import os
import posix
import sys
import time

TYPE_CHECKING = False  # typing is a module to import: not here
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import CodeType

_HERE = os.path.realpath(__file__)
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(_HERE)))
# The run's copy policy, one for both ways of running a program (memguard.program.measure
# takes them from here): copies from 256 KiB above the start, each CAPTURE_GROWTH
# times the last (memguard.values.limit's, which a test holds equal), the time
# spent copying kept to a fifth of the run; a peak is noted when it moves 1% or 64 KiB.
CAPTURE_FLOOR = 256 * 1024
CAPTURE_GROWTH = 1.10
CAPTURE_BUDGET = 4.0
_DOUBLED = 2.0
PEAK_NOISE = 64 * 1024
STATUS_EVERY = 0.2
"""Seconds between two status lines (also memguard.program.child.StatusLine's)."""
_RESERVE = 4096
_CAPTURE_SIGNAL = getattr(_signal, "SIGRTMAX", 0)
"""The signal number whose handler :func:`_thread.interrupt_main` calls for a copy.

No signal is sent: ``interrupt_main`` only runs the handler in the main
thread, as if the signal had arrived."""
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")
_BYTES_HEADER = sys.getsizeof(b"")


class Terminated(BaseException):
    """Raised in the program by SIGTERM, as Ctrl-C raises :class:`KeyboardInterrupt`.

    A :class:`BaseException`, like :class:`KeyboardInterrupt`, so that a
    program's ``except Exception`` does not swallow it. (The one class:
    :mod:`memguard.program.interrupts` raises it too.)

    Attributes:
        signum: The signal's number.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"terminated by {_signal_name(signum)}")


def _summed(level: int, now: float) -> bytes:
    """``(level, seconds, {traceback: [bytes, blocks]})`` of the live traces, marshalled."""
    traces = _tracemalloc._get_traces()
    sums: dict[object, list[int]] = {}
    get = sums.get
    for trace in traces:
        entry = get(trace[2])
        if entry is None:
            sums[trace[2]] = [trace[1], 1]
        else:
            entry[0] += trace[1]
            entry[1] += 1
    del traces
    return marshal.dumps((level, now, sums))


def stopped_by(received: int, held: bool, exit_code: int) -> int:
    """The signal that stopped a run (0: none): one received after the program
    ended (*held*), or one the program ended by (exit code ``128 + signal``).

    A program that caught the signal and ended as it chose was not stopped by it.

    Example:
        >>> stopped_by(2, False, 130), stopped_by(2, False, 0), stopped_by(15, True, 0)
        (2, 0, 15)
    """
    return received if received and (held or exit_code == 128 + received) else 0


def _signal_name(signum: int) -> str:
    return {2: "SIGINT", 15: "SIGTERM"}.get(signum, f"signal {signum}")


def _quiet(index: int) -> "zip[tuple[object, object, int, object]]":
    """An endless reader of tracemalloc's level (0) or peak (1) that makes no container.

    The same chain as :func:`memguard._watcher.traced_level` (which this
    file cannot import): each ``next()`` runs in C from start to end, with
    the collector off while tracemalloc's tuple exists.
    """
    stop = object()
    state = [True]
    remember = map(_operator.setitem, itertools.repeat(state), itertools.repeat(0),
                   iter(gc.isenabled, stop))
    switch_off = iter(gc.disable, stop)
    level = map(_operator.getitem, iter(_tracemalloc.get_traced_memory, stop),
                itertools.repeat(index))
    back = {True: iter(gc.enable, stop), False: iter(gc.isenabled, stop)}
    restore = map(next, map(_operator.getitem, itertools.repeat(back),
                            map(_operator.getitem, itertools.repeat(state), itertools.repeat(0))))
    return zip(remember, switch_off, level, restore, strict=False)  # all endless


def status_text(seconds: float, level: int, peak: int, rss: int | None) -> str:
    """The status line's text (also :class:`memguard.program.child.StatusLine`'s).

    Example:
        >>> status_text(1.0, 2048, 4096, None)
        'memguard:    1.0 s  current 2.0 KiB  peak 4.0 KiB'
    """
    text = f"memguard: {seconds:6.1f} s  current {_size(level)}  peak {_size(peak)}"
    return text if rss is None else f"{text}  rss {_size(rss)}"


def _size(count: int) -> str:
    """``3.4 MiB``: a status-line size (memguard.units cannot be imported here)."""
    value = float(count)
    unit = 0
    while value >= 1024 and unit < 4:
        value /= 1024
        unit += 1
    return f"{count} B" if unit == 0 else f"{value:.1f} {_UNITS[unit]}"


def _number_after(text: bytes, start: int) -> int:
    """The decimal number at or after *start* in *text* (no ``int()``: its tuple)."""
    index, end = start, len(text)
    while index < end and not 48 <= text[index] <= 57:
        index += 1
    value = 0
    while index < end and 48 <= text[index] <= 57:
        value = value * 10 + text[index] - 48
        index += 1
    return value


class Agent:
    """The program's run: its samples, its copies at the peak, its end."""

    def __init__(self, spec: dict) -> None:  # type: ignore[type-arg]
        self.spec = spec
        self.target: str = spec["target"]
        self.module: bool = spec["module"]
        self.interval: float = spec["interval"]
        self.want_rss: bool = spec["rss"]
        self.want_sites: bool = spec["sites"]
        self.status: bool = spec["status"]
        self.folder: str = spec["folder"]
        self.parent: int = spec["parent"]
        self.notice: str = spec["notice"]
        self.pid = posix.getpid()
        self.received = 0
        """The first SIGINT or SIGTERM, while the program ran or after."""
        self.held = False
        """Whether a signal came after the program had ended (then held)."""
        self.holding = False
        self.running = True
        self.done = _thread.allocate_lock()
        self.statm = -1
        self.page = posix.sysconf("SC_PAGE_SIZE")
        self.rss_start = -1
        self.rss_absent = ""
        self.hwm = False
        self.capacity = _RESERVE
        self.count = 0
        self.times = memoryview(bytearray(8 * _RESERVE)).cast("d")
        self.traced = memoryview(bytearray(8 * _RESERVE)).cast("q")
        self.rss = memoryview(bytearray(8 * _RESERVE)).cast("q")
        self.levels = _quiet(0)
        self.peaks = _quiet(1)
        self.started_tracing = False
        self.start = 0
        self.peak_total = 0
        self.noted_peak = 0
        self.peak_seconds = 0.0
        self.started = 0.0
        self.started_at = 0.0
        self.last_status = -1.0
        self.status_shown = False
        self._init_copies()

    def _init_copies(self) -> None:
        """The state of the copies of the sites (see :meth:`_capture`)."""
        self.capture_level = 0
        self.capture_next = 0.0
        self.wanted = False
        self.can_capture = False
        self.copies = 0
        """Copies of the sites made so far (``sites.0``, ``sites.1``, ...)."""
        self.copiers = [0] * 1024
        """The pids of forked copies not waited for (a signal came while waiting)."""
        self.forked = 0
        self.on_capture = self._on_capture
        self.on_trigger = self._on_trigger
        self.native: object = None
        """memguard's native counter, when built: it says when a new high is made."""

    # -- the run -------------------------------------------------------------

    def run(self) -> dict:  # type: ignore[type-arg]
        """Run the program; return what the report is built from (tracing stopped)."""
        code, run_module = self._prepare()
        self._open_rss()
        _signal.signal(_signal.SIGTERM, self._raise)
        _signal.signal(_signal.SIGINT, self._raise)
        if self.want_sites and _CAPTURE_SIGNAL:
            _signal.signal(_CAPTURE_SIGNAL, self.on_capture)
            self.can_capture = True
        self._begin()
        failure: BaseException | None = None
        exit_code = 0
        try:
            if run_module is not None:
                # python -m runs the module, python DIR (or ARCHIVE) its __main__
                run_module(self.target if self.module else "__main__", self.module)
            elif code is not None:
                exec(code, sys.modules["__main__"].__dict__)
        except SystemExit as stop:
            exit_code = exit_code_of(stop.code)
        except BaseException as error:  # the program's own failure, shown as python would
            failure = error
        finally:
            self._hold()
        if posix.getpid() != self.pid:
            # A copy of the program made by os.fork() ran to its end: the
            # measuring is the original's (this copy has no sampler).
            raise SystemExit(failed(failure, _hidden, _hidden)[0] if failure is not None
                             else exit_code)
        duration = time.perf_counter() - self.started
        self._stop_sampling()
        message = None
        if failure is not None:
            exit_code, message = failed(failure, _hidden, _hidden)
            failure = None
        self.received = stopped_by(self.received, self.held, exit_code)
        if self.received:
            _say(f"memguard: {_signal_name(self.received)} received: {self.notice}\n")
        _flush()
        return self._end(exit_code, message, duration)

    def _prepare(self) -> "tuple[CodeType | None, Callable[[str, bool], object] | None]":
        """``sys.argv``, ``sys.path[0]`` and ``__main__`` as python sets them; the code to run.

        Returns:
            The script's compiled code, or (a module, a directory or an
            archive) runpy's way of running a module as ``__main__``.
        """
        run_module = None
        if self.module or not _is_file(self.target):
            import runpy  # as python -m and python DIR do, before the program

            run_module = runpy._run_module_as_main  # type: ignore[attr-defined]
        sys.argv = [self.target, *self.spec["args"]]
        if run_module is not None and not self.module:
            sys.path.insert(0, self.target)  # a directory or archive with __main__.py
        elif not getattr(sys.flags, "safe_path", False):
            sys.path.insert(0, posix.getcwd() if self.module
                            else os.path.dirname(os.path.realpath(self.target)))
        # A __main__ of the program's own, as python starts it: this file's
        # module (its globals) is not the program's to see or overwrite.
        main_module = type(sys)("__main__")
        main_module.__annotations__ = {}
        main_module.__builtins__ = __builtins__  # type: ignore[attr-defined]
        if run_module is not None:
            main_module.__loader__ = sys.modules["_frozen_importlib"].BuiltinImporter
            sys.modules["__main__"] = main_module
            return None, run_module  # runpy fills in the rest, as under python -m
        path = os.path.abspath(self.target)  # as python makes it (3.9+), argv[0] aside
        with open(path, "rb") as source_file:
            source = source_file.read()
        code = compile(source, path, "exec", dont_inherit=True)
        main_module.__file__ = path
        main_module.__cached__ = None  # type: ignore[attr-defined]
        loader = sys.modules["_frozen_importlib_external"].SourceFileLoader
        main_module.__loader__ = loader("__main__", path)
        sys.modules["__main__"] = main_module
        return code, None

    def _begin(self) -> None:
        """Start tracing, the sampler and the counter's trigger; then the program's start."""
        if self.want_sites:  # loaded before tracing: its module is not the program's
            self.native = _load_counter()
        if not _tracemalloc.is_tracing():
            _tracemalloc.start(1)
            self.started_tracing = True
        self.started_at = time.time()
        self.started = time.perf_counter()
        # The sampler's thread state is part of the start, not of the program
        # (its first sample comes an interval later).
        self.done.acquire()
        _thread.start_new_thread(self._loop, ())
        self.start = _tracemalloc.get_traced_memory()[0]
        _tracemalloc.reset_peak()
        self.peak_total = self.noted_peak = self.start
        if self.native is not None:
            # Its allocator hook sees each new high as it is made, and has the
            # main thread copy the sites as soon after as the interpreter allows.
            self.native.begin()  # type: ignore[attr-defined]
            count = self.native.reset_peak()  # type: ignore[attr-defined]
            self.native.set_capture(count + CAPTURE_FLOOR, CAPTURE_GROWTH,  # type: ignore[attr-defined]
                                    self.on_trigger)
            self.can_capture = False
        self._sample()

    def _end(self, exit_code: int, error: str | None,
             duration: float) -> dict:  # type: ignore[type-arg]
        """What the report is built from; the program's ``__main__`` stays in
        :data:`sys.modules`, as under python, so what it holds is measured."""
        tracing = _tracemalloc.is_tracing()
        end = start_level = self.start
        tracked: list[object] | None = None
        traces: object = None
        limit = 1
        if self.native is not None:
            self.native.set_capture(-1, CAPTURE_GROWTH, None)  # type: ignore[attr-defined]
        self._reap_copiers()
        if tracing:
            if self.want_sites:
                self._capture(final=True)
            end, peak = _tracemalloc.get_traced_memory()
            if peak > self.peak_total:
                self.peak_total = peak
            if self.spec["census"] and not self.received:
                gc.collect()
                tracked = gc.get_objects()
            traces = _tracemalloc._get_traces()
            limit = _tracemalloc.get_traceback_limit()
        if self.native is not None:
            self.native.end()  # type: ignore[attr-defined]  # before the trace it is hooked after
        final_rss = self._rss_now() if self.statm >= 0 else -1
        rss_peak = self._hwm() if self.hwm else -1
        if self.statm >= 0:
            posix.close(self.statm)
        if self.started_tracing:
            _tracemalloc.stop()
        self._clear_status()
        count = self.count
        return {
            "exit_code": exit_code, "error": error, "duration": duration,
            "started_at": self.started_at, "interval": self.interval,
            "samples": (self.times[:count].tolist(), self.traced[:count].tolist(),
                        self.rss[:count].tolist()),
            "tracing": tracing, "start": start_level, "end": end, "peak": self.peak_total,
            "peak_seconds": self.peak_seconds, "rss_start": self.rss_start,
            "rss_peak": rss_peak, "rss_final": final_rss, "rss_absent": self.rss_absent,
            "traces": traces, "traceback_limit": limit, "tracked": tracked,
            "ended_at": time.time(),
        }

    # -- samples, on the agent's thread ----------------------------------------

    def _loop(self) -> None:
        try:
            while self.running:
                time.sleep(self.interval)
                if self.running:
                    self._sample()
                    if posix.getppid() != self.parent:  # memguard was killed outright
                        _abandon(self.folder)
        finally:
            self.done.release()

    def _stop_sampling(self) -> None:
        self.running = False
        self.done.acquire()
        self.done.release()
        self._sample()  # the end of the program is part of its run

    def _sample(self) -> None:
        # No container made here (no tuple, no iterator, no min()/max()/int()):
        # one would count towards the program's next collection, and could
        # start it on this thread (see memguard._tracing.quiet_level).
        if not _tracemalloc.is_tracing():
            return
        now = time.perf_counter() - self.started
        level = next(self.levels)[2]
        peak = next(self.peaks)[2]
        if peak > self.peak_total:
            self.peak_total = peak
        noise = self.noted_peak // 100
        if noise < PEAK_NOISE:
            noise = PEAK_NOISE
        if self.peak_total > self.noted_peak + noise:
            # the agent's own work creeps the peak up by bytes; a move of
            # more than 1% is the program's
            self.noted_peak, self.peak_seconds = self.peak_total, now
        rss = self._rss_now() if self.statm >= 0 else -1
        index = self.count
        if index == self.capacity:
            self._grow()
        self.times[index] = now
        self.traced[index] = level
        self.rss[index] = rss
        self.count = index + 1
        if self.status:
            self._show(now, level - self.start, self.peak_total - self.start, rss)
        if self.can_capture and not self.wanted and self._worth(level - self.start, now):
            if _signal.getsignal(_CAPTURE_SIGNAL) is self.on_capture:
                self.wanted = True
                _thread.interrupt_main(_CAPTURE_SIGNAL)  # type: ignore[arg-type]
            else:  # the program took the signal: no more copies while it runs
                self.can_capture = False

    def _grow(self) -> None:
        capacity = self.capacity * 2
        times = memoryview(bytearray(8 * capacity)).cast("d")
        traced = memoryview(bytearray(8 * capacity)).cast("q")
        rss = memoryview(bytearray(8 * capacity)).cast("q")
        times[:self.capacity] = self.times
        traced[:self.capacity] = self.traced
        rss[:self.capacity] = self.rss
        self.times, self.traced, self.rss, self.capacity = times, traced, rss, capacity

    def _show(self, now: float, level: int, peak: int, rss: int) -> None:
        if now - self.last_status < STATUS_EVERY:
            return
        self.last_status = now
        text = status_text(now, level, peak, rss if self.want_rss and rss >= 0 else None)
        try:
            posix.write(2, f"\r\x1b[K{text}".encode())
            self.status_shown = True
        except OSError:
            self.status = False

    def _clear_status(self) -> None:
        if self.status_shown:
            try:
                posix.write(2, b"\r\x1b[K")
            except OSError:
                pass

    # -- resident memory -----------------------------------------------------------

    def _open_rss(self) -> None:
        if not self.want_rss:
            self.rss_absent = "not measured; memguard run --rss measures process memory"
            return
        try:
            self.statm = posix.open("/proc/self/statm", posix.O_RDONLY)
        except OSError as error:
            self.rss_absent = f"/proc/self/statm cannot be read: {error.strerror}"
            return
        try:  # the kernel's high-water mark, restarted at the program's start
            clear = posix.open("/proc/self/clear_refs", posix.O_WRONLY)
            try:
                posix.write(clear, b"5")
            finally:
                posix.close(clear)
            self.hwm = self._hwm() >= 0
        except OSError:
            self.hwm = False
        self.rss_start = self._rss_now()

    def _rss_now(self) -> int:
        text = posix.pread(self.statm, 128, 0)  # "size resident shared ...", in pages
        return _number_after(text, text.find(b" ")) * self.page

    def _hwm(self) -> int:
        try:
            status = posix.open("/proc/self/status", posix.O_RDONLY)
        except OSError:
            return -1
        try:
            text = posix.read(status, 1 << 16)
        finally:
            posix.close(status)
        where = text.find(b"VmHWM:")
        return -1 if where < 0 else _number_after(text, where) * 1024

    # -- copies at the peak, in the main thread ------------------------------------

    def _worth(self, level: int, now: float, *, final: bool = False) -> bool:
        """Whether *level* (above the start) is a new high to copy (the catcher's policy)."""
        if level <= CAPTURE_FLOOR or level <= self.capture_level:
            return False
        if final:
            return True
        if level < self.capture_level * CAPTURE_GROWTH:
            return False
        return not (now < self.capture_next and level < self.capture_level * _DOUBLED)

    def _on_trigger(self, level: int) -> None:
        if not self.holding:
            self._capture()

    def _on_capture(self, signum: int, frame: object) -> None:
        # wanted stays set until the copy is made: the sampler asks no
        # second copy meanwhile (this handler would run inside this one)
        try:
            if not self.holding:
                self._capture()
        finally:
            self.wanted = False

    def _capture(self, *, final: bool = False) -> None:
        """Copy the live traces at a new high, summed by traceback, into ``sites.N``.

        In a forked copy of this process where the native counter is built
        (:func:`fork_copy <memguard._native>`), which the program waits for:
        the program's process then makes no object for the copy, so its free
        lists, its collector's count and its peak are as they were. Otherwise
        here, with the collector off and the copy freed before it is on again
        (the count of containers is as it was), the sums' own traced bytes
        left out of the peak; the copy's tuples, freed, are left on
        CPython's free lists, untraced, for the program to reuse unseen (up
        to 2,000 of a size).
        """
        if not _tracemalloc.is_tracing():
            return
        level = next(self.levels)[2] - self.start
        now = time.perf_counter() - self.started
        if not self._worth(level, now, final=final):
            return
        began = time.perf_counter()
        seq = self.copies
        self.copies = seq + 1
        if self.native is not None and not final and self.forked < len(self.copiers):
            try:
                pid = self.native.fork_copy()  # type: ignore[attr-defined]
            except OSError:  # no process to spare: copy here
                pid = -1
            if pid == 0:
                self._copy_and_exit(level, now, seq)
            if pid > 0:
                # The program waits for its copy, as it would for one made here:
                # the copy is of this moment, takes no core from the program,
                # and the budget counts its whole time.
                self.copiers[self.forked] = pid
                self.forked += 1
                try:
                    posix.waitpid(pid, 0)
                except ChildProcessError:  # reaped by the program (os.wait()): done
                    pass
                self.forked -= 1  # (a signal's exception above leaves it to _reap_copiers)
                self._copied(level, now, began)
                return
        peak = next(self.peaks)[2]
        if peak > self.peak_total:
            self.peak_total = peak
        enabled = gc.isenabled()
        gc.disable()
        try:
            data = _summed(level, now)
            try:
                _write_file(self.folder, f"sites.{seq}", data)
            except OSError:  # no room for the copy: the sites of an earlier one stand
                return
            finally:
                del data
        finally:
            if enabled:
                gc.enable()
            self._drop_own_peak()
        self._copied(level, now, began)

    def _copied(self, level: int, now: float, began: float) -> None:
        self.capture_level = level
        self.capture_next = now + CAPTURE_BUDGET * (time.perf_counter() - began)

    def _copy_and_exit(self, level: int, now: float, seq: int) -> None:
        """In the forked copy: write the sums and end, whatever happens (nothing else runs)."""
        code = 1
        try:
            _write_file(self.folder, f"sites.{seq}", _summed(level, now))
            code = 0
        finally:
            posix._exit(code)

    def _reap_copiers(self) -> None:
        """Wait for the forked copies: the last one's sites are the highest."""
        for index in range(self.forked):
            try:
                posix.waitpid(self.copiers[index], 0)
            except ChildProcessError:  # the program reaped it (os.wait()): it is done
                pass
        self.forked = 0

    def _drop_own_peak(self) -> None:
        """Leave the copy's own bytes out of tracemalloc's peak, and keep the program's.

        The counter restarts at the level now; then it is raised back to the
        run's peak so far by a zero-filled ``bytes`` of the missing size,
        allocated and freed (``calloc`` pages never touched: no resident
        memory), so a program that reads its own peak reads it as it was.
        """
        _tracemalloc.reset_peak()
        missing = self.peak_total - _tracemalloc.get_traced_memory()[0] - _BYTES_HEADER
        if missing > 0:
            filler = bytes(missing)
            del filler

    # -- signals -----------------------------------------------------------------

    def _raise(self, signum: int, frame: object) -> None:
        if self.holding:
            self._held(signum, frame)
            return
        if not self.received:
            self.received = signum
        if signum == _signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(signum)

    def _hold(self) -> None:
        """The program has ended: hold SIGINT and SIGTERM from now on."""
        self.holding = True
        _signal.signal(_signal.SIGTERM, self._held)
        _signal.signal(_signal.SIGINT, self._held)

    def _held(self, signum: int, frame: object) -> None:
        again = " again" if self.received else ""
        self.held = True
        if not self.received:
            self.received = signum
        _say(f"memguard: {_signal_name(signum)} received{again}: {self.notice}\n")


class _Spec:
    """What ``_imp.create_dynamic`` reads of a module spec."""

    def __init__(self, name: str, origin: str) -> None:
        self.name = name
        self.origin = origin


def _load_counter() -> object:
    """memguard's native counter, loaded by path (``None`` where it is not built or is off)."""
    if os.environ.get("MEMGUARD_NO_NATIVE", "").strip() not in ("", "0"):
        return None
    import _imp

    folder = os.path.dirname(os.path.dirname(_HERE))
    for suffix in _imp.extension_suffixes():
        path = f"{folder}/_native{suffix}"
        if os.path.exists(path):
            try:
                module = _imp.create_dynamic(_Spec("memguard._native", path))  # type: ignore[arg-type]
            except ImportError:
                return None
            sys.modules.pop("memguard._native", None)  # not the program's to see
            return module
    return None


def _write_file(folder: str, name: str, data: bytes) -> None:
    """Write *data* to *folder*/*name* whole, or not at all (a ``.part`` renamed)."""
    part = f"{folder}/{name}.part"
    handle = posix.open(part, posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[posix.write(handle, view):]
    finally:
        posix.close(handle)
    posix.rename(part, f"{folder}/{name}")


def _say(text: str) -> None:
    try:
        posix.write(2, text.encode("utf-8", "replace"))
    except OSError:
        pass


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            try:
                stream.flush()
            except (OSError, ValueError):
                pass


def _is_file(path: str) -> bool:
    """Whether *path* is a script to compile (not a directory, nor a zip archive)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(4) != b"PK\x03\x04"
    except IsADirectoryError:
        return False


def exit_code_of(code: object) -> int:
    """The process exit code for ``SystemExit(code)``, as the interpreter computes it.

    (Also :meth:`memguard.program.launch.Program.execute`'s: one rule.)
    """
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def failed(error: BaseException, leading: "Callable[[str], bool]",
           trailing: "Callable[[str], bool]") -> tuple[int, str]:
    """The exit code and ``"Type: message"`` of a program that raised *error*,
    its traceback printed as python would (see :func:`show_traceback`);
    :class:`Terminated` (by its ``signum``) gives ``128 + signal`` and no traceback."""
    if isinstance(error, Terminated):
        return 128 + error.signum, str(error)
    show_traceback(error, leading, trailing)
    code = 130 if isinstance(error, KeyboardInterrupt) else 1
    return code, f"{type(error).__name__}: {error}"


def _hidden(filename: str) -> bool:
    return filename in (_HERE, __file__, "<frozen runpy>") or filename.endswith("/runpy.py")


def show_traceback(error: BaseException, leading: "Callable[[str], bool]",
                   trailing: "Callable[[str], bool]") -> None:
    """Print *error* through :func:`sys.excepthook`, without the way in.

    The frames before the program's whose file *leading* names (the runner's,
    runpy's) are left out, and so is the end from the first frame whose file
    *trailing* names (the signal handler that raised), in every chained
    exception too.
    """
    seen: set[int] = set()
    chained: BaseException | None = error
    while chained is not None and id(chained) not in seen:
        seen.add(id(chained))
        tb = chained.__traceback__
        while tb is not None and leading(tb.tb_frame.f_code.co_filename):
            tb = tb.tb_next
        walk = tb
        while walk is not None and walk.tb_next is not None:
            if trailing(walk.tb_next.tb_frame.f_code.co_filename):
                walk.tb_next = None
            walk = walk.tb_next
        chained.with_traceback(tb)
        chained = chained.__cause__ or chained.__context__
    sys.excepthook(type(error), error, error.__traceback__)


def _watch_parent(parent: int, folder: str) -> None:
    """For a run measured in-process (``--lines``): end with memguard's process, as the
    agent's sampler does (:meth:`Agent._loop`)."""
    while posix.getppid() == parent:
        time.sleep(0.5)
    _abandon(folder)


def _abandon(folder: str) -> None:
    """memguard's process was killed outright: remove its folder, and end the program."""
    try:
        for name in posix.listdir(folder):
            posix.unlink(folder + "/" + name)
        posix.rmdir(folder)
    except OSError:
        pass
    posix.kill(posix.getpid(), _signal.SIGKILL)


def _go(spec: dict) -> None:  # type: ignore[type-arg]
    """Wait for memguard's word (the terminal is the program's now), then close the pipe."""
    fd = spec["go"]
    try:
        word = posix.read(fd, 1)
    finally:
        posix.close(fd)
    if word != b"g":  # memguard ended before the program could start: nothing to run for
        posix._exit(1)


class _Ending:
    """The child's status for the parent, written at the very end of the process.

    Registered with :mod:`atexit` before the program runs, so it runs after
    every exit function the program registers: a signal those send is held,
    and counted in the status.
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.pid = posix.getpid()
        self.status: dict = {"exit_code": 1, "failure": _NO_REPORT}  # type: ignore[type-arg]
        self.agent: Agent | None = None

    def write(self) -> None:
        if posix.getpid() != self.pid:  # a forked copy of the program: not the run
            return
        status = dict(self.status)
        if self.agent is not None and self.agent.received:
            status["received"] = self.agent.received
        status.setdefault("received", 0)
        try:
            _write_file(self.folder, "status", marshal.dumps(status))
        except OSError:
            pass


_NO_REPORT = "memguard failed while it built the report (the error is above)"


def _reach_memguard() -> None:
    """Let memguard be imported from where this file is (an install or a checkout)."""
    if _PACKAGE_PARENT not in sys.path:
        sys.path.append(_PACKAGE_PARENT)


def main() -> None:
    """Run the program the parent described; hand what was kept to memguard."""
    spec = marshal.loads(bytes.fromhex(sys.argv[1]))
    if not getattr(sys.flags, "safe_path", False) and sys.path:
        del sys.path[0]  # this file's folder: its modules are not the program's to import
    saved_path = sys.path[:]
    itself = sys.modules["__main__"]  # this file's module: __main__ is the program's soon
    ending = _Ending(spec["folder"])
    atexit.register(ending.write)
    _go(spec)
    if spec["mode"] == "inprocess":
        _thread.start_new_thread(_watch_parent, (spec["parent"], spec["folder"]))
        _reach_memguard()
        from memguard.program import child

        ending.status = child.run_in_process(spec)
        raise SystemExit(0)
    agent = ending.agent = Agent(spec)
    kept = agent.run()
    # The program has ended and nothing traces: memguard may be imported now.
    program_path = sys.path
    sys.path = saved_path
    _reach_memguard()
    from memguard.program import child

    ending.status = child.finish(spec, kept)
    sys.path = program_path
    kept.clear()
    del itself
    raise SystemExit(0)


if __name__ == "__main__":
    main()
