"""L7 program runner: :func:`run_child`, ``memguard run``'s program in a fresh interpreter.

The program runs in a child process started from this one with nothing of
memguard's imported before it: :mod:`memguard.program._agent` runs it and
measures it with built-in modules only, and builds the report once it has
ended (:mod:`memguard.program.child`). So the program's imports are counted
as under ``python -X tracemalloc``. A run with ``--lines`` needs memguard in
the program's process while it runs: its child imports memguard first
(:func:`memguard.program.child.run_in_process`).

This process is the program's parent while it runs:

* **The terminal.** The child runs in a process group of its own. When this
  process owns the terminal, the terminal is handed to the child's group
  for the run and taken back after, as a shell does for a job: Ctrl-C
  reaches the program once, and a program that reads the terminal can.
  Ctrl-Z stops the program, then this process, so the shell sees the job
  stopped; ``fg`` resumes both.
* **Signals.** SIGINT and SIGTERM sent to this process (``kill``,
  ``timeout``, a CI cancel) are passed on to the program. If this process
  is killed outright, the agent sees it and ends the program.
* **Children.** With ``children``, the memory of the program's process and
  of every process under it is sampled from here (:mod:`psutil`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import marshal
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

from .._optional import require
from ..exceptions import MeasurementUnavailable
from ..values.files import load
from ..values.run import RunReport
from .child import REPORT, STATUS
from .interrupts import signal_name
from .launch import Program

__all__ = ["AGENT", "ChildRun", "run_child"]

AGENT = os.path.join(os.path.dirname(os.path.realpath(__file__)), "_agent.py")
"""The file the child runs (by path: it is never imported there)."""
_FRESH = sys.platform.startswith("linux")
"""Whether the agent measures the program (it reads ``/proc``); elsewhere the
child imports memguard and measures in-process."""
_RELAYED = (signal.SIGINT, signal.SIGTERM)


@dataclass
class ChildRun:
    """How the program's process ended, and what it reported."""

    report: RunReport | None
    """The run's report, or ``None`` when the child wrote none."""
    received: int
    """The first SIGINT or SIGTERM the program's process received (0: none)."""
    failure: str | None = None
    """Why there is no report, when there is none."""
    returncode: int = 0
    """The child process's own exit status (``-N``: killed by signal N)."""


def run_child(program: Program, *, interval: float = 0.01, rss: bool = False,
              children: bool = False, limit_bytes: int | None = None, lines: str | None = None,
              census: bool = True, sites: bool = True, status: bool = False,
              notice: str = "finishing the report first") -> ChildRun:
    """Run *program* in a fresh interpreter, measured as :func:`run_program
    <memguard.program.measure.run_program>` measures it, and collect its report.

    The options are :func:`~memguard.program.measure.run_program`'s, plus:

    Args:
        status: Show a status line on stderr (a terminal) while it runs.
        notice: What the child says on stderr when it holds a signal after
            the program has ended.

    Returns:
        The report (``children`` samples included) and how the child ended.

    Raises:
        FileNotFoundError: There is no such script.
        ModuleNotFoundError: There is no such module.
        ValueError: *interval* is not a positive number.

    Example:
        >>> import pathlib, tempfile
        >>> script = pathlib.Path(tempfile.mkdtemp()) / "hello.py"
        >>> _ = script.write_text("data = bytearray(10**6)\\n")
        >>> done = run_child(Program(str(script)), census=False)
        >>> done.report.exit_code, done.report.traced_peak_above_start_bytes >= 10**6
        (0, True)
    """
    if isinstance(interval, bool) or not isinstance(interval, int | float) or not interval > 0:
        raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
    program.check()
    if children:
        require("psutil")
    folder = tempfile.mkdtemp(prefix="memguard-run-")
    try:
        read_end, write_end = os.pipe()
        spec: dict[str, Any] = {
            "target": program.target, "args": list(program.args), "module": program.module,
            "interval": float(interval), "rss": rss, "sites": sites and not (rss or children),
            "census": census, "limit": limit_bytes, "lines": lines, "status": status,
            "notice": notice, "folder": folder, "parent": os.getpid(), "go": read_end,
            "mode": "fresh" if _FRESH and lines is None else "inprocess",
        }
        command = [sys.executable, *_interpreter_flags(), AGENT, marshal.dumps(spec).hex()]
        try:
            child = subprocess.Popen(command, pass_fds=(read_end,), **_own_group())
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        with _relay(child), _terminal(child.pid) as terminal:
            os.write(write_end, b"g")
            os.close(write_end)
            sampler = _ChildrenSampler(child.pid, interval) if children else None
            returncode = _wait(child, terminal)
            if sampler is not None:
                sampler.stop()
        return _collect(folder, returncode, [] if sampler is None else sampler.samples)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _collect(folder: str, returncode: int, samples: list[tuple[float, int]]) -> ChildRun:
    try:
        with open(os.path.join(folder, STATUS), "rb") as handle:
            status = marshal.load(handle)
    except (OSError, EOFError, ValueError, TypeError):
        how = (f"it was killed by {signal_name(-returncode)}" if returncode < 0
               else f"it exited with status {returncode} (os._exit, or a crash)")
        return ChildRun(None, 0, f"the program's process ended before memguard could measure "
                                 f"its end: {how}", returncode)
    report = None
    if status.get("failure") is None:
        report = load(os.path.join(folder, REPORT))
        if samples:
            report = dataclasses.replace(report, children=tuple(samples))
    return ChildRun(report, int(status.get("received") or 0), status.get("failure"),
                    returncode)


def _interpreter_flags() -> list[str]:
    """This interpreter's options (``-X dev``, ``-W error``, ``-O``...), for the child."""
    flags: list[str] = subprocess._args_from_interpreter_flags()  # type: ignore[attr-defined]
    return flags


def _own_group() -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        return {"process_group": 0}
    return {"preexec_fn": os.setpgrp}  # pragma: no cover - Python 3.10


@contextlib.contextmanager
def _relay(child: subprocess.Popen[bytes]) -> Iterator[None]:
    """Pass SIGINT and SIGTERM sent to this process on to the child, while it runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def forward(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signum)

    saved = {signum: signal.signal(signum, forward) for signum in _RELAYED}
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


class _Terminal:
    """The controlling terminal, when this process's group is in its foreground."""

    def __init__(self, fd: int | None) -> None:
        self.fd = fd

    def give(self, group: int) -> None:
        if self.fd is None:
            return
        saved = signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # as shells do
        try:
            with contextlib.suppress(OSError):
                os.tcsetpgrp(self.fd, group)
        finally:
            signal.signal(signal.SIGTTOU, saved)


@contextlib.contextmanager
def _terminal(group: int) -> Iterator[_Terminal]:
    fd = None
    with contextlib.suppress(OSError):
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    if fd is not None:
        try:
            foreground = os.tcgetpgrp(fd) == os.getpgrp()
        except OSError:
            foreground = False
        if not foreground:
            os.close(fd)
            fd = None
    terminal = _Terminal(fd)
    terminal.give(group)
    try:
        yield terminal
    finally:
        terminal.give(os.getpgrp())
        if fd is not None:
            os.close(fd)


def _wait(child: subprocess.Popen[bytes], terminal: _Terminal) -> int:
    """Wait for the child to end; a stop (Ctrl-Z) stops this process too, until ``fg``."""
    while True:
        _, status = os.waitpid(child.pid, os.WUNTRACED)
        if os.WIFSTOPPED(status):
            if terminal.fd is None:  # stopped by someone else's signal: theirs to continue
                continue
            terminal.give(os.getpgrp())
            os.kill(os.getpid(), signal.SIGSTOP)
            terminal.give(child.pid)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGCONT)
            continue
        code = os.waitstatus_to_exitcode(status)
        child.returncode = code  # reaped here: Popen must not wait for it again
        return code


class _ChildrenSampler:
    """Samples the resident memory of the program's process and every process under it."""

    def __init__(self, pid: int, interval: float) -> None:
        self.psutil = require("psutil")
        self.process = self.psutil.Process(pid)
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self.started = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memguard-children",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                total = self._total()
            except MeasurementUnavailable:
                return
            if total is not None:
                self.samples.append((time.perf_counter() - self.started, total))

    def _total(self) -> int | None:
        psutil = self.psutil
        try:
            total = int(self.process.memory_info().rss)
            for child in self.process.children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied,
                                         psutil.ZombieProcess):
                    total += int(child.memory_info().rss)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return None
        except psutil.AccessDenied as error:
            raise MeasurementUnavailable(str(error)) from None
        return total

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
