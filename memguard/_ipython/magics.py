"""L6 front end: memguard's IPython magics.

Each magic parses its options (:mod:`.options`), runs the cell through
:class:`.code.CellCode` inside the public guard a test would use, and hands
the resulting value to IPython, which shows it as HTML with charts in a
notebook and as the text report in a terminal (:mod:`.show`). The magics
hold memguard's plain values, never the user's objects.
"""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class

from ..guards.limit import limit
from .cells import CellMonitor
from .code import CellCode, cell_label
from .options import MagicParser, documented, parse_line, size_argument

__all__ = ["MemguardMagics"]

_SNAPSHOT = MagicParser(prog="%memguard_snapshot", description=(
    "Take a snapshot of memory (traced allocation sites, live objects by type, process\n"
    "memory), keep it under NAME in the user namespace, and show it."))
_SNAPSHOT.add_argument("name", metavar="NAME", help="a Python identifier to keep it under")
_SNAPSHOT.add_argument("--no-census", dest="census", action="store_false",
                       help="skip the count of live objects by type (faster on big heaps)")

_DIFF = MagicParser(prog="%memguard_diff", description=(
    "Compare two snapshots taken with %memguard_snapshot (or Snapshot values in the\n"
    "namespace) and show what grew from A to B: allocation sites, types, process memory."))
_DIFF.add_argument("before", metavar="A", help="the earlier snapshot's name")
_DIFF.add_argument("after", metavar="B", help="the later snapshot's name")

_LIMIT = MagicParser(prog="%%memguard_limit", description=(
    "Run the cell under a peak-memory limit. Over the limit, the cell fails with\n"
    "MemoryLimitExceeded and the same message as a test; otherwise one line reports\n"
    "the peak. The cell's last value is its output, as without the magic."))
_LIMIT.add_argument("size", metavar="SIZE", nargs="+",
                    help="the limit: '100 MB', 50MiB, 1.5 GiB, 1000000 (bytes)")
_LIMIT.add_argument("--source", choices=("python", "rss"), default="python",
                    help="python: the traced Python heap (exact, default); "
                         "rss: process memory, native allocations included")
_LIMIT.add_argument("--label", default=None, help="what to call the cell in the message")
_LIMIT.add_argument("--top", type=int, default=5,
                    help="allocation sites listed on failure (default: 5)")
_LIMIT.add_argument("-q", "--quiet", action="store_true",
                    help="print nothing when the cell stays under the limit")

_CELLS = MagicParser(prog="%memguard_cells", description=(
    "Print a line after every cell with its peak and retained memory (traced Python\n"
    "heap), or stop doing so. While on, cells run under tracemalloc, which slows\n"
    "allocation-heavy code."))
_CELLS.add_argument("state", choices=("on", "off"), help="turn the line on or off")
_CELLS.add_argument("--rss", action="store_true",
                    help="also report each cell's peak process RSS (native memory too)")


@magics_class
class MemguardMagics(Magics):
    """The magics ``%load_ext memguard`` registers.

    Attributes:
        snapshots: The snapshots taken with ``%memguard_snapshot``, by name.
        results: The last value each magic produced, by magic name without
            the prefix (``"limit"``: a ``LimitReport``, ``"leaks"``: a
            ``LeakReport``, ...), also when the cell failed.
        monitor: The per-cell line's monitor, once ``%memguard_cells`` was used.

    Example:
        ``%load_ext memguard`` registers them; ``%memguard_<name>?`` shows
        each one's help.
    """

    def __init__(self, shell: InteractiveShell) -> None:
        super().__init__(shell)
        self.snapshots: dict[str, Any] = {}
        self.results: dict[str, Any] = {}
        self.monitor: CellMonitor | None = None

    @property
    def ip(self) -> InteractiveShell:
        """The shell the magics are registered with."""
        assert self.shell is not None
        return self.shell

    # -- snapshots --------------------------------------------------------

    @line_magic
    @documented(_SNAPSHOT, "%memguard_snapshot before\nrun_requests(100)\n"
                           "%memguard_snapshot after\n%memguard_diff before after")
    def memguard_snapshot(self, line: str) -> Any:
        """Take a named memory snapshot and show it."""
        args = parse_line(_SNAPSHOT, line)
        if args is None:
            return None
        if not args.name.isidentifier():
            raise UsageError(f"%memguard_snapshot: NAME must be a Python identifier, "
                             f"got {args.name!r}")
        from ..values.snapshot import take_snapshot

        value = take_snapshot(args.name, census=args.census)
        self.snapshots[args.name] = value
        self.ip.user_ns[args.name] = value
        return value

    @line_magic
    @documented(_DIFF, "%memguard_diff before after")
    def memguard_diff(self, line: str) -> Any:
        """Show what grew between two snapshots."""
        args = parse_line(_DIFF, line)
        if args is None:
            return None
        from ..values.diff import compare

        return compare(self._snapshot(args.before), self._snapshot(args.after))

    def _snapshot(self, name: str) -> Any:
        from ..values.snapshot import Snapshot

        value = self.ip.user_ns.get(name, self.snapshots.get(name))
        if isinstance(value, Snapshot):
            return value
        if value is None:
            raise UsageError(f"%memguard_diff: no snapshot named {name!r}; "
                             f"take one with: %memguard_snapshot {name}")
        raise UsageError(f"%memguard_diff: {name!r} is a {type(value).__name__}, not a Snapshot")

    # -- limits -----------------------------------------------------------

    @cell_magic
    @documented(_LIMIT, "%%memguard_limit 50 MB\nrows = load_rows('data.csv')\n\n"
                        "%%memguard_limit 200MiB --source rss\nmatrix = numpy.ones((5000, 5000))")
    def memguard_limit(self, line: str, cell: str) -> Any:
        """Fail the cell when its peak memory goes over a limit."""
        __tracebackhide__ = True
        args = parse_line(_LIMIT, line)
        if args is None:
            return None
        size = size_argument(args.size, prog=_LIMIT.prog)
        if args.top < 0:
            raise UsageError(f"%%memguard_limit: --top must not be negative, got {args.top}")
        code = CellCode(self.ip, cell)
        guard = limit(size, source=args.source, label=args.label or cell_label(self.ip),
                      top=args.top)
        try:
            with guard:
                value = code.run()
        finally:
            self.results["limit"] = guard.report
        if not args.quiet:
            print(f"memguard: {guard.report}")
        return value

    # -- per-cell line ----------------------------------------------------

    @line_magic
    @documented(_CELLS, "%memguard_cells on\n%memguard_cells on --rss\n%memguard_cells off")
    def memguard_cells(self, line: str) -> None:
        """Report every cell's peak and retained memory in a line after it."""
        args = parse_line(_CELLS, line)
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

    def close(self) -> None:
        """Turn the per-cell line off; called when the extension unloads."""
        if self.monitor is not None:
            self.monitor.disable()

