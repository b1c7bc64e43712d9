"""L6 leak checks: :class:`LeakOptions`, the settings of a leak check, declared once.

Every front end takes its defaults from here: :func:`memguard.track_leaks`
and :func:`memguard.check_leaks`, the ``memguard_leaks`` pytest marker and
the ``%%memguard_leaks`` notebook magic. :meth:`LeakOptions.make` validates
keyword values and is what they all call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from ..units import Size, parse_size

__all__ = ["DEFAULTS", "GROUPS", "Group", "LeakOptions"]

Group = Literal["python", "objects", "native", "fds", "threads"]
#: What a caller switches on or off; each group reads one or two series
#: (``python``: allocator blocks, and traced bytes when tracemalloc already
#: traces; ``native``: malloc's counters, or RSS where they are missing).
#: ``"rss"`` is accepted for ``"native"``, its name in 0.1.
GROUPS: tuple[Group, ...] = ("python", "objects", "native", "fds", "threads")


@dataclass(frozen=True, slots=True, kw_only=True)
class LeakOptions:
    """The settings of one leak check; the defaults are memguard's defaults.

    Example:
        >>> from memguard.leaks import LeakOptions
        >>> LeakOptions().max_seconds, LeakOptions().cache_bound
        (10.0, 4096)
        >>> LeakOptions.make(signals=["python"], rss=True).signals
        ('python', 'native')
    """

    signals: tuple[Group, ...] = GROUPS
    """The groups of signals measured (see :data:`GROUPS`)."""
    explicit: bool = False
    """Whether *signals* was asked for: then a signal that cannot be read is an error."""
    repeat: int | None = None
    """Measure exactly this many calls; ``None``: as many as the time budget and the
    growth seen call for; ``1``: the single-run mode."""
    warmup: int = 5
    """Calls made before measuring (caches fill, imports happen)."""
    max_seconds: float = 10.0
    """The time budget of the whole check, naming included (kept within
    :data:`memguard.leaks.collector.MARGIN_SECONDS` plus one pass over the heap)."""
    min_seconds: float = 0.25
    """A clean check of a cheap function keeps calling for this long (or
    ``2 * cache_bound`` calls), so a leak on one call in 1,000 is seen."""
    cache_bound: int = 4096
    """Growth that stops within this many calls is a bounded structure filling up
    (a cache, a pool), not a leak; growth still going after ``2 * cache_bound``
    calls, or when the budget ends, is a leak."""
    max_calls: int = 1_000_000
    """The most measured calls a check makes, whatever the budget."""
    allowance: int = 10
    """Single run: objects created in the block that may stay alive after it."""
    allowance_bytes: int = 65536
    """Single run: traced memory the block may keep."""
    top: int = 5
    """How many sites and types a failure message lists."""

    @classmethod
    def make(cls, *, signals: Iterable[str] | None = None, python: bool | None = None,
             objects: bool | None = None, native: bool | None = None, rss: bool | None = None,
             fds: bool | None = None, threads: bool | None = None,
             allowance_bytes: Size | None = None, **values: Any) -> LeakOptions:
        """Validated options from keyword values; unset ones keep the defaults.

        Raises:
            ValueError: A value is out of range; the message names the parameter.
            TypeError: An unknown parameter, or a value of the wrong type.
        """
        unknown = sorted(set(values) - set(_SETTABLE))
        if unknown:
            raise TypeError(f"unknown leak-check option(s) {unknown}; expected some of "
                            f"{sorted((*_SETTABLE, 'signals', 'allowance_bytes', *GROUPS))}")
        if values.get("repeat") is not None:
            _int_option("repeat", values["repeat"], 1)
        for name, minimum in (("warmup", 0), ("allowance", 0), ("top", 0),
                              ("cache_bound", 0), ("max_calls", 3)):
            if name in values:
                _int_option(name, values[name], minimum)
        for name in ("max_seconds", "min_seconds"):
            if name in values:
                value = values[name]
                if isinstance(value, bool) or not isinstance(value, int | float) \
                        or not value > 0:
                    raise ValueError(f"{name} must be a positive number, got {value!r}")
                values[name] = float(value)
        if native is not None and rss is not None and native != rss:
            raise ValueError("native and rss name the same signal; give one of them")
        chosen, explicit = _choose(signals, {
            "python": python, "objects": objects, "native": native if native is not None else rss,
            "fds": fds, "threads": threads})
        if allowance_bytes is not None:
            values["allowance_bytes"] = parse_size(allowance_bytes, name="allowance_bytes")
        return dataclasses.replace(DEFAULTS, signals=chosen, explicit=explicit, **values)


_SETTABLE = ("repeat", "warmup", "max_seconds", "min_seconds", "cache_bound", "max_calls",
             "allowance", "top")


def _int_option(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def _choose(signals: Iterable[str] | None,
            switches: dict[Group, bool | None]) -> tuple[tuple[Group, ...], bool]:
    if isinstance(signals, str):
        raise TypeError(f"signals must be a collection of names, not the string {signals!r}")
    chosen: set[str] = set(GROUPS) if signals is None else {
        "native" if name == "rss" else name for name in signals}
    unknown = chosen - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown signal(s) {sorted(unknown)}; expected some of {GROUPS} "
                         f"('rss' is accepted for 'native')")
    for name, on in switches.items():
        if on is True:
            chosen.add(name)
        elif on is False:
            chosen.discard(name)
    if not chosen:
        raise ValueError("every signal is switched off; a leak check needs at least one")
    explicit = signals is not None or any(on is True for on in switches.values())
    return tuple(s for s in GROUPS if s in chosen), explicit


#: memguard's defaults, the one place they are written.
DEFAULTS = LeakOptions()
