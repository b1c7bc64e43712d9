"""L4 values: :class:`LeakReport` and :class:`SignalVerdict`, the result of a leak check.

A leak check (:func:`memguard.check_leaks`, ``@track_leaks``, ``with
track_leaks()``) watches several *signals* while code runs again and again:
traced Python memory, live objects by type, process memory, open
descriptors and threads. Each signal gets its own verdict; the report keeps
the per-call series and the fitted lines behind them (for charts), the
growing allocation sites and types, a sample leaked object described as text
with the chain that holds it, and the leaked resources by name.

Holds plain data only (names, numbers, text), never the objects measured.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from ..units import format_size
from ._value import Value, shown
from .site import AllocationSite

__all__ = ["SIGNALS", "LeakReport", "SignalName", "SignalVerdict", "format_amount",
           "source_text"]

SignalName = Literal["python", "blocks", "objects", "malloc", "rss", "fds", "threads"]
#: Every series a leak check reads, named after what it reads, in the order
#: reports list them: ``python`` traced Python memory (tracemalloc, bytes),
#: ``blocks`` blocks of Python's small-object allocator
#: (``sys.getallocatedblocks()``, untraced), ``objects`` live objects the
#: collector tracks (frozen ones included), ``malloc`` bytes malloc has handed
#: out (glibc ``mallinfo2``), ``rss`` resident memory (pages), ``fds`` open
#: descriptors, ``threads`` live threads.
SIGNALS: tuple[SignalName, ...] = ("python", "blocks", "objects", "malloc", "rss", "fds",
                                   "threads")


def format_amount(amount: float, unit: str, *, signed: bool = True) -> str:
    """*amount* of *unit* in human form: sizes through ``format_size``, counts as numbers.

    Never in scientific notation: a rate below one shows three significant
    digits in fixed point (``+0.00101 objects``, ``+0.5 B``).

    Example:
        >>> format_amount(65.4, "bytes"), format_amount(1.0, "objects"), format_amount(2, "fds")
        ('+65 B', '+1 objects', '+2 fds')
        >>> format_amount(0.001013, "objects"), format_amount(0.5, "bytes")
        ('+0.00101 objects', '+0.5 B')
    """
    finite = math.isfinite(amount)
    if unit == "bytes" and (not finite or abs(amount) >= 9.5 or amount == 0):
        return format_size(round(amount), signed=signed) if finite else f"{amount} B"
    sign = "+" if signed and amount >= 0 else ""
    symbol = "B" if unit == "bytes" else unit
    if not finite:
        return f"{sign}{amount} {symbol}"
    return f"{sign}{_fixed(amount)} {symbol}".rstrip()


def _fixed(amount: float) -> str:
    """*amount* in fixed point: whole when it is, else three significant digits at most."""
    if abs(amount - round(amount)) < 0.005 and abs(amount) >= 1:
        return f"{amount:.0f}"
    if abs(amount) >= 1:
        return f"{amount:.2f}"
    if amount == 0:
        return "0"
    decimals = min(9, 2 - math.floor(math.log10(abs(amount))))
    text = f"{amount:.{decimals}f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalVerdict:
    """The verdict of one signal of a leak check.

    Example:
        >>> v = SignalVerdict(name="python", leaked=True, per_call=64.0, total=1920.0,
        ...                   unit="bytes", detail="slope 64.0 ± 0.4 B/call")
        >>> str(v)
        'python: +64 B per call, +1.9 KiB in total, LEAK (slope 64.0 ± 0.4 B/call)'
    """

    name: SignalName
    """What the series reads: one of :data:`SIGNALS`."""
    leaked: bool
    """Whether this signal shows steady growth."""
    per_call: float
    """Fitted growth per call, in :attr:`unit`."""
    total: float
    """Growth over all measured calls, in :attr:`unit`."""
    unit: str
    """``"bytes"``, ``"blocks"``, ``"objects"``, ``"fds"`` or ``"threads"``."""
    detail: str = ""
    """How the verdict was reached, in a few words (the slope and its spread, ...)."""

    def __str__(self) -> str:
        verdict = "LEAK" if self.leaked else "ok"
        detail = f" ({self.detail})" if self.detail else ""
        return (f"{self.name}: {format_amount(self.per_call, self.unit)} per call, "
                f"{format_amount(self.total, self.unit)} in total, {verdict}{detail}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"name": self.name, "leaked": self.leaked, "per_call": self.per_call,
                "total": self.total, "unit": self.unit, "detail": self.detail}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SignalVerdict:
        """Rebuild from :meth:`to_dict`."""
        name = data["name"]
        if name == "rss" and "mallinfo2" in str(data.get("detail", "")):
            name = "malloc"  # 0.1 files: the signal called rss read malloc's counters
        if name not in SIGNALS:
            raise ValueError(f"unknown signal name {name!r}; expected one of {SIGNALS}")
        return cls(name=name, leaked=bool(data["leaked"]), per_call=float(data["per_call"]),
                   total=float(data["total"]), unit=str(data["unit"]),
                   detail=str(data.get("detail", "")))


def _frozen_mapping(data: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(data))


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class LeakReport(Value, kind="leak"):
    """What a leak check measured, and its verdict.

    Example:
        >>> report = LeakReport(
        ...     label="handle_request", leaked=True, iterations=30, warmup=0,
        ...     signals=(SignalVerdict(name="python", leaked=True, per_call=64.0,
        ...                            total=1920.0, unit="bytes"),),
        ...     types=(("str", 1.0),))
        >>> report.summary
        'handle_request: leaks +64 B per call (+1.9 KiB over 30 calls), signal python'
        >>> print(report.message())
        Leak detected in handle_request: +64 B per call (+1.9 KiB over 30 calls), signal python
          python: +64 B per call, +1.9 KiB in total, LEAK
          top growing types (count per call):
            str: +1 per call
    """

    label: str
    """Where the check ran: the function's qualified name or ``file:line``."""
    leaked: bool
    """Whether any signal found a leak."""
    iterations: int
    """Measured calls (1 in single-run mode)."""
    warmup: int
    """Warm-up calls made before measuring."""
    signals: tuple[SignalVerdict, ...] = ()
    """One verdict per signal that was measured."""
    series: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    """Per signal name, the level after each measured call (relative to the start)."""
    fits: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    """Per signal name, the fitted line ``(slope per call, intercept)`` over :attr:`series`."""
    sites: tuple[AllocationSite, ...] = ()
    """Growing allocation sites, biggest first; ``size_bytes`` and ``count`` are their
    growth over :attr:`site_calls` calls."""
    site_calls: int = 1
    """The calls over which :attr:`sites` grew (1: the figures are per call, as in 0.1)."""
    types: tuple[tuple[str, float], ...] = ()
    """Growing types: ``(type name, count per call)``, most first."""
    sample: str | None = None
    """A leaked object's repr and the chain of references that holds it, as text."""
    resources: tuple[str, ...] = ()
    """Leaked descriptors (by path) and threads (by name)."""
    mode: Literal["repeated", "single"] = "repeated"
    """``"repeated"`` (many calls, growth per call) or ``"single"`` (one run of a block)."""
    duration_seconds: float = 0.0
    """How long the whole check took, measurement included."""
    calls_per_reading: int = 1
    """Calls made between two readings of the signals (cheap functions get many)."""
    spreads: Mapping[str, float] = field(default_factory=dict)
    """Per signal name, the standard error of the fitted growth per call."""
    cache_bound: int = 0
    """Growth that stops within this many calls is a bounded cache filling, not a leak."""
    naming_calls: int = 0
    """Calls made with tracing on to name the leak (sites, types, holder), after the verdict."""
    calls_into_c: tuple[str, ...] = ()
    """C functions the code called during the naming calls, as ``file:line -> module.function``:
    those called from a growing site's line, then those called on every call."""
    notes: tuple[str, ...] = ()
    """What the check could not do in its time, or did differently, in words."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "series", _frozen_mapping(
            {k: tuple(float(x) for x in v) for k, v in self.series.items()}))
        object.__setattr__(self, "fits", _frozen_mapping(
            {k: (float(v[0]), float(v[1])) for k, v in self.fits.items()}))
        object.__setattr__(self, "spreads", _frozen_mapping(
            {k: float(v) for k, v in self.spreads.items()}))

    @property
    def fired(self) -> tuple[SignalVerdict, ...]:
        """The signals that found a leak."""
        return tuple(s for s in self.signals if s.leaked)

    def _headline(self) -> SignalVerdict | None:
        fired = self.fired
        if not fired:
            return None
        by_bytes = [s for s in fired if s.unit == "bytes"]
        return max(by_bytes, key=lambda s: s.per_call) if by_bytes else fired[0]

    def growth_text(self, *, with_warmup: bool) -> str:
        """The growth in words: per call (or kept after one run) and the signals that fired."""
        head = self._headline()
        assert head is not None
        calls = "call" if self.iterations == 1 else "calls"
        after = f" after {self.warmup} warm-up calls" if with_warmup and self.warmup else ""
        if self.mode == "single":
            growth = f"{format_amount(head.total, head.unit)} kept after one run{after}"
        else:
            growth = (f"{format_amount(head.per_call, head.unit)} per call "
                      f"({format_amount(head.total, head.unit)} over {self.iterations} "
                      f"{calls}{after})")
        names = ", ".join(s.name for s in self.fired)
        plural = "signals" if len(self.fired) > 1 else "signal"
        return f"{growth}, {plural} {names}"

    @property
    def summary(self) -> str:
        """One line: the verdict, the growth per call and the signals that fired."""
        if self.leaked and self.fired:
            return f"{self.label}: leaks {self.growth_text(with_warmup=False)}"
        calls = "call" if self.iterations == 1 else "calls"
        names = ", ".join(s.name for s in self.signals) or "no signals"
        return f"{self.label}: no leak over {self.iterations} {calls} ({names})"

    def message(self, *, top: int = 5) -> str:
        """The verdict a failed check raises: the verdict line, the signals, then the
        sites, types, sample and resources (up to *top* of each). Written by the
        presentation layer (:mod:`memguard.report.verdict`)."""
        return shown(self, "verdict", top=top)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` reverses it."""
        return {
            "kind": self.KIND,
            "label": self.label,
            "leaked": self.leaked,
            "iterations": self.iterations,
            "warmup": self.warmup,
            "mode": self.mode,
            "duration_seconds": self.duration_seconds,
            "signals": [s.to_dict() for s in self.signals],
            "series": {k: list(v) for k, v in self.series.items()},
            "fits": {k: list(v) for k, v in self.fits.items()},
            "sites": [s.to_dict() for s in self.sites],
            "types": [[name, count] for name, count in self.types],
            "sample": self.sample,
            "resources": list(self.resources),
            "site_calls": self.site_calls,
            "calls_per_reading": self.calls_per_reading,
            "spreads": dict(self.spreads),
            "cache_bound": self.cache_bound,
            "naming_calls": self.naming_calls,
            "calls_into_c": list(self.calls_into_c),
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LeakReport:
        """Rebuild a report from :meth:`to_dict`'s output."""
        mode = data.get("mode", "repeated")
        if mode not in ("repeated", "single"):
            raise ValueError(f"mode must be 'repeated' or 'single', got {mode!r}")
        sample = data.get("sample")
        signals = tuple(SignalVerdict.from_dict(s) for s in data.get("signals", ()))
        renamed = {"rss": "malloc"} if any(
            s.get("name") == "rss" and "mallinfo2" in str(s.get("detail", ""))
            for s in data.get("signals", ())) else {}

        def key(name: object) -> str:
            return renamed.get(str(name), str(name))

        return cls(
            label=str(data["label"]),
            leaked=bool(data["leaked"]),
            iterations=int(data["iterations"]),
            warmup=int(data["warmup"]),
            mode=mode,
            duration_seconds=float(data.get("duration_seconds", 0.0)),
            signals=signals,
            series={key(k): tuple(float(x) for x in v)
                    for k, v in data.get("series", {}).items()},
            fits={key(k): (float(v[0]), float(v[1])) for k, v in data.get("fits", {}).items()},
            sites=tuple(AllocationSite.from_dict(s) for s in data.get("sites", ())),
            types=tuple((str(n), float(c)) for n, c in data.get("types", ())),
            sample=None if sample is None else str(sample),
            resources=tuple(str(r) for r in data.get("resources", ())),
            site_calls=int(data.get("site_calls", 1)),
            calls_per_reading=int(data.get("calls_per_reading", 1)),
            spreads={key(k): float(v) for k, v in data.get("spreads", {}).items()},
            cache_bound=int(data.get("cache_bound", 0)),
            naming_calls=int(data.get("naming_calls", 0)),
            calls_into_c=tuple(str(c) for c in data.get("calls_into_c", ())),
            notes=tuple(str(n) for n in data.get("notes", ())),
        )



def source_text(site: AllocationSite) -> str:
    """The site's source line, trimmed, when the site carries it or the file can be read."""
    if site.source.strip():
        return site.source.strip()
    if site.filename.startswith("<"):
        return ""
    import linecache  # only when a report is shown

    return linecache.getline(site.filename, site.lineno).strip()[:120]
