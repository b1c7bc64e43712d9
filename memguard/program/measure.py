"""L7 program runner: :func:`run_program`, run a whole program as ``python`` would, and measure it.

The program (a :class:`~memguard.program.launch.Program`) runs inside
:func:`~memguard.guards.record.record` (the timeline, with the exact traced
peak and, on Linux, the kernel's exact RSS high-water mark) and beside a
watcher (a task of memguard's one watcher thread) that notes when the traced
peak moved (to one interval), samples child processes through psutil when
asked, and feeds a status line. The allocation sites near the peak are
copied by the peak-site catcher that ``limit()`` uses too
(:class:`memguard.guards._catcher.TraceCatcher`, one policy), and judged by
the same rule (:func:`memguard.values.limit.sites_status`). When the
program has ended, a snapshot records what it still holds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import time
import tracemalloc
from collections.abc import Callable

from .. import _counter, _tracing, _watcher, process, traces
from .._optional import require
from ..exceptions import MeasurementUnavailable
from ..guards._catcher import TraceCatcher
from ..guards._catcher import prepare as prepare_catcher
from ..guards.record import record
from ..lines.target import LineTarget
from ..values.limit import KEPT_SITES, LimitReport, sites_status
from ..values.lineprofile import LineProfile
from ..values.run import RunReport
from ..values.site import SMALLER, AllocationSite, LeftOut, site_of, with_source
from ..values.snapshot import take_snapshot
from ..values.timeline import Timeline
from ._agent import CAPTURE_BUDGET, CAPTURE_FLOOR, PEAK_NOISE
from .interrupts import Interruptions
from .launch import Program, hidden

__all__ = ["FINAL_SITES", "Program", "limit_report", "run_program", "top_sites"]

FINAL_SITES = 50
_LINE_FRAMES = 16

OnSample = Callable[[float, int, int, int | None], None]


def _children_rss() -> int:
    """Resident memory of every child process, recursively (sampled through psutil)."""
    psutil = require("psutil")
    total = 0
    for child in psutil.Process().children(recursive=True):
        try:
            total += int(child.memory_info().rss)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return total


class _Watcher:
    """Watches a run from the watcher thread: when the peak moves, the
    children's memory, and the status line's figures; and holds the catcher
    of the sites near the peak."""

    def __init__(self, window: _tracing.PeakWindow, *, interval: float, children: bool,
                 rss: bool, sites: bool, baseline: traces.Grouped | None,
                 on_sample: OnSample | None, traced_lines: bool = False) -> None:
        self.window = window
        self.interval = interval
        self.want_children = children
        self.want_rss = rss
        self.baseline = baseline
        self.on_sample = on_sample
        self.children: list[tuple[float, int]] = []
        self.started = time.perf_counter()
        self.peak_total = window.peak_total_bytes
        self.peak_seconds = 0.0
        self.sites: tuple[AllocationSite, ...] = ()
        self.left_out: tuple[LeftOut, ...] = ()
        self.sites_level: int | None = None
        self.sites_seconds = 0.0
        # A capture briefly holds a copy of every trace (about 100 bytes per
        # live block, not traced but resident): with rss or children, the
        # process's memory is the figure, and it must stay the program's.
        self.catcher: TraceCatcher | None = None
        if sites and not (rss or children):
            self.catcher = TraceCatcher(
                window.start_bytes, CAPTURE_FLOOR,
                lambda snapshot: top_sites(traces.group(snapshot, "lineno"), baseline),
                budget=CAPTURE_BUDGET, trigger=not traced_lines, pending=True)
        self._task: _watcher.Task | None = None

    def start(self) -> None:
        self.started = time.perf_counter()
        if self.catcher is not None:
            self.catcher.arm()
        self._task = _watcher.watch(self.sample, self.interval)

    def stop(self) -> None:
        if self._task is not None:
            _watcher.unwatch(self._task)
            self._task = None
        self.sample()  # the end of the program is part of its run
        if self.catcher is not None:
            self.catcher.disarm(final=True)  # ... and may be its peak
            kept = self.catcher.result()
            if isinstance(kept, tuple) and self.catcher.level_bytes:
                self.sites, self.left_out = kept
                self.sites_level = self.catcher.level_bytes
                self.sites_seconds = self.catcher.seconds

    def sample(self) -> None:
        if not tracemalloc.is_tracing():
            return
        now = time.perf_counter() - self.started
        level = _tracing.quiet_level() - self.window.start_bytes
        peak_total = self.window.peak_total_bytes
        # (no max(): its arguments would be a tuple, a container the program's
        # collector counts; see memguard._tracing.quiet_level)
        noise = self.peak_total // 100 if self.peak_total // 100 > PEAK_NOISE else PEAK_NOISE
        if peak_total > self.peak_total + noise:
            # memguard's own bookkeeping creeps the peak up by bytes; a move
            # of more than 1% is the program's.
            self.peak_total, self.peak_seconds = peak_total, now
        rss = None
        if self.want_rss or self.want_children:
            try:
                rss = process.rss_bytes()
            except MeasurementUnavailable:  # the exact peak is record()'s; samples are extra
                self.want_rss = self.want_children = False
        if self.want_children and rss is not None:
            self.children.append((now, rss + _children_rss()))
        if self.on_sample is not None:
            self.on_sample(now, max(0, level), max(0, peak_total - self.window.start_bytes),
                           rss if self.want_rss else None)


_RUN_SITES = 5 * KEPT_SITES
"""Sites a run keeps at the peak: more than a limit's, for ``report --top N``."""


def top_sites(groups: traces.Grouped, baseline: traces.Grouped | None
               ) -> tuple[tuple[AllocationSite, ...], tuple[LeftOut, ...]]:
    """The biggest growing sites, and what they leave out, by name."""
    change = traces.changes(groups, baseline)
    grown = [g for g in change.grown if not hidden(g.filename)]
    runner = [g for g in change.grown if hidden(g.filename)]
    shrunk = [g for g in change.all if g.size_bytes <= 0]
    rest = grown[_RUN_SITES:]
    left = [LeftOut(SMALLER, sum(g.size_bytes for g in rest), sum(g.count for g in rest),
                    len(rest)),
            *(LeftOut(r.name, r.size_bytes, r.count) for r in change.left_out),
            LeftOut("program runner", sum(g.size_bytes for g in runner),
                    sum(g.count for g in runner), len(runner)),
            LeftOut("shrunk", sum(g.size_bytes for g in shrunk), sum(g.count for g in shrunk),
                    len(shrunk))]
    # The sources are read when the run is over (with_source), not while
    # the program runs under the trace.
    return (tuple(site_of(g, source=False) for g in grown[:_RUN_SITES]),
            tuple(item for item in left if item.size_bytes or item.count))


def limit_report(run: RunReport, limit_bytes: int) -> LimitReport:
    """*run* judged against *limit_bytes*: the RSS peak above the start when
    the run measured RSS, else the traced peak, with ``limit()``'s rule for
    the sites (:func:`memguard.values.limit.sites_status`)."""
    timeline = run.timeline
    if run.rss:
        return LimitReport(
            label=run.command, source="rss", method=timeline.rss_peak_method,
            limit_bytes=limit_bytes,
            peak_above_start_bytes=timeline.rss_peak_above_start_bytes or 0,
            start_bytes=timeline.rss_start_bytes or 0, duration_seconds=run.duration_seconds,
            sites_status="unavailable", interval_seconds=timeline.interval_seconds,
        )
    # limit()'s rule; the sites are captured whether the limit held or not
    peak = run.traced_peak_above_start_bytes or 0
    status = sites_status(wanted=True, exceeded=True,
                          captured_above_start_bytes=run.sites_above_start_bytes,
                          peak_above_start_bytes=peak, named=len(run.sites))
    return LimitReport(
        label=run.command, source="python", method="tracemalloc", limit_bytes=limit_bytes,
        peak_above_start_bytes=peak, end_bytes=run.traced_end_above_start_bytes or 0,
        duration_seconds=run.duration_seconds, sites=run.sites, sites_status=status,
        sites_above_start_bytes=run.sites_above_start_bytes,
    )


def _line_target(spec: str | None) -> LineTarget | None:
    if spec is None:
        return None
    try:
        return LineTarget.parse(spec)
    except ValueError as bad:
        raise ValueError(f"lines: {bad}") from None


def _baseline() -> traces.Grouped | None:
    """The traces already live under someone else's trace, so that only the
    program's growth is named."""
    if not tracemalloc.is_tracing():
        return None
    with _tracing.excluded():
        existing = tracemalloc.take_snapshot()
    return traces.group(existing, "lineno")


def _observe(program: Program, kept: list[object], target: LineTarget | None, *,
             interval: float, rss: bool, children: bool, sites: bool,
             baseline: traces.Grouped | None, on_sample: OnSample | None,
             interruptions: Interruptions | None, lend_imports: bool,
             ) -> tuple[Timeline, _Watcher, tuple[int, str | None], float]:
    """Run the program inside a recording and a watched peak window."""
    with record(interval, label=program.command, rss=rss or children) as recording:
        window = _tracing.begin()
        watcher = _Watcher(window, interval=interval, children=children, rss=rss,
                           sites=sites, baseline=baseline, on_sample=on_sample,
                           traced_lines=target is not None)
        with _tracing.excluded():
            watcher.start()
        try:
            if target is not None:
                target.attach()
            outcome = program.execute(
                kept, on_end=None if interruptions is None else interruptions.hold,
                lend_imports=lend_imports)
        finally:
            duration = time.perf_counter() - watcher.started
            watcher.stop()
            _tracing.end(window)
    timeline = recording.timeline
    if not rss:  # RSS under site captures is not the program's: keep it only when asked
        why = "not measured; memguard run --rss measures process memory"
        timeline = dataclasses.replace(
            timeline, samples=tuple(dataclasses.replace(s, rss_bytes=None)
                                    for s in timeline.samples),
            rss_start_bytes=None, rss_peak_bytes=None, rss_peak_method="unavailable",
            absent=(*[a for a in timeline.absent if a[0] != "rss_bytes"], ("rss_bytes", why)))
    return timeline, watcher, outcome, duration


def run_program(
    program: Program,
    *,
    interval: float = 0.01,
    rss: bool = False,
    children: bool = False,
    limit_bytes: int | None = None,
    lines: str | None = None,
    census: bool = True,
    sites: bool = True,
    on_sample: OnSample | None = None,
    interruptions: Interruptions | None = None,
    lend_imports: bool = False,
) -> RunReport:
    """Run *program* in this process under tracing, and report what it used.

    Args:
        program: What to run.
        interval: Seconds between timeline samples.
        rss: Measure the process's resident memory too (native allocations
            included): the exact peak from the kernel's high-water mark where
            available, and a sample per interval; ``limit_bytes`` then
            applies to it.
        children: Also sample the memory of child processes (psutil); the
            figures are the process and its children together.
        limit_bytes: Judge the peak against this limit (the RSS peak above the
            start with *rss*, else the traced peak); see :attr:`RunReport.limit`.
        lines: ``MODULE_OR_FILE:FUNCTION``: profile that function line by line
            in every call (:class:`memguard.lines.LineTarget`);
            without the native counter, tracebacks then keep 16 frames.
        census: Count the live objects by type when the program ends (one
            pass over the whole heap: a second or more for a big one).
        sites: Capture the allocation sites near the peak while the program
            runs. Each capture costs time in proportion to the live blocks
            (kept to about a fifth of the run, unless the level doubled);
            never done with *rss* or *children*.
        on_sample: Called from the watching thread every interval with the
            seconds elapsed, the traced level, the traced peak so far (both
            above the start) and the RSS (``None`` without *rss*).
        interruptions: An entered :class:`~memguard.program.interrupts.Interruptions`:
            SIGTERM then ends the program as Ctrl-C does (exit code 143), and
            once the program has ended further signals are held. A program
            ended by a signal is reported without the object census (it
            would delay the exit the user asked for).
        lend_imports: Start the program without memguard's own
            standard-library imports (:func:`~memguard.program.launch.lend_modules`),
            so that the program's imports are measured as under ``python -X
            tracemalloc`` (within 2% on an import-heavy program, where
            counting on memguard's imports read 15% low). For a process that
            exists to run the program, as ``memguard run``'s does; the modules
            are put back when the program ends.

    Returns:
        The run's report. The program's exit code is in it; an uncaught
        exception has been printed (``sys.excepthook``) and counts as exit code 1.

    Raises:
        FileNotFoundError: There is no such script.
        ModuleNotFoundError: There is no such module.
        ValueError: *interval* is not a positive number, or *lines* is not
            ``MODULE_OR_FILE:FUNCTION``.

    Example:
        >>> import pathlib, tempfile
        >>> script = pathlib.Path(tempfile.mkdtemp()) / "hello.py"
        >>> _ = script.write_text("data = bytearray(10**6)\\n")
        >>> run = run_program(Program(str(script)))
        >>> run.exit_code, run.traced_peak_above_start_bytes >= 10**6
        (0, True)
    """
    if isinstance(interval, bool) or not isinstance(interval, int | float) or not interval > 0:
        raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
    program.check()
    if children:  # imported now: imported by the watcher, psutil would be the program's
        require("psutil")
    target = _line_target(lines)
    started_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    baseline = _baseline()
    kept: list[object] = []
    # The outer window keeps tracing on after the recording ends, for the
    # line profiles' retained memory and the snapshot of what the program
    # still holds (neither is part of its timeline).
    if sites and target is None:
        prepare_catcher()  # before tracing starts: its import is not the program's
    # Line profiles measured by the counter tag their blocks and need no
    # traceback; under tracemalloc, retained memory is traced back through
    # _LINE_FRAMES frames.
    deep = target is not None and not _counter.available()
    outer = _tracing.begin(_LINE_FRAMES if deep else 1)
    detached = False
    try:
        timeline, watcher, (exit_code, error), duration = _observe(
            program, kept, target, interval=float(interval), rss=rss, children=children,
            sites=sites, baseline=baseline, on_sample=on_sample, interruptions=interruptions,
            lend_imports=lend_imports)
        profiles: tuple[LineProfile, ...] = ()
        if target is not None:
            target.detach()
            detached = True
            profiles = target.results()
        stopped = interruptions is not None and interruptions.received is not None
        final = take_snapshot(f"{program.command} (end)", census=census and not stopped)
        if stopped and census:
            final = dataclasses.replace(final, absent=(
                *[a for a in final.absent if a[0] != "types"],
                ("types", "not counted: the run was interrupted, and the census would "
                          "delay the exit")))
        final = final.biggest(FINAL_SITES)
        kept.clear()
    finally:
        if target is not None and not detached:
            with contextlib.suppress(RuntimeError):  # not attached: failed before the program
                target.detach()
        _tracing.end(outer)
    run = RunReport(
        command=program.command, argv=(program.target, *program.args), exit_code=exit_code,
        error=error, started_at=started_at, duration_seconds=duration, timeline=timeline,
        peak_seconds=min(watcher.peak_seconds, duration),
        sites=tuple(map(with_source, watcher.sites)), sites_left_out=watcher.left_out,
        sites_above_start_bytes=watcher.sites_level, sites_seconds=watcher.sites_seconds, rss=rss,
        children=tuple(watcher.children), final=final, lines=profiles, lines_target=lines,
    )
    if limit_bytes is not None:
        run = dataclasses.replace(run, limit=limit_report(run, limit_bytes))
    return run
