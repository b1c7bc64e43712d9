"""L4 values: :class:`Baseline`, every test's peak memory over the runs saved under one name.

A baseline is what ``pytest --memguard-save NAME`` writes and
``--memguard-compare NAME`` reads: versioned JSON, never pickle, so loading a
file runs no code, and a damaged, foreign or newer file gets a
:class:`~memguard.exceptions.SnapshotFormatError` naming the file and what is
wrong with it.

A baseline is a record, not one run: saving again under the same name adds
that run's peaks to each test's record (the last :data:`KEPT_RUNS` are kept),
so a test whose peak moves from run to run carries the spread it showed, and
a comparison can allow for it. Version 1 files (one peak per test) are still
read, as a record of one run.
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

__all__ = ["BASELINE_FORMAT", "BASELINE_VERSION", "KEPT_RUNS", "Baseline"]

BASELINE_FORMAT = "memguard-baseline"
"""The ``format`` field of every baseline file."""
BASELINE_VERSION = 2
"""The newest baseline file version this memguard reads and writes (1: one peak per test)."""
KEPT_RUNS = 20
"""How many of a test's latest recorded peaks a baseline keeps."""


def _machine() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(terse=True),
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class Baseline:
    """Every test's peak memory over the runs recorded, by pytest node id.

    Give ``peaks`` (one run) or ``runs`` (each test's recorded peaks, oldest
    first); the other is derived. ``peaks`` is then each test's *highest*
    recorded peak, the figure a comparison starts from.

    Example:
        >>> base = Baseline(name="main", source="python",
        ...                 peaks={"tests/test_io.py::test_read": 2_097_152})
        >>> str(base)
        "baseline 'main': 1 test, python peaks, largest 2.0 MiB"
        >>> Baseline.from_dict(base.to_dict()) == base
        True
        >>> again = base.add_run({"tests/test_io.py::test_read": 1_048_576})
        >>> again.runs["tests/test_io.py::test_read"], again.spread("tests/test_io.py::test_read")
        ((2097152, 1048576), 1048576)
    """

    name: str
    """The name the runs were saved under."""
    source: str
    """What the peaks measure: ``"python"`` (traced heap) or ``"rss"``."""
    peaks: Mapping[str, int] = field(default_factory=dict)
    """Each test's highest recorded peak (of its call), by node id."""
    runs: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    """Each test's recorded peaks, oldest first, at most :data:`KEPT_RUNS`."""
    saves: int = 1
    """How many runs were saved under this name since it was started afresh."""
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    """When the latest run was saved (ISO 8601, UTC)."""
    machine: Mapping[str, str] = field(default_factory=_machine)
    """The Python version and platform of the latest run, for the reader."""

    def __post_init__(self) -> None:
        if self.runs:
            highest = {nodeid: max(peaks) for nodeid, peaks in self.runs.items()}
            if self.peaks and dict(self.peaks) != highest:
                raise ValueError("peaks= must be each test's highest peak in runs=; give one "
                                 "of them")
            object.__setattr__(self, "peaks", highest)
        else:
            object.__setattr__(self, "runs", {nodeid: (peak,)
                                              for nodeid, peak in self.peaks.items()})
        if any(not peaks for peaks in self.runs.values()):
            raise ValueError("runs= must hold at least one peak for each test")

    def __str__(self) -> str:
        count = len(self.peaks)
        largest = format_size(max(self.peaks.values(), default=0))
        tests = "1 test" if count == 1 else f"{count} tests"
        recorded = "" if self.saves == 1 else f" over {self.saves} runs"
        return f"baseline {self.name!r}: {tests}, {self.source} peaks{recorded}, largest {largest}"

    def spread(self, nodeid: str) -> int:
        """The range of *nodeid*'s recorded peaks (highest - lowest), 0 for one run."""
        peaks = self.runs[nodeid]
        return max(peaks) - min(peaks)

    def lowest(self, nodeid: str) -> int:
        """*nodeid*'s lowest recorded peak."""
        return min(self.runs[nodeid])

    def add_run(self, peaks: Mapping[str, int]) -> Baseline:
        """This record with one more run's *peaks* added; tests not in it keep theirs."""
        runs = {nodeid: tuple(recorded) for nodeid, recorded in self.runs.items()}
        for nodeid, peak in peaks.items():
            runs[nodeid] = (*runs.get(nodeid, ()), peak)[-KEPT_RUNS:]
        return Baseline(name=self.name, source=self.source, runs=runs, saves=self.saves + 1)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` reverses it."""
        return {
            "format": BASELINE_FORMAT,
            "version": BASELINE_VERSION,
            "name": self.name,
            "source": self.source,
            "saves": self.saves,
            "created": self.created,
            "machine": dict(self.machine),
            "tests": {nodeid: {"peak_bytes": self.peaks[nodeid], "runs": list(peaks)}
                      for nodeid, peaks in sorted(self.runs.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, path: object = "<dict>") -> Baseline:
        """Rebuild a baseline from :meth:`to_dict`'s output (version 1 or 2).

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
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise SnapshotFormatError(path, f"bad baseline version {version!r}")
        if version > BASELINE_VERSION:
            raise SnapshotFormatError(path, f"baseline version {version} is newer than this "
                                            f"memguard reads ({BASELINE_VERSION}); upgrade it")
        try:
            tests = data["tests"]
            runs = {str(nodeid): _runs(entry, version) for nodeid, entry in tests.items()}
            saves = data.get("saves", 1)
            if isinstance(saves, bool) or not isinstance(saves, int) or saves < 1:
                raise ValueError(f"saves must be a positive int, got {saves!r}")
            return cls(name=str(data["name"]), source=str(data["source"]), runs=runs,
                       saves=saves, created=str(data.get("created", "")),
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


def _peak(peak: Any) -> int:
    if isinstance(peak, bool) or not isinstance(peak, int) or peak < 0:
        raise ValueError(f"peak_bytes must be a non-negative int, got {peak!r}")
    return peak


def _runs(entry: Any, version: int) -> tuple[int, ...]:
    if version == 1:
        return (_peak(entry["peak_bytes"]),)
    recorded = entry["runs"]
    if not isinstance(recorded, list) or not recorded:
        raise ValueError(f"runs must be a non-empty list of peaks, got {recorded!r}")
    return tuple(_peak(peak) for peak in recorded)
