"""L9 front end: ``memguard run``, run a program under memguard and write a run file.

The program runs in this process, as ``python`` would run it (its own
``sys.argv``, ``__main__`` and exit code); see :mod:`memguard.program`.
Everything memguard prints goes to stderr, so the program's stdout is its own.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from typing import TYPE_CHECKING

from ..exceptions import CommandError, OutputRefused
from ..units import format_size
from ..values.run import RunReport
from .options import (
    EXIT_ERROR,
    EXIT_LIMIT,
    EXIT_USAGE,
    check_output,
    positive_float,
    size_argument,
)

if TYPE_CHECKING:
    from ..program import Program
    from ..program.spawn import ChildRun

__all__ = ["DESCRIPTION", "EPILOG", "HELP", "USAGE", "add_arguments", "run", "split_program"]

HELP = "run a program under memguard and write a run file"
USAGE = "memguard run [options] (script.py | -m module) [args ...]"
DESCRIPTION = """\
Run a Python script or module as `python` would (its own sys.argv, __main__
and exit code), trace its memory, sample a timeline, and write a run file for
`memguard report`. Options go before the script; everything after it is the
program's. memguard's own messages go to stderr."""
EPILOG = """\
examples:
  memguard run app.py --input data.csv
  memguard run -m mypkg.cli serve --port 8000
  memguard run --rss --children --interval 0.05 pipeline.py
  memguard run --limit "500 MB" --output run.json app.py
  memguard run --lines app.py:load app.py       # line-by-line profile of load()
  memguard report run.json

exit code: the program's own; 2 when memguard cannot start it (bad option,
no such script or module, existing --output without --force); 3 when the
program succeeded but went over --limit; 1 when the run file cannot be written.
"""

_VALUE_OPTIONS = frozenset({"--interval", "--output", "-o", "--limit", "--lines"})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``memguard run``'s options to *parser*.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_arguments(parser)
        >>> parser.parse_args(["--rss", "app.py"]).rss
        True
    """
    parser.add_argument("--interval", type=positive_float, default=0.01, metavar="SECONDS",
                        help="seconds between timeline samples (default 0.01)")
    parser.add_argument("-o", "--output", metavar="PATH",
                        help="the run file to write (default memguard-NAME.PID.json)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --output")
    parser.add_argument("--limit", type=size_argument, metavar="SIZE",
                        help="fail (exit 3) when the peak goes over SIZE, such as '500 MB' or "
                             "'1 GiB': the traced Python heap, or the process's RSS "
                             "above its start with --rss")
    parser.add_argument("--rss", action="store_true",
                        help="also measure process memory (RSS), native allocations included")
    parser.add_argument("--children", action="store_true",
                        help="also sample the memory of child processes (psutil)")
    parser.add_argument("--lines", metavar="TARGET",
                        help="profile one function line by line in every call: "
                             "MODULE_OR_FILE:FUNCTION, such as app.py:load or "
                             "mypkg.jobs:Job.run (slower; without the native counter, "
                             "tracebacks keep 16 frames)")
    parser.add_argument("--no-census", dest="census", action="store_false",
                        help="do not count live objects by type when the program ends "
                             "(a pass over the whole heap)")
    parser.add_argument("--no-sites", dest="sites", action="store_false",
                        help="do not capture the allocation sites near the peak while the "
                             "program runs (faster for programs with millions of live "
                             "objects)")
    parser.add_argument("-m", dest="module", metavar="module",
                        help="run a library module as a script, as `python -m` does")
    parser.add_argument("script", nargs="?", help="the script to run, then its arguments")


def split_program(args: list[str]) -> tuple[list[str], list[str]]:
    """Split ``["run", memguard options..., program, program args...]`` in two.

    The first word that is not one of ``memguard run``'s options (or the
    module after ``-m``) is the program; the words after it are its own,
    dashes included. ``--`` ends memguard's options explicitly.

    Returns:
        memguard's arguments (up to and including the script or ``-m module``)
        and the program's arguments.

    Example:
        >>> split_program(["run", "--rss", "app.py", "--rss", "x"])
        (['run', '--rss', 'app.py'], ['--rss', 'x'])
        >>> split_program(["run", "-mhttp.server", "8000"])
        (['run', '-m', 'http.server'], ['8000'])
    """
    index = 1
    while index < len(args):
        word = args[index]
        if word == "--":
            return args[:index] + args[index + 1:index + 2], args[index + 2:]
        if word == "-m":
            return args[:index + 2], args[index + 2:]
        if word.startswith("-m") and not word.startswith("--"):
            return [*args[:index], "-m", word[2:]], args[index + 1:]
        if word.startswith("-") and word != "-":
            index += 2 if word in _VALUE_OPTIONS else 1
            continue
        return args[:index + 1], args[index + 1:]
    return args, []


def default_output(target: str) -> str:
    """``memguard-NAME.PID.json`` in the current directory.

    Example:
        >>> default_output("tools/app.py").startswith("memguard-app.")
        True
    """
    name = os.path.splitext(os.path.basename(target.rstrip("/")))[0] or "run"
    return f"memguard-{name}.{os.getpid()}.json"


def run(args: argparse.Namespace) -> int:
    """Run the program named in *args*, write its run file, return its exit code.

    Example:
        >>> from memguard.cli import main
        >>> main(["run", "-m", "this_module_does_not_exist"])  # doctest: +SKIP
        2
    """
    from ..program import Program

    target = args.module or args.script
    if target is None:
        raise CommandError("memguard run: give a script or -m module to run",
                           exit_code=EXIT_USAGE)
    program = Program(target, tuple(args.program_args), module=args.module is not None)
    output = args.output or default_output(target)
    if output == "-":
        # stdout is the program's own: a run file mixed into it could not be read back.
        raise CommandError("--output -: memguard run writes its run to a file, since the "
                           "program's own output goes to stdout; pass a path, then "
                           "`memguard report PATH` prints it", exit_code=EXIT_USAGE)
    # Found out before a long run, not after (a probe file is created and
    # removed); absolute, in case the program changes directory.
    check_output(output, force=args.force)
    destination = os.path.abspath(output)
    _check_program(program, args.lines)
    from ..program.interrupts import Interruptions, Terminated, signal_name

    notice = f"writing what was measured to {output}"
    with Interruptions(notice) as interruptions:
        try:
            done = _measure(program, args, notice)
            interruptions.hold()  # the program has ended: the file is written whatever comes
            result = _report_of(done)
            _save(result, destination, output)
            _summarise(result, output)
        except (KeyboardInterrupt, Terminated) as stop:
            # Only before the program started, or in the instant between its
            # end and the holding of further signals.
            signum = stop.signum if isinstance(stop, Terminated) else signal.SIGINT
            raise CommandError(f"interrupted by {signal_name(signum)} before the program ran "
                               f"or while its end was recorded: no run file was written",
                               exit_code=128 + signum) from None
    received = done.received or interruptions.received
    if received:
        code = 128 + received
        print(f"memguard: the run was stopped by {signal_name(received)}: exit code {code}",
              file=sys.stderr)
        return code
    if result.limit is not None and result.limit.exceeded:
        print(f"memguard: {result.limit.message()}", file=sys.stderr)
        return result.exit_code or EXIT_LIMIT
    return result.exit_code


def _measure(program: Program, args: argparse.Namespace, notice: str) -> ChildRun:
    from ..program.spawn import run_child

    try:
        return run_child(program, interval=args.interval, rss=args.rss,
                         children=args.children, limit_bytes=args.limit, lines=args.lines,
                         census=args.census, sites=args.sites, status=sys.stderr.isatty(),
                         notice=notice)
    finally:
        if sys.stdout is not None:
            with contextlib.suppress(OSError):  # the program's own output, before memguard's
                sys.stdout.flush()


def _report_of(done: ChildRun) -> RunReport:
    """The child's report, or one line on why there is none."""
    if done.report is not None:
        return done.report
    failure = done.failure or "no report"
    if "tracemalloc was stopped" in failure:
        failure += "; did the program stop tracemalloc itself?"
    # as the program's process ended: 128 + the signal that killed it, or its own status
    code = 128 - done.returncode if done.returncode < 0 else done.returncode or EXIT_ERROR
    raise CommandError(f"{failure}; no run file was written", exit_code=code)


def _check_program(program: Program, lines: str | None) -> None:
    """Refuse, before running, a program that is not there or a bad ``--lines``."""
    from ..lines.target import LineTarget

    try:
        program.check()
    except FileNotFoundError:
        raise CommandError(f"can't open file {program.target!r}: no such file",
                           exit_code=EXIT_USAGE) from None
    except ImportError as error:
        raise CommandError(str(error), exit_code=EXIT_USAGE) from None
    if lines is not None:
        try:
            LineTarget.parse(lines)
        except ValueError as error:
            raise CommandError(f"--lines: {error}", exit_code=EXIT_USAGE) from None


def _save(result: RunReport, path: str, shown: str) -> None:
    from ..values.files import save

    try:
        save(result, path)
    except OSError as error:  # OutputRefused included: the path changed during the run
        reason = error.reason if isinstance(error, OutputRefused) else error.strerror or error
        raise CommandError(f"cannot write the run file {shown!r}: {reason}; the run's "
                           f"measurements are lost", exit_code=EXIT_ERROR) from None


def _summarise(result: RunReport, output: str) -> None:
    line = (f"memguard: {result.command}: exit code {result.exit_code}, "
            f"traced peak {format_size(result.traced_peak_above_start_bytes or 0)} at "
            f"{result.peak_seconds:.2f} s of {result.duration_seconds:.2f} s")
    if result.rss_peak_bytes is not None:
        line += f", peak RSS {format_size(result.rss_peak_bytes)}"
    elif result.rss:
        line += ", peak RSS not measured (see the report)"
    if result.children_peak_bytes is not None:
        line += f", with children {format_size(result.children_peak_bytes)}"
    print(line, file=sys.stderr)
    for profile in result.lines:
        print(profile, file=sys.stderr)
    if result.lines_target is not None and not result.lines:
        print(f"memguard: --lines {result.lines_target}: the function was never called",
              file=sys.stderr)
    print(f"memguard: wrote {output}; report on it with: memguard report {output}",
          file=sys.stderr)
