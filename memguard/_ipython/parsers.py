"""L9 front end: the option parsers of memguard's magics, one per magic.

Their help is what ``%memguard_<name>?`` and ``-h`` show, so every option is
described here, with its default.
"""

from __future__ import annotations

from ..leaks.options import DEFAULTS as LEAK_DEFAULTS
from .options import MagicParser

__all__ = ["CELLS", "DIFF", "HOLDERS", "LEAKS", "LIMIT", "LINES", "RECORD", "SNAPSHOT"]

SNAPSHOT = MagicParser(prog="%memguard_snapshot", description=(
    "Take a snapshot of memory (traced allocation sites, live objects by type,\n"
    "process memory), keep it under NAME in the user namespace, and show it."))
SNAPSHOT.add_argument("name", metavar="NAME", help="a Python identifier to keep it under")
SNAPSHOT.add_argument("--no-census", dest="census", action="store_false",
                      help="skip the count of live objects by type (faster on big heaps)")
SNAPSHOT.add_argument("--trace", action="store_true",
                      help="first start tracing Python allocations, and keep tracing until "
                           "--stop, so that this and later snapshots name allocation sites "
                           "(the default when nothing traces yet)")
SNAPSHOT.add_argument("--no-trace", dest="no_trace", action="store_true",
                      help="do not start tracing: the snapshot has no allocation sites unless "
                           "something else traces, and allocation runs at full speed")
SNAPSHOT.add_argument("--stop", action="store_true",
                      help="after this snapshot, stop the tracing that --trace started")

DIFF = MagicParser(prog="%memguard_diff", description=(
    "Compare two snapshots taken with %memguard_snapshot (or Snapshot values in the\n"
    "namespace) and show what grew from A to B: allocation sites, types, process\n"
    "memory."))
DIFF.add_argument("before", metavar="A", help="the earlier snapshot's name")
DIFF.add_argument("after", metavar="B", help="the later snapshot's name")
DIFF.add_argument("--by", choices=("lineno", "filename", "traceback"), default="lineno",
                  help="group allocation sites by line (default), file or traceback")
DIFF.add_argument("--include", action="append", default=None, metavar="GLOB",
                  help="only sites whose file matches GLOB (repeatable)")

LIMIT = MagicParser(prog="%%memguard_limit", description=(
    "Run the cell under a peak-memory limit. Over the limit, the cell fails with\n"
    "MemoryLimitExceeded and the same message as a test; otherwise one line reports\n"
    "the peak. The cell's last value is its output, as without the magic."))
LIMIT.add_argument("size", metavar="SIZE", nargs="+",
                   help="the limit: '100 MB', 50MiB, 1.5 GiB, 1000000 (bytes)")
LIMIT.add_argument("--source", choices=("python", "rss"), default="python",
                   help="python: the traced Python heap (exact, default); "
                        "rss: process memory, native allocations included")
LIMIT.add_argument("--label", default=None, help="what to call the cell in the message")
LIMIT.add_argument("--top", type=int, default=5,
                   help="allocation sites listed on failure (default: 5)")
LIMIT.add_argument("-q", "--quiet", action="store_true",
                   help="print nothing when the cell stays under the limit")

LEAKS = MagicParser(prog="%%memguard_leaks", description=(
    "Run the cell repeatedly (compiled once, executed in the notebook's namespace)\n"
    "and judge whether each run keeps memory, objects, file descriptors or threads.\n"
    "Shows the verdict with its growth chart; the verdict is the cell's output."))
LEAKS.add_argument("--repeat", type=int, default=LEAK_DEFAULTS.repeat, metavar="N",
                   help="measure exactly N runs (default: as many as the time budget and the "
                        "growth seen call for)")
LEAKS.add_argument("--warmup", type=int, default=LEAK_DEFAULTS.warmup, metavar="N",
                   help="runs before measuring, so caches fill and imports happen "
                        f"(default: {LEAK_DEFAULTS.warmup})")
LEAKS.add_argument("--signals", default=None, metavar="LIST",
                   help="comma-separated signals to measure, of python, objects, native, "
                        "fds, threads (default: all)")
LEAKS.add_argument("--max-seconds", type=float, default=LEAK_DEFAULTS.max_seconds,
                   metavar="SECONDS", help="the time budget of the whole check "
                                           f"(default: {LEAK_DEFAULTS.max_seconds:g})")
LEAKS.add_argument("--label", default=None, help="what to call the cell in the verdict")
LEAKS.add_argument("--assert", dest="check", action="store_true",
                   help="fail the cell with LeakDetected when it leaks, like a test")

HOLDERS = MagicParser(prog="%memguard_holders", description=(
    "Who holds this object? Prints the chain of references from a root (a module\n"
    "global, a class attribute, a thread's local variable) to the object, and draws\n"
    "that chain when Graphviz's `dot` is installed. The notebook's own\n"
    "names for the object and IPython's output cache are set aside and listed."))
HOLDERS.add_argument("expression", metavar="EXPR",
                     help="a Python expression for the object, evaluated in the notebook")
HOLDERS.add_argument("--depth", type=int, default=15,
                     help="longest chain searched, in references (default: 15)")
HOLDERS.add_argument("--seconds", type=float, default=2.0,
                     help="time budget of the search (default: 2.0)")
HOLDERS.add_argument("--no-graph", dest="graph", action="store_false",
                     help="print the chain only")
HOLDERS.add_argument("--save", default=None, metavar="FILE",
                     help="also write the graph to FILE (PNG), e.g. from a terminal IPython")

RECORD = MagicParser(prog="%%memguard_record", description=(
    "Record memory while the cell runs (traced Python heap and process RSS, sampled)\n"
    "and show the timeline as a chart; the timeline is the cell's output."))
RECORD.add_argument("--interval", type=float, default=0.01, metavar="SECONDS",
                    help="seconds between samples (default: 0.01)")
RECORD.add_argument("--no-rss", dest="rss", action="store_false",
                    help="sample the traced Python heap only")
RECORD.add_argument("--label", default=None, help="what to call the timeline")

LINES = MagicParser(prog="%memguard_lines", description=(
    "Call a function once and show its line-by-line memory profile: what each line\n"
    "allocated, what it still held at return, and its share of the peak. Works for\n"
    "functions defined in the notebook. The arguments are evaluated first, outside\n"
    "the profile."))
LINES.add_argument("call", metavar="CALL", help="a call expression, such as build_index(rows)")

CELLS = MagicParser(prog="%memguard_cells", description=(
    "Print a line after every cell with its peak and retained memory (traced Python\n"
    "heap), or stop doing so. While on, cells run under tracemalloc, which slows\n"
    "allocation-heavy code."))
CELLS.add_argument("state", choices=("on", "off"), help="turn the line on or off")
CELLS.add_argument("--rss", action="store_true",
                   help="also report each cell's peak process RSS (native memory too)")
