"""L9 front end: pytest-memray's ``limit_leaks``, measured with tracemalloc.

pytest-memray fails a ``limit_leaks(location_limit)`` test when one
allocation stack keeps ``location_limit`` bytes or more once the test is
over. memguard does the same with tracemalloc: a snapshot when the call
begins, another after the call and a ``gc.collect()``, grouped by full
traceback. The ``filter_fn`` gets a :class:`Stack` shaped like
pytest-memray's (``stack.frames``, innermost first, each with ``function``,
``filename`` and ``lineno``); tracemalloc records no function names, so
memguard reads them from the source file, and writes ``"???"`` where it
cannot, as pytest-memray does for unknown frames.
"""

from __future__ import annotations

import functools
import gc
import linecache
import re
import tracemalloc
from dataclasses import dataclass

from .. import _tracing, traces
from ..exceptions import LeakDetected
from ..units import format_size
from ..values.site import is_internal
from .markers import MemrayLeaks

__all__ = ["MemrayLeakCheck", "Stack", "StackFrame"]

_FRAMES = 25
_SHOWN = 5


@dataclass(frozen=True, slots=True)
class StackFrame:
    """One frame of an allocation's stack, as pytest-memray's filter sees it."""

    function: str
    filename: str
    lineno: int


@dataclass(frozen=True, slots=True)
class Stack:
    """An allocation's stack, innermost frame first."""

    frames: tuple[StackFrame, ...]


_DEFINITION = re.compile(r"(?:async\s+)?def\s+(\w+)|class\s+(\w+)")


@functools.lru_cache(maxsize=4096)
def _function_at(filename: str, lineno: int) -> str:
    """The name of the function (or class body) that line *lineno* of *filename* is in.

    The lines above are read backwards for the nearest ``def`` or ``class``
    indented less than the line, as a reader would. Parsing the file instead
    (``ast``) cost 1.1 s on the first failing test of a suite, for the few
    dozen pytest and pluggy files in every stack (issue 17); this reads only
    the lines between the frame and its ``def``, from linecache's copy.
    """
    lines = linecache.getlines(filename)
    if not 0 < lineno <= len(lines):
        return "???"
    line = lines[lineno - 1]
    indent = len(line) - len(line.lstrip()) if line.strip() else 1 << 30
    for above in reversed(lines[:lineno - 1]):
        text = above.lstrip()
        if not text or text.startswith("#"):
            continue
        depth = len(above) - len(text)
        if depth >= indent:
            continue
        match = _DEFINITION.match(text)
        if match:
            return match[1] or match[2]
        indent = depth
        if depth == 0:
            break
    return "<module>"


def _stack(frames: list[tuple[str, int]]) -> Stack:
    """A filter's view of *frames* ``(filename, lineno)``, which are innermost first."""
    return Stack(tuple(StackFrame(_function_at(filename, lineno), filename, lineno)
                       for filename, lineno in frames))


class MemrayLeakCheck:
    """The tracemalloc measurement behind one ``limit_leaks`` test."""

    def __init__(self, spec: MemrayLeaks, label: str) -> None:
        self.spec = spec
        self.label = label
        self._window = _tracing.begin(nframes=_FRAMES)
        with _tracing.excluded():
            self._before = tracemalloc.take_snapshot()

    def finish(self, *, judge: bool) -> None:
        """Close the trace; raise :class:`LeakDetected` if *judge* and a stack kept too much."""
        __tracebackhide__ = True
        try:
            if judge:
                gc.collect()
                with _tracing.excluded():
                    after = tracemalloc.take_snapshot()
                    leaks = self._leaks(after)
                    del after
        finally:
            self._before = None  # type: ignore[assignment]
            _tracing.end(self._window)
        if judge and leaks:
            raise LeakDetected(self._message(leaks), label=self.label)

    def _leaks(self, after: tracemalloc.Snapshot) -> list[tuple[int, int, Stack]]:
        found = []
        # memguard's own allocations and the import machinery's are the
        # named remainder of the grouping, never a test's leak.
        grown = traces.changes(traces.group(after, "traceback"),
                               traces.group(self._before, "traceback")).grown
        for site in grown:
            if site.size_bytes < self.spec.location_limit_bytes:
                continue
            frames = [f for f in site.frames if not is_internal(f[0])]  # innermost first
            if not frames:
                continue
            stack = _stack(frames)
            if self.spec.filter_fn is not None and not self.spec.filter_fn(stack):
                continue
            found.append((site.size_bytes, site.count, stack))
        found.sort(key=lambda leak: -leak[0])
        return found

    def _message(self, leaks: list[tuple[int, int, Stack]]) -> str:
        limit_text = format_size(self.spec.location_limit_bytes)
        lines = [f"Leak detected in {self.label}: {len(leaks)} allocation stack(s) kept "
                 f"{limit_text} or more after the test (limit_leaks), "
                 f"{format_size(sum(size for size, _, _ in leaks))} in all"]
        for size, count, stack in leaks[:_SHOWN]:
            top = stack.frames[0]
            lines.append(f"    {format_size(size)} in {count} blocks at {top.filename}:"
                         f"{top.lineno} ({top.function})")
        if len(leaks) > _SHOWN:
            lines.append(f"    ... {len(leaks) - _SHOWN} more stacks")
        return "\n".join(lines)
