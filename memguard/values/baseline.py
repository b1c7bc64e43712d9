"""L3 values: :class:`Baseline`, every test's peak memory from one saved run.

A baseline is what ``pytest --memguard-save NAME`` writes and
``--memguard-compare NAME`` reads: versioned JSON, never pickle, so loading a
file runs no code, and a damaged, foreign or newer file gets a
:class:`~memguard.exceptions.SnapshotFormatError` naming the file and what is
wrong with it.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..exceptions import SnapshotFormatError
from ..output import write_file
from ..units import format_size

__all__ = ["BASELINE_FORMAT", "BASELINE_VERSION", "Baseline"]

BASELINE_FORMAT = "memguard-baseline"
"""The ``format`` field of every baseline file."""
BASELINE_VERSION = 1
"""The newest baseline file version this memguard reads and writes."""


def _machine() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(terse=True),
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class Baseline:
    """Every test's peak memory from one run, by pytest node id.

    Example:
        >>> base = Baseline(name="main", source="python",
        ...                 peaks={"tests/test_io.py::test_read": 2_097_152})
        >>> str(base)
        "baseline 'main': 1 test, python peaks, largest 2.0 MiB"
        >>> Baseline.from_dict(base.to_dict()) == base
        True
    """

    name: str
    """The name the run was saved under."""
    source: str
    """What the peaks measure: ``"python"`` (traced heap) or ``"rss"``."""
    peaks: Mapping[str, int]
    """Peak bytes of each test's call, by node id."""
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    """When the run was saved (ISO 8601, UTC)."""
    machine: Mapping[str, str] = field(default_factory=_machine)
    """The Python version and platform of the run, for the reader."""

    def __str__(self) -> str:
        count = len(self.peaks)
        largest = format_size(max(self.peaks.values(), default=0))
        tests = "1 test" if count == 1 else f"{count} tests"
        return f"baseline {self.name!r}: {tests}, {self.source} peaks, largest {largest}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` reverses it."""
        return {
            "format": BASELINE_FORMAT,
            "version": BASELINE_VERSION,
            "name": self.name,
            "source": self.source,
            "created": self.created,
            "machine": dict(self.machine),
            "tests": {nodeid: {"peak_bytes": peak} for nodeid, peak in sorted(self.peaks.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, path: object = "<dict>") -> Baseline:
        """Rebuild a baseline from :meth:`to_dict`'s output.

        Args:
            data: The parsed JSON.
            path: The file it came from, for error messages.

        Raises:
            SnapshotFormatError: *data* is not a memguard baseline, is from a
                newer memguard, or has a malformed field.
        """
        if not isinstance(data, Mapping) or data.get("format") != BASELINE_FORMAT:
            raise SnapshotFormatError(path, f"not a memguard baseline (no \"format\": "
                                            f"{BASELINE_FORMAT!r} field)")
        version = data.get("version")
        if not isinstance(version, int) or version < 1:
            raise SnapshotFormatError(path, f"bad baseline version {version!r}")
        if version > BASELINE_VERSION:
            raise SnapshotFormatError(path, f"baseline version {version} is newer than this "
                                            f"memguard reads ({BASELINE_VERSION}); upgrade it")
        try:
            tests = data["tests"]
            peaks = {str(nodeid): _peak(entry) for nodeid, entry in tests.items()}
            return cls(name=str(data["name"]), source=str(data["source"]), peaks=peaks,
                       created=str(data.get("created", "")),
                       machine={str(k): str(v) for k, v in data.get("machine", {}).items()})
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise SnapshotFormatError(path, f"malformed baseline: {error!r}") from error

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the baseline as JSON, creating the folder; returns the path.

        Written by :func:`memguard.output.write_file`: through a symbolic
        link, never over a device, FIFO or directory, and renamed into place,
        so a reader never sees half a file.
        """
        return write_file(path, json.dumps(self.to_dict(), indent=1) + "\n", make_folder=True)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Baseline:
        """Read a baseline written by :meth:`save`.

        Raises:
            FileNotFoundError: There is no such file.
            SnapshotFormatError: The file is not valid JSON or not a baseline.
        """
        try:
            text = Path(path).read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise SnapshotFormatError(path, "not a text file") from error
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise SnapshotFormatError(path, f"not valid JSON ({error})") from error
        except RecursionError:
            raise SnapshotFormatError(path, "not a baseline: JSON nested too deeply") from None
        except ValueError as error:  # an integer too long to convert
            raise SnapshotFormatError(path, f"not a baseline: {error}") from None
        return cls.from_dict(data, path=path)


def _peak(entry: Any) -> int:
    peak = entry["peak_bytes"]
    if isinstance(peak, bool) or not isinstance(peak, int) or peak < 0:
        raise ValueError(f"peak_bytes must be a non-negative int, got {peak!r}")
    return peak
