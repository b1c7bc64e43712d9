"""L1 foundation: every exception memguard raises, in one place.

The tree::

    MemguardError(Exception)
    ├── TracingError(MemguardError, RuntimeError)
    │       tracemalloc is unavailable, or in a state memguard cannot share
    ├── MeasurementUnavailable(MemguardError, RuntimeError)
    │       a figure cannot be measured here (no psutil figure, no /proc, ...)
    ├── SnapshotFormatError(MemguardError, ValueError)
    │       a saved file is damaged, truncated, foreign or from a newer version
    ├── OutputRefused(MemguardError, OSError)
    │       memguard will not write there: not a regular file (a device,
    │       a FIFO, a directory), or it exists and overwriting was not asked for
    ├── CommandError(MemguardError)
    │       the command line refuses its input; carries ``exit_code``
    └── CheckFailed(MemguardError, AssertionError)
        │   a memory check failed; pytest and unittest report it as a failure
        ├── MemoryLimitExceeded
        │       a peak went over its limit
        └── LeakDetected
                memory, objects or resources kept across calls, or watched
                objects that survived

Bad arguments raise plain :class:`ValueError` or :class:`TypeError`, as
:mod:`tracemalloc` does. Check failures subclass :class:`AssertionError` so
that ``pytest.raises(AssertionError)`` works and a failed check reads as a
failed assertion, inside and outside pytest.

Messages are built by the code that raises, from the values' own
``__str__`` and :func:`memguard.units.format_size`; this module imports
nothing from memguard.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CheckFailed",
    "CommandError",
    "LeakDetected",
    "MeasurementUnavailable",
    "MemguardError",
    "MemoryLimitExceeded",
    "OutputRefused",
    "SnapshotFormatError",
    "TracingError",
]


class MemguardError(Exception):
    """Base class of every exception memguard raises on purpose."""


class TracingError(MemguardError, RuntimeError):
    """tracemalloc is unavailable, or in a state memguard cannot share."""


class MeasurementUnavailable(MemguardError, RuntimeError):
    """A figure cannot be measured on this platform or in this process.

    memguard raises this instead of reporting 0 or a different figure under
    the same name.
    """


class SnapshotFormatError(MemguardError, ValueError):
    """A saved memguard file is damaged, truncated, foreign or too new.

    Attributes:
        path: The file that could not be read, as given.
        reason: What is wrong with it, in one phrase.
    """

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class OutputRefused(MemguardError, OSError):
    """memguard will not write a file at this path (see :mod:`memguard.output`).

    Something other than a regular file is there (a device node such as
    ``/dev/full``, a FIFO, a socket, a directory), possibly at the end of a
    symbolic link, or a file exists and overwriting was not asked for.
    Nothing was written.

    Attributes:
        path: The path as given.
        reason: What is there, in one phrase.
        exists: The refusal is only that a file exists (``--force`` or
            ``overwrite=True`` would replace it).
    """

    def __init__(self, path: object, reason: str, *, exists: bool = False) -> None:
        self.path = str(path)
        self.reason = reason
        self.exists = exists
        super().__init__(f"{self.path}: {reason}")

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class CommandError(MemguardError):
    """The ``memguard`` command refuses its input.

    Attributes:
        exit_code: The process exit code the command line returns (2 for
            usage errors, 1 for failed checks and unreadable files).
    """

    def __init__(self, message: str, *, exit_code: int = 2) -> None:
        self.exit_code = exit_code
        super().__init__(message)


class CheckFailed(MemguardError, AssertionError):
    """A memory check failed.

    Attributes:
        label: Where the check ran: a function's qualified name, or the
            ``file:line`` of a ``with`` block.
        details: Everything the check measured (a ``LimitReport``,
            ``LeakReport``, ...), or ``None``.
    """

    def __init__(self, message: str, *, label: str = "", details: Any = None) -> None:
        self.label = label
        self.details = details
        super().__init__(message)


class MemoryLimitExceeded(CheckFailed):
    """A block's peak memory went over its limit.

    Attributes:
        peak_above_start_bytes: The peak measured above the block's starting level.
        limit_bytes: The limit that was set.
        source: ``"python"`` (traced Python heap) or ``"rss"`` (process).
    """

    def __init__(
        self,
        message: str,
        *,
        peak_above_start_bytes: int,
        limit_bytes: int,
        source: str,
        label: str = "",
        details: Any = None,
    ) -> None:
        self.peak_above_start_bytes = peak_above_start_bytes
        self.limit_bytes = limit_bytes
        self.source = source
        super().__init__(message, label=label, details=details)

    @property
    def overshoot_bytes(self) -> int:
        """How far the peak went over the limit, in bytes."""
        return self.peak_above_start_bytes - self.limit_bytes

    @property
    def peak_bytes(self) -> int:
        """Deprecated: :attr:`peak_above_start_bytes`."""
        import warnings

        warnings.warn("MemoryLimitExceeded.peak_bytes is renamed "
                      "MemoryLimitExceeded.peak_above_start_bytes (a figure above the start "
                      "says so in its name)", DeprecationWarning, stacklevel=2)
        return self.peak_above_start_bytes


class LeakDetected(CheckFailed):
    """Memory, objects or resources were kept across calls, or watched
    objects survived.

    Attributes:
        report: The ``LeakReport`` (or watch result) behind the verdict.
    """

    def __init__(self, message: str, *, report: Any = None, label: str = "") -> None:
        self.report = report
        super().__init__(message, label=label, details=report)
