"""L9 front end: the opt-in memory line after every cell (``%memguard_cells on``).

IPython fires ``pre_run_cell`` before a cell runs and ``post_run_cell`` after
it, even when it fails. The monitor opens a peak window of the shared
tracemalloc owner (and, with ``rss``, of the kernel's RSS high-water mark) in
the first and closes it in the second, then prints one line::

    memguard: In[4] peak 38.1 MiB, retained +7.6 MiB (traced Python heap)

Tracing stays on from ``%memguard_cells on`` to ``off`` (one outer window),
so that memory a cell allocates and a later cell frees shows as a negative
*retained*: tracemalloc forgets every block when it stops. Cell windows are
kept on a stack, so a cell that runs another cell (a nested ``run_cell``)
is measured correctly. Turning the line off unregisters both callbacks and
closes every window still open, which also stops tracemalloc if memguard
started it.

Note:
    While the line is on, code runs under tracemalloc, which slows
    allocation-heavy Python code (typically 1.5-3x). Memory allocated before
    the line was turned on is not traced, so freeing it does not count.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import _tracing, process
from ..exceptions import TracingError
from ..units import format_size
from .code import cell_number

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__all__ = ["CellMemory", "CellMonitor"]


@dataclass(frozen=True, slots=True)
class CellMemory:
    """What one cell used, as the per-cell line reports it.

    Example:
        >>> str(CellMemory("In[3]", peak_bytes=2048, retained_bytes=-512))
        'memguard: In[3] peak 2.0 KiB, retained -512 B (traced Python heap)'
    """

    cell: str
    """The cell's prompt, ``In[N]``."""
    peak_bytes: int
    """The traced Python heap's peak above its level when the cell began."""
    retained_bytes: int
    """How much the traced Python heap grew from the start to the end of the cell."""
    rss_peak_bytes: int | None = None
    """The process's peak RSS above its level when the cell began, when asked for."""
    rss_method: str = ""
    """How the RSS peak was measured (``"kernel-hwm"`` or ``"sampled"``)."""

    def __str__(self) -> str:
        text = (f"memguard: {self.cell} peak {format_size(self.peak_bytes)}, retained "
                f"{format_size(self.retained_bytes, signed=True)} (traced Python heap)")
        if self.rss_peak_bytes is not None:
            text += f"; RSS peak +{format_size(self.rss_peak_bytes)} ({self.rss_method})"
        return text


@dataclass(slots=True)
class _Open:
    cell: str
    window: _tracing.PeakWindow
    rss: process.RssWindow | None


class CellMonitor:
    """Measures every cell while it is enabled and prints one line after it.

    Args:
        shell: The IPython shell whose cells are measured.
        rss: Also report the process's peak RSS (native allocations too).

    Attributes:
        last: The measurement of the last finished cell, or ``None``.

    Example:
        ``CellMonitor(shell).enable()`` is what ``%memguard_cells on`` does.
    """

    def __init__(self, shell: InteractiveShell, *, rss: bool = False) -> None:
        self.shell = shell
        self.rss = rss
        self.last: CellMemory | None = None
        self._open: list[_Open] = []
        self._session: _tracing.PeakWindow | None = None
        self._enabled = False

    @property
    def enabled(self) -> bool:
        """Whether the callbacks are registered."""
        return self._enabled

    def enable(self) -> None:
        """Register the callbacks; the next cell is the first measured."""
        if not self._enabled:
            self._session = _tracing.begin()
            self.shell.events.register("pre_run_cell", self.pre_run_cell)
            self.shell.events.register("post_run_cell", self.post_run_cell)
            self._enabled = True

    def disable(self) -> None:
        """Unregister the callbacks and close the windows still open."""
        if self._enabled:
            self.shell.events.unregister("pre_run_cell", self.pre_run_cell)
            self.shell.events.unregister("post_run_cell", self.post_run_cell)
            self._enabled = False
        while self._open:
            entry = self._open.pop()
            # tracemalloc stopped under the cell leaves nothing to close.
            with contextlib.suppress(TracingError):
                self._close(entry)
        session, self._session = self._session, None
        if session is not None:
            with contextlib.suppress(TracingError):
                _tracing.end(session)

    def pre_run_cell(self, info: Any) -> None:
        """Open the cell's windows (IPython's ``pre_run_cell`` event)."""
        del info
        rss = process.begin_rss() if self.rss else None
        window = _tracing.begin()
        self._open.append(_Open(f"In[{cell_number(self.shell)}]", window, rss))

    def post_run_cell(self, result: Any) -> None:
        """Close the cell's windows and print its line (``post_run_cell``)."""
        del result
        if not self._open:
            return  # the cell that turned the line on was not measured
        entry = self._open.pop()
        try:
            self.last = self._close(entry)
        except TracingError as error:
            print(f"memguard: {entry.cell} not measured: {error}")
            return
        print(self.last)

    @staticmethod
    def _close(entry: _Open) -> CellMemory:
        window = _tracing.end(entry.window)
        rss = process.end_rss(entry.rss) if entry.rss is not None else None
        return CellMemory(
            entry.cell,
            peak_bytes=window.peak_bytes,
            retained_bytes=(window.end_bytes or 0) - window.start_bytes,
            rss_peak_bytes=rss.peak_bytes if rss is not None else None,
            rss_method=rss.method if rss is not None else "",
        )
