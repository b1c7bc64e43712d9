"""L4 values: the fields of a value read from a file are checked, not only its envelope.

:func:`memguard.values.files.load` calls :func:`check_fields` on every value
it builds, of every kind, so a damaged field inside a valid file (a
timeline's ``samples=[[1,2,3]]``, a negative size, ``NaN`` seconds, a
string where a number belongs) is refused with the file's name and the
field's path instead of being printed as a nonsense figure.

The checks follow the values' own declarations and naming rules, so a new
value kind is checked without being listed here:

* every dataclass field against its annotation (``int`` is not ``bool``,
  a ``float`` is finite, ``X | None``, ``tuple[X, ...]``, ``Literal``,
  nested values);
* a level, a size or a duration (:data:`NON_NEGATIVE`) is not negative
  (differences, such as ``size_diff_bytes`` or a diff's ``elapsed_seconds``,
  may be);
* a moment (:data:`MOMENTS`) is a date the calendar can print;
* moments on a timeline (samples and marks) are in order and inside it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["CHANGES", "MOMENTS", "NON_NEGATIVE", "check_fields"]

NON_NEGATIVE = frozenset({
    "traced_bytes", "rss_bytes", "uss_bytes", "size_bytes", "limit_bytes", "start_bytes",
    "traced_start_bytes", "traced_peak_bytes", "traced_end_bytes", "rss_start_bytes",
    "rss_peak_bytes", "allocated_bytes", "peak_share_bytes", "sites_above_start_bytes",
    "peak_above_start_bytes",
    "interval_seconds", "duration_seconds", "time_seconds", "peak_seconds", "sites_seconds",
    "search_seconds",
})
"""Fields that hold a level, a size or a duration, never negative."""

CHANGES = frozenset({("SnapshotDiff", "left_out")})
"""``(class, field)`` whose values hold changes: their sizes may be negative
(a diff's remainder by name shrinks when memguard's own work does)."""

MOMENTS = frozenset({"started_at", "timestamp"})
"""Fields that hold a moment as seconds since 1970 (when a number): a date the
calendar can print, between the years 1 and 9999."""

_FIRST_MOMENT = -62_135_596_800.0  # 0001-01-01 00:00:00 UTC
_LAST_MOMENT = 253_402_300_799.0  # 9999-12-31 23:59:59 UTC

Check = Callable[[Any], None]


class _Bad(Exception):
    """A field is wrong: *problem* says how; *path* grows as it unwinds (innermost first)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path: list[str] = []

    def message(self) -> str:
        return f"{''.join(reversed(self.path)).lstrip('.')} {self.problem}"


_compiled: dict[Any, Check] = {}


def check_fields(value: Any) -> None:
    """Check every field of *value*, a memguard value, recursively.

    A value that is not a dataclass (a kind registered by someone else) is
    left to its own ``from_dict``. Each value class's checks are built once
    from its annotations, then run as plain function calls (a timeline of
    200,000 samples is checked in well under a second).

    Raises:
        ValueError: The first field that is wrong, by its path
            (``samples[0].time_seconds``) and what is wrong with it.

    Example:
        >>> from memguard.values.timeline import Sample, Timeline
        >>> check_fields(Timeline(interval_seconds=0.01, duration_seconds=0.5,
        ...                       samples=(Sample(1.0, 2, 3),)))
        Traceback (most recent call last):
        ...
        ValueError: samples[0].time_seconds is 1.0 s, after the timeline's end (0.5 s)
    """
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        return
    try:
        _compile(type(value))(value)
    except _Bad as bad:
        raise ValueError(bad.message()) from None


def _compile(hint: Any) -> Check:
    try:
        return _compiled[hint]
    except (KeyError, TypeError):  # TypeError: an unhashable annotation
        pass
    check = _build(hint)
    with contextlib.suppress(TypeError):
        _compiled[hint] = check
    return check


def _nothing(item: Any) -> None:
    return None


def _build(hint: Any) -> Check:  # noqa: PLR0911
    origin = typing.get_origin(hint)
    if hint is Any or hint is object:
        return _nothing
    if origin is typing.Union or origin is types.UnionType:
        return _union(typing.get_args(hint))
    if origin is typing.Literal:
        return _literal(typing.get_args(hint))
    if origin is tuple:
        return _tuple(typing.get_args(hint))
    if isinstance(origin, type) and issubclass(origin, Mapping):
        return _scalar(lambda item: isinstance(item, Mapping), "a mapping")
    if hint in _SCALARS:
        accepts, wanted = _SCALARS[hint]
        return _scalar(accepts, wanted)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        _compiled[hint] = _nothing  # a value that holds its own kind: checked one level
        return _value(hint)
    return _nothing


_SCALARS: dict[Any, tuple[Callable[[Any], bool], str]] = {
    bool: (lambda item: item is True or item is False, "true or false"),
    int: (lambda item: type(item) is int or (isinstance(item, int) and not isinstance(item, bool)),
          "a whole number"),
    float: (lambda item: _is_number(item) and math.isfinite(item), "a finite number"),
    str: (lambda item: isinstance(item, str), "a string"),
}


def _is_number(item: Any) -> bool:
    return isinstance(item, int | float) and not isinstance(item, bool)


def _what(item: Any) -> str:
    text = repr(item)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(item).__name__} {text}"


def _scalar(accepts: Callable[[Any], bool], wanted: str) -> Check:
    def check(item: Any) -> None:
        if not accepts(item):
            raise _Bad(f"is {_what(item)}; it must be {wanted}")
    return check


def _literal(allowed: tuple[Any, ...]) -> Check:
    shown = ", ".join(repr(a) for a in allowed)

    def check(item: Any) -> None:
        if item not in allowed:
            raise _Bad(f"is {item!r}; it must be one of {shown}")
    return check


def _union(options: tuple[Any, ...]) -> Check:
    none_ok = type(None) in options
    others = [option for option in options if option is not type(None)]
    if none_ok and len(others) == 1 and others[0] in _SCALARS:  # `int | None`: the common case
        accepts, wanted = _SCALARS[others[0]]

        def check_optional(item: Any) -> None:
            if item is not None and not accepts(item):
                raise _Bad(f"is {_what(item)}; it must be {wanted}")
        return check_optional
    checks = [_compile(option) for option in others]

    def check(item: Any) -> None:
        if item is None and none_ok:
            return
        first: _Bad | None = None
        for one in checks:
            try:
                one(item)
            except _Bad as bad:
                first = first or bad
            else:
                return
        raise first or _Bad("is missing")
    return check


def _tuple_of(each: Check) -> Check:
    def check_all(item: Any) -> None:
        if not isinstance(item, tuple):
            raise _Bad(f"is {_what(item)}; it must be a list")
        for index, element in enumerate(item):
            try:
                each(element)
            except _Bad as bad:
                bad.path.append(f"[{index}]")
                raise
    return check_all


def _tuple(args: tuple[Any, ...]) -> Check:
    if len(args) == 2 and args[1] is Ellipsis:
        return _tuple_of(_compile(args[0]))
    checks = [_compile(arg) for arg in args]

    def check_fixed(item: Any) -> None:
        if not isinstance(item, tuple):
            raise _Bad(f"is {_what(item)}; it must be a list")
        if checks and len(item) != len(checks):
            raise _Bad(f"has {len(item)} items; it must have {len(checks)}")
        for index, (element, one) in enumerate(zip(item, checks, strict=False)):
            try:
                one(element)
            except _Bad as bad:
                bad.path.append(f"[{index}]")
                raise
    return check_fixed


def _field_check(cls: type, name: str, hint: Any) -> Check:
    """A field's check; in a field of :data:`CHANGES` (values), sizes may be negative."""
    args = typing.get_args(hint)
    if ((cls.__name__, name) in CHANGES and typing.get_origin(hint) is tuple
            and len(args) == 2 and args[1] is Ellipsis and isinstance(args[0], type)
            and dataclasses.is_dataclass(args[0])):
        return _tuple_of(_value(args[0], signed=True))
    return _compile(hint)


def _value(cls: type, *, signed: bool = False) -> Check:
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError):  # an annotation only a type checker resolves
        hints = {}
    fields = [(field.name,
               _field_check(cls, field.name, hints[field.name]) if field.name in hints
               else _nothing,
               field.name in NON_NEGATIVE and not signed, field.name in MOMENTS)
              for field in dataclasses.fields(cls)]
    moments = {"samples", "marks", "interval_seconds", "duration_seconds"} <= set(hints)

    def check(item: Any) -> None:
        if not isinstance(item, cls):
            raise _Bad(f"is {_what(item)}; it must be a {cls.__name__}")
        for name, one, non_negative, moment in fields:
            value = getattr(item, name)
            try:
                one(value)
                if non_negative and _is_number(value) and value < 0:
                    raise _Bad(f"is {value!r}; it cannot be negative")
                if moment and _is_number(value) and not _FIRST_MOMENT <= value <= _LAST_MOMENT:
                    raise _Bad(f"is {value!r}; a moment is seconds since 1970, between "
                               "the years 1 and 9999")
            except _Bad as bad:
                bad.path.append(f".{name}")
                raise
        if moments:
            _check_moments(item)
    if not signed:
        _compiled[cls] = check
    return check


def _check_moments(timeline: Any) -> None:
    """Samples and marks are in time order and inside the timeline (one interval of slack)."""
    end = float(timeline.duration_seconds)
    slack = float(timeline.interval_seconds)
    for name in ("samples", "marks"):
        previous = 0.0
        for index, moment in enumerate(getattr(timeline, name)):
            seconds = moment.time_seconds
            if seconds > end + slack:
                bad = _Bad(f"is {seconds!r} s, after the timeline's end ({end!r} s)")
            elif seconds < previous:
                bad = _Bad(f"is {seconds!r} s, before the {name[:-1]} before it "
                           f"({previous!r} s)")
            else:
                previous = seconds
                continue
            bad.path.extend([".time_seconds", f"[{index}]", f".{name}"])
            raise bad
