"""L7 program runner: SIGINT and SIGTERM during a run, so that what was measured is kept.

While the program runs, Ctrl-C (SIGINT) raises :class:`KeyboardInterrupt`
in it, as under ``python``, and SIGTERM (what ``timeout``, a CI cancel and
``docker stop`` send) raises :class:`Terminated`: the program unwinds (its
``finally`` blocks run), :meth:`Program.execute
<memguard.program.launch.Program.execute>` records exit code ``128 +
signal`` (130, 143), and the run is reported. Once the program has ended,
:meth:`Interruptions.hold` takes over: a further SIGINT or SIGTERM is held,
with one line on stderr, until the report is written, so a second Ctrl-C
cannot lose the run. (SIGKILL, or SIGQUIT, still stops at once.)
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from types import FrameType, TracebackType

from ._agent import Terminated

__all__ = ["Interruptions", "Terminated", "signal_name"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def signal_name(signum: int) -> str:
    """``"SIGTERM"`` for 15, and so on.

    Example:
        >>> signal_name(15)
        'SIGTERM'
    """
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Interruptions:
    """SIGINT and SIGTERM handlers for a run, as a context manager (main thread only).

    Elsewhere (another thread) it does nothing: Python delivers signals to
    the main thread only. The handlers found on entry are restored on exit.

    Args:
        notice: What to say on stderr when a signal is held, given the
            signal's name (the caller knows where the report goes).

    Example:
        >>> with Interruptions() as interruptions:
        ...     pass
        >>> interruptions.received is None
        True
    """

    def __init__(self, notice: str = "finishing the report first") -> None:
        self.notice = notice
        self.received: int | None = None
        """The first signal received, or ``None``."""
        self.held = False
        """Whether a signal came once the program had ended (and was held)."""
        self.holding = False
        self._saved: dict[int, object] = {}

    @property
    def exit_code(self) -> int | None:
        """``128 + signal`` for the first signal received (130 for Ctrl-C), or ``None``."""
        return None if self.received is None else 128 + self.received

    def __enter__(self) -> Interruptions:
        if threading.current_thread() is threading.main_thread():
            for signum in _SIGNALS:
                self._saved[signum] = signal.getsignal(signum)
                signal.signal(signum, self._raise)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._saved.clear()

    def hold(self) -> None:
        """From now on, hold SIGINT and SIGTERM instead of raising them.

        Called when the program has ended; the handlers are installed again,
        in case the program replaced them. Says on stderr, once, that an
        interrupted run is being written.
        """
        self.holding = True
        if not self._saved:
            return
        for signum in _SIGNALS:
            signal.signal(signum, self._hold)
        if self.received is not None:
            self._say(f"memguard: {signal_name(self.received)} received: {self.notice}\n")

    def _raise(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(signum)

    def _hold(self, signum: int, frame: FrameType | None) -> None:
        again = self.received is not None
        self.held = True
        if self.received is None:
            self.received = signum
        self._say(f"memguard: {signal_name(signum)} received{' again' if again else ''}: "
                  f"{self.notice}\n")

    @staticmethod
    def _say(text: str) -> None:
        # os.write, not print: a handler may run in the middle of a write to
        # sys.stderr, and the buffered stream is not reentrant.
        with contextlib.suppress(OSError):
            os.write(2, text.encode("utf-8", "replace"))
