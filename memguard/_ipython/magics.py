"""L9 front end: memguard's IPython magics.

Each magic parses its options (:mod:`.options`, :mod:`.parsers`), runs the
cell through :class:`.code.CellCode` inside the public guard a test would
use, and returns the resulting value, which IPython shows as HTML with charts
in a notebook and as the text report in a terminal (:mod:`.show`). The
magics keep memguard's plain values, never the user's objects.
"""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import inspect
import tracemalloc
from collections import ChainMap
from pathlib import Path
from types import CodeType
from typing import Any

from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class

from .. import _tracing
from ..exceptions import CheckFailed
from ..output import write_file
from ..units import format_size
from . import parsers
from .cells import CellMonitor
from .code import CellCode, cell_label, cell_number
from .options import documented, parse_line, size_argument

__all__ = ["MemguardMagics"]


@magics_class
class MemguardMagics(Magics):
    """The magics ``%load_ext memguard`` registers.

    Attributes:
        snapshots: The snapshots taken with ``%memguard_snapshot``, by name.
        results: The last value each magic produced, by magic name without
            the prefix (``"limit"``: a ``LimitReport``, ``"leaks"``: a
            ``LeakReport``, ...), also when the cell failed.
        monitor: The per-cell line's monitor, once ``%memguard_cells`` was used.
        tracing: The tracing window ``%memguard_snapshot --trace`` opened,
            until ``--stop``.

    Example:
        ``%load_ext memguard`` registers them; ``%memguard_<name>?`` shows
        each one's help.
    """

    def __init__(self, shell: InteractiveShell) -> None:
        super().__init__(shell)
        self.snapshots: dict[str, Any] = {}
        self.results: dict[str, Any] = {}
        self.monitor: CellMonitor | None = None
        self.tracing: _tracing.PeakWindow | None = None

    @property
    def ip(self) -> InteractiveShell:
        """The shell the magics are registered with."""
        assert self.shell is not None
        return self.shell

    def _evaluate(self, prog: str, source: str) -> Any:
        try:
            code = compile(source, f"<{prog.lstrip('%')}>", "eval")
        except SyntaxError as error:
            raise UsageError(f"{prog}: {source!r} is not a Python expression: "
                             f"{error.msg}") from None
        try:
            return eval(code, self.ip.user_global_ns, self.ip.user_ns)
        except Exception as error:
            raise UsageError(f"{prog}: cannot evaluate {source!r}: "
                             f"{type(error).__name__}: {error}") from None

    # -- snapshots --------------------------------------------------------

    @line_magic
    @documented(parsers.SNAPSHOT, "%memguard_snapshot before\nrun_requests(100)\n"
                                  "%memguard_snapshot after --stop\n"
                                  "%memguard_diff before after")
    def memguard_snapshot(self, line: str) -> Any:
        """Take a named memory snapshot and show it."""
        args = parse_line(parsers.SNAPSHOT, line)
        if args is None:
            return None
        if not args.name.isidentifier():
            raise UsageError(f"%memguard_snapshot: NAME must be a Python identifier, "
                             f"got {args.name!r}")
        if args.trace and args.no_trace:
            raise UsageError("%memguard_snapshot: --trace and --no-trace contradict each other")
        from ..values.snapshot import take_snapshot

        started = self._start_tracing(args)
        value = take_snapshot(args.name, census=args.census)
        if value.reason("sites") is not None:
            value = _untraced(value)
        if args.stop:
            self.stop_tracing()
        if started and not args.trace:
            print("memguard: tracing Python allocations from now on, so that %memguard_diff "
                  "names the lines that allocate (allocation is slower meanwhile); stop with "
                  "`%memguard_snapshot NAME --stop`, or snapshot with --no-trace to never "
                  "start it")
        self.snapshots[args.name] = value
        self.ip.user_ns[args.name] = value
        self.results["snapshot"] = value
        return value

    def _start_tracing(self, args: Any) -> bool:
        """Start the trace a diff needs, unless told not to; whether it started now."""
        if self.tracing is not None or args.no_trace or (args.stop and not args.trace):
            return False
        if not args.trace and tracemalloc.is_tracing():
            return False  # someone else traces (python -X tracemalloc, a record() block)
        self.tracing = _tracing.begin(nframes=1)
        return True

    @line_magic
    @documented(parsers.DIFF, "%memguard_diff before after\n"
                              "%memguard_diff before after --by filename --include '*/app/*'")
    def memguard_diff(self, line: str) -> Any:
        """Show what grew between two snapshots."""
        args = parse_line(parsers.DIFF, line)
        if args is None:
            return None
        from ..values.diff import compare

        value = compare(self._snapshot(args.before), self._snapshot(args.after), by=args.by,
                        include=args.include)
        self.results["diff"] = value
        return value

    def _snapshot(self, name: str) -> Any:
        from ..values.snapshot import Snapshot

        value = self.ip.user_ns.get(name, self.snapshots.get(name))
        if isinstance(value, Snapshot):
            return value
        if value is None:
            raise UsageError(f"%memguard_diff: no snapshot named {name!r}; "
                             f"take one with: %memguard_snapshot {name}")
        raise UsageError(f"%memguard_diff: {name!r} is a {type(value).__name__}, not a Snapshot")

    # -- limits and timelines ---------------------------------------------

    @cell_magic
    @documented(parsers.LIMIT, "%%memguard_limit 50 MB\nrows = load_rows('data.csv')\n\n"
                               "%%memguard_limit 200MiB --source rss\n"
                               "matrix = numpy.ones((5000, 5000))")
    def memguard_limit(self, line: str, cell: str) -> Any:
        """Fail the cell when its peak memory goes over a limit."""
        __tracebackhide__ = True
        args = parse_line(parsers.LIMIT, line)
        if args is None:
            return None
        size = size_argument(args.size, prog=parsers.LIMIT.prog)
        if args.top < 0:
            raise UsageError(f"%%memguard_limit: --top must not be negative, got {args.top}")
        from ..guards.limit import limit

        code = CellCode(self.ip, cell, f"%%memguard_limit {line}")
        guard = limit(size, source=args.source, label=args.label or cell_label(self.ip),
                      top=args.top)
        try:
            with guard:
                value = code.run()
        except CheckFailed as error:
            _show_as_verdict(error, self.ip, f"%%memguard_limit {line}", cell)
            raise
        finally:
            self.results["limit"] = guard.report
        if not args.quiet and guard.report is not None:
            print(f"memguard: {guard.report.summary}")
        return value

    @cell_magic
    @documented(parsers.RECORD, "%%memguard_record --interval 0.005\n"
                                "frame = load_frame()\nsummary = frame.describe()")
    def memguard_record(self, line: str, cell: str) -> Any:
        """Record a timeline of memory while the cell runs and chart it."""
        __tracebackhide__ = True
        args = parse_line(parsers.RECORD, line)
        if args is None:
            return None
        if not args.interval > 0:
            raise UsageError(f"%%memguard_record: --interval must be positive, "
                             f"got {args.interval}")
        from ..guards.record import record

        code = CellCode(self.ip, cell, f"%%memguard_record {line}")
        with record(args.interval, label=args.label or cell_label(self.ip),
                    rss=args.rss) as recording:
            code.run_quietly()
        self.results["record"] = recording.timeline
        return recording.timeline

    # -- leaks ------------------------------------------------------------

    @cell_magic
    @documented(parsers.LEAKS, "%%memguard_leaks --repeat 50 --warmup 5\n"
                               "handle_request(bus, 'alice')")
    def memguard_leaks(self, line: str, cell: str) -> Any:
        """Run the cell repeatedly and show whether it leaks, with its growth chart."""
        __tracebackhide__ = True
        args = parse_line(parsers.LEAKS, line)
        if args is None:
            return None
        from ..exceptions import LeakDetected
        from ..leaks.api import track_leaks

        signals = None if args.signals is None else [
            name.strip() for name in args.signals.split(",") if name.strip()]
        try:
            tracker = track_leaks(repeat=args.repeat, warmup=args.warmup, signals=signals,
                                  max_seconds=args.max_seconds, fail=args.check,
                                  label=args.label or cell_label(self.ip))
        except (TypeError, ValueError) as error:
            raise UsageError(f"%%memguard_leaks: {error}") from None
        code = CellCode(self.ip, cell, f"%%memguard_leaks {line}")
        try:
            report = tracker.check(code.run_quietly)
        except LeakDetected as error:
            self.results["leaks"] = error.report
            _show_as_verdict(error, self.ip, f"%%memguard_leaks {line}", cell)
            raise
        self.results["leaks"] = report
        return report

    @line_magic
    @documented(parsers.HOLDERS, "%memguard_holders session\n"
                                 "%memguard_holders --no-graph bus.handlers['request'][-1]\n"
                                 "%memguard_holders --save holders.png cache.entries[0]")
    def memguard_holders(self, line: str) -> None:
        """Show who holds an object: the reference chain, and a graph with Graphviz."""
        args = parse_line(parsers.HOLDERS, line, code_argument=True)
        if args is None:
            return
        if args.depth < 1 or not args.seconds > 0:
            raise UsageError("%memguard_holders: --depth and --seconds must be positive")
        from .holders import draw_chain, find_holders

        obj = self._evaluate(parsers.HOLDERS.prog, args.expression)
        try:
            answer = find_holders(self.ip, args.expression, obj, max_depth=args.depth,
                                  max_seconds=args.seconds)
            self.results["holders"] = answer
            print(answer)
            if args.graph and answer.search.steps:
                image = draw_chain(answer)
                if isinstance(image, str):
                    print(f"  {image}")
                else:
                    self._show_graph(image, args.expression, args.save)
        finally:
            del obj

    @staticmethod
    def _show_graph(image: bytes, expression: str, save: str | None) -> None:
        from .show import show_png

        where = ""
        if save is not None:
            path = Path(save).expanduser()
            try:
                write_file(path, image)
            except OSError as error:
                raise UsageError(f"%memguard_holders: cannot write {save}: {error}") from None
            where = f", written to {path}"
        show_png(image, f"  graph of what holds {expression}: PNG, "
                        f"{format_size(len(image))}{where}")

    # -- line profiles ----------------------------------------------------

    @line_magic
    @documented(parsers.LINES, "%memguard_lines build_index(rows, key='id')")
    def memguard_lines(self, line: str) -> Any:
        """Show a line-by-line memory profile of one call."""
        args = parse_line(parsers.LINES, line, code_argument=True)
        if args is None:
            return None
        function, positional, keywords = self._call_parts(args.call)
        from ..lines.profile import profile_lines

        try:
            value = profile_lines(function, *positional, **keywords)
        finally:
            del function, positional, keywords
        self.results["lines"] = value
        return value

    def _call_parts(self, call: str) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
        """Evaluate ``f(a, b=c)`` into the function and its arguments, without calling it."""
        try:
            tree = ast.parse(call, mode="eval")
        except SyntaxError as error:
            raise UsageError(f"%memguard_lines: {call!r} is not a Python expression: "
                             f"{error.msg}") from None
        if not isinstance(tree.body, ast.Call):
            raise UsageError(f"%memguard_lines: expected a call such as build(rows), got {call!r}")
        function = self._evaluate("%memguard_lines", ast.unparse(tree.body.func))
        target = getattr(inspect.unwrap(function), "__func__", function)
        if not isinstance(getattr(target, "__code__", None), CodeType):
            raise UsageError(f"%memguard_lines: {ast.unparse(tree.body.func)} is a "
                             f"{type(function).__name__}, not a Python function")
        if inspect.iscoroutinefunction(function) and _loop_running():
            raise UsageError("%memguard_lines: cannot run an async function here, the kernel's "
                             "event loop is running; decorate it with @memguard.profile and "
                             "await it instead")
        # The arguments are evaluated as the call would evaluate them, by the
        # same call expression aimed at a function that returns them.
        tree.body.func = ast.Name("__memguard_arguments__", ast.Load())
        code = compile(ast.fix_missing_locations(tree), "<memguard_lines>", "eval")
        namespace = ChainMap({"__memguard_arguments__": _arguments}, self.ip.user_ns)
        positional, keywords = eval(code, self.ip.user_global_ns, namespace)
        return function, positional, keywords

    # -- per-cell line ----------------------------------------------------

    @line_magic
    @documented(parsers.CELLS, "%memguard_cells on\n%memguard_cells on --rss\n%memguard_cells off")
    def memguard_cells(self, line: str) -> None:
        """Report every cell's peak and retained memory in a line after it."""
        args = parse_line(parsers.CELLS, line)
        if args is None:
            return
        if args.state == "off":
            if self.monitor is None or not self.monitor.enabled:
                print("memguard: the per-cell line is already off")
                return
            self.monitor.disable()
            print("memguard: per-cell line off")
            return
        if self.monitor is not None and self.monitor.enabled:
            self.monitor.disable()
        self.monitor = CellMonitor(self.ip, rss=args.rss)
        self.monitor.enable()
        what = "traced Python heap and process RSS" if args.rss else "traced Python heap"
        print(f"memguard: per-cell line on ({what}), from the next cell")

    def stop_tracing(self) -> None:
        """End the tracing ``%memguard_snapshot --trace`` started, if any."""
        window, self.tracing = self.tracing, None
        if window is not None:
            _tracing.end(window)

    def close(self) -> None:
        """Turn the per-cell line and tracing off; called when the extension unloads."""
        if self.monitor is not None:
            self.monitor.disable()
        self.stop_tracing()


def _show_as_verdict(error: CheckFailed, shell: InteractiveShell, magic: str, cell: str) -> None:
    """Have IPython show a failed check as the user's cell and the verdict, nothing else.

    IPython asks an exception for ``_render_traceback_()`` before formatting
    its frames; the frames of a failed check are memguard's and IPython's
    (``run_cell_magic``, a guard's ``__exit__``), which say nothing to the
    reader. The cell's own lines come first, numbered as the notebook shows
    them, then the verdict.
    """
    header = f"Cell In[{cell_number(shell)}]:"
    source = [magic.rstrip(), *cell.rstrip("\n").splitlines()]
    width = len(str(len(source)))
    listing = "\n".join(f"  {number:>{width}} {text}"
                        for number, text in enumerate(source, start=1))
    plain = str(getattr(shell, "colors", "")).lower() == "nocolor"
    red, reset = ("", "") if plain else ("\x1b[0;31m", "\x1b[0m")
    rendered = [f"{red}{type(error).__name__}{reset}", f"{header}\n{listing}",
                f"{red}{type(error).__name__}{reset}: {error}"]
    error._render_traceback_ = lambda: list(rendered)  # type: ignore[attr-defined]


_UNTRACED = ("tracemalloc was not tracing; take the snapshots with `%memguard_snapshot NAME "
             "--trace` (the default unless --no-trace is given or tracing was stopped)")


def _untraced(value: Any) -> Any:
    """The snapshot with the notebook's way to trace in its 'not traced' reason."""
    absent = tuple((name, _UNTRACED if why.startswith("tracemalloc was not tracing") else why)
                   for name, why in value.absent)
    return dataclasses.replace(value, absent=absent)


def _arguments(*args: Any, **kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return args, kwargs


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
