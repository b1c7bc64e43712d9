"""L7 program runner: the report of a run, built in the program's own process once it has ended.

``memguard run`` runs the program in a fresh interpreter
(:mod:`memguard.program.spawn` starts it, :mod:`memguard.program._agent`
runs it). When the program has ended, the agent has stopped its trace and
imports this module, which turns what the agent kept (samples, the copy of
the sites near the peak, the final traces and the list of live objects)
into a :class:`~memguard.values.run.RunReport`, and writes it into the
folder the parent reads. :func:`run_in_process` is the other way in, for
runs that need memguard inside the program's process while it runs (``--lines``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import marshal
import os
import sys
import time
import tracemalloc
from typing import Any, TextIO

from .. import traces
from ..exceptions import TracingError
from ..guards.record import timeline_from
from ..objects import count_types_of
from ..values.files import save
from ..values.run import RunReport
from ..values.site import with_source
from ..values.snapshot import snapshot_from
from ..values.timeline import Timeline
from ._agent import STATUS_EVERY, status_text, stopped_by
from .interrupts import Interruptions
from .launch import Program
from .measure import FINAL_SITES, limit_report, run_program, top_sites

__all__ = ["REPORT", "SITES", "STATUS", "StatusLine", "finish", "run_in_process"]

REPORT = "report.json"
"""The run file the child writes into the parent's folder."""
SITES = "sites"
"""The agent's copies of the sites near the peak: ``sites.0``, ``sites.1``, ... (marshal)."""
STATUS = "status"
"""How the child ended (marshal): written last, by the agent, at its exit."""

_NOT_MEASURED = "not measured; memguard run --rss measures process memory"
_INTERRUPTED = "not counted: the run was interrupted, and the census would delay the exit"
_STOPPED = ("tracemalloc was stopped by someone else while a memguard block was open, so "
            "its peak is unknown")


class StatusLine:
    """``elapsed, current, peak`` on a terminal's stderr, rewritten in place.

    Example:
        >>> import io
        >>> stream = io.StringIO()
        >>> line = StatusLine(stream)
        >>> line(1.0, 2048, 4096, None)
        >>> stream.getvalue().endswith("current 2.0 KiB  peak 4.0 KiB")
        True
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.last = -STATUS_EVERY
        self.shown = False

    def __call__(self, seconds: float, traced_bytes: int, peak_bytes: int,
                 rss_bytes: int | None) -> None:
        now = time.monotonic()
        if now - self.last < STATUS_EVERY:
            return
        self.last = now
        text = status_text(seconds, traced_bytes, peak_bytes, rss_bytes)
        self.stream.write(f"\r\x1b[K{text}")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        """Erase the line, if it was ever shown."""
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _program(spec: dict[str, Any]) -> Program:
    return Program(spec["target"], tuple(spec["args"]), module=spec["module"])


def finish(spec: dict[str, Any], kept: dict[str, Any]) -> dict[str, Any]:
    """Build the run's report from what the agent kept, and write it into the folder.

    Args:
        spec: What the parent asked for (:func:`memguard.program.spawn.run_child`).
        kept: What the agent kept of the program's run (see
            :meth:`memguard.program._agent.Agent.run`).

    Returns:
        The child's status for the parent: the program's exit code, and why
        no report was written, if none was.
    """
    status: dict[str, Any] = {"exit_code": kept["exit_code"], "failure": None}
    if not kept["tracing"]:
        status["failure"] = _STOPPED
        return status
    program = _program(spec)
    folder = spec["folder"]
    timeline = _timeline(spec, kept, program.command)
    duration = kept["duration"]
    run = RunReport(
        command=program.command, argv=(program.target, *program.args),
        exit_code=kept["exit_code"], error=kept["error"],
        started_at=datetime.datetime.fromtimestamp(
            kept["started_at"], datetime.timezone.utc).isoformat(timespec="seconds"),
        duration_seconds=duration, timeline=timeline,
        peak_seconds=min(kept["peak_seconds"], duration), rss=spec["rss"],
        final=_final(spec, kept, program.command), lines_target=None)
    sites_file = _last_copy(folder)
    if sites_file is not None:
        with open(sites_file, "rb") as handle:
            level, seconds, sums = marshal.load(handle)
        sites, left_out = top_sites(traces.group_sums(sums, "lineno"), None)
        run = dataclasses.replace(run, sites=tuple(map(with_source, sites)),
                                  sites_left_out=left_out, sites_above_start_bytes=level,
                                  sites_seconds=seconds)
    if spec["limit"] is not None:
        run = dataclasses.replace(run, limit=limit_report(run, spec["limit"]))
    save(run, os.path.join(folder, REPORT))
    return status


def _last_copy(folder: str) -> str | None:
    """The agent's last complete copy of the sites (``sites.N``, highest N), if any."""
    numbers = [int(suffix) for name in os.listdir(folder)
               if name.startswith(f"{SITES}.") and (suffix := name[len(SITES) + 1:]).isdigit()]
    return os.path.join(folder, f"{SITES}.{max(numbers)}") if numbers else None


def _timeline(spec: dict[str, Any], kept: dict[str, Any], label: str) -> Timeline:
    times, traced, rss = kept["samples"]
    rows = sorted((t, level, None if not spec["rss"] or r < 0 else r)
                  for t, level, r in zip(times, traced, rss, strict=True))
    measured = spec["rss"] and kept["rss_start"] >= 0
    return timeline_from(
        rows, label=label, started_at=kept["started_at"], interval=spec["interval"],
        traced_start=kept["start"], traced_end=kept["end"], traced_peak=kept["peak"],
        rss_start=kept["rss_start"] if measured else None,
        rss_hwm=kept["rss_peak"] if measured and kept["rss_peak"] >= 0 else None,
        rss_absent=kept["rss_absent"] or _NOT_MEASURED)


def _final(spec: dict[str, Any], kept: dict[str, Any], command: str) -> Any:
    absent: dict[str, str] = {}
    types = None
    if kept["tracked"] is not None:
        types = count_types_of(kept["tracked"])
        kept["tracked"] = None
    elif not spec["census"]:
        absent["types"] = "the object census was switched off (census=False)"
    else:
        absent["types"] = _INTERRUPTED
    rss = kept["rss_final"] if kept["rss_final"] >= 0 else None
    if rss is None:
        absent["rss_bytes"] = kept["rss_absent"] or _NOT_MEASURED
    copy = tracemalloc.Snapshot(kept["traces"], kept["traceback_limit"])
    kept["traces"] = None
    final = snapshot_from(f"{command} (end)", timestamp=kept["ended_at"], traces=copy,
                          peak_bytes=kept["peak"], types=types, rss_bytes=rss, absent=absent)
    return final.biggest(FINAL_SITES)


def run_in_process(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the program in this process with memguard loaded (``--lines``), and write its report.

    The program's imports of the standard-library modules memguard uses
    are still its own (:func:`memguard.program.launch.lend_modules`); the
    names memguard interned are not (see the how-it-measures page).

    Returns:
        The child's status for the parent, as :func:`finish` does, and the
        signal received (``received``).
    """
    program = _program(spec)
    status_line = StatusLine(sys.stderr) if spec["status"] else None
    status: dict[str, Any] = {"exit_code": 1, "failure": None, "received": 0}
    with Interruptions(spec["notice"]) as interruptions:
        try:
            run = run_program(program, interval=spec["interval"], rss=spec["rss"],
                              limit_bytes=spec["limit"], lines=spec["lines"],
                              census=spec["census"], sites=spec["sites"],
                              on_sample=status_line, interruptions=interruptions,
                              lend_imports=True)
        except TracingError as error:
            status["failure"] = str(error)
            run = None
        finally:
            if status_line is not None:
                status_line.clear()
            if sys.stdout is not None:
                # the program's own stdout: its problem, not the report's
                with contextlib.suppress(OSError):
                    sys.stdout.flush()
        received = interruptions.received or 0
        if run is not None:
            status["exit_code"] = run.exit_code
            save(run, os.path.join(spec["folder"], REPORT))
            received = stopped_by(received, interruptions.held, run.exit_code)
        status["received"] = received
    return status
