"""L3 values: the fields of a value read from a file are checked, not only its envelope.

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
* moments on a timeline (samples and marks) are in order and inside it.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["NON_NEGATIVE", "check_fields"]

NON_NEGATIVE = frozenset({
    "traced_bytes", "rss_bytes", "uss_bytes", "size_bytes", "limit_bytes", "start_bytes",
    "traced_start_bytes", "traced_peak_bytes", "traced_end_bytes", "rss_start_bytes",
    "rss_peak_bytes", "allocated_bytes", "peak_share_bytes", "sites_level_bytes",
    "interval_seconds", "duration_seconds", "time_seconds", "peak_seconds", "sites_seconds",
    "search_seconds",
})
"""Fields that hold a level, a size or a duration, never negative."""

_hints: dict[type, dict[str, Any]] = {}


def check_fields(value: Any) -> None:
    """Check every field of *value*, a memguard value, recursively.

    A value that is not a dataclass (a kind registered by someone else) is
    left to its own ``from_dict``.

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
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        _check_value(value, "")


def _hints_of(cls: type) -> dict[str, Any]:
    hints = _hints.get(cls)
    if hints is None:
        try:
            hints = typing.get_type_hints(cls)
        except (NameError, TypeError):  # an annotation only a type checker resolves
            hints = {}
        _hints[cls] = hints
    return hints


def _check_value(value: Any, path: str) -> None:
    hints = _hints_of(type(value))
    for field in dataclasses.fields(value):
        where = f"{path}.{field.name}" if path else field.name
        item = getattr(value, field.name)
        if field.name in hints:
            _check(item, hints[field.name], where)
        if field.name in NON_NEGATIVE and _is_number(item) and item < 0:
            raise ValueError(f"{where} is {item!r}; it cannot be negative")
    if hasattr(value, "samples") and hasattr(value, "marks") and hasattr(value, "interval_seconds"):
        _check_moments(value, path)


def _is_number(item: Any) -> bool:
    return isinstance(item, int | float) and not isinstance(item, bool)


def _check(item: Any, hint: Any, where: str) -> None:
    origin = typing.get_origin(hint)
    if hint is Any or hint is object:
        return
    if origin is typing.Union or origin is types.UnionType:
        _check_union(item, typing.get_args(hint), where)
    elif origin is typing.Literal:
        if item not in typing.get_args(hint):
            allowed = ", ".join(repr(a) for a in typing.get_args(hint))
            raise ValueError(f"{where} is {item!r}; it must be one of {allowed}")
    elif origin is tuple:
        _check_tuple(item, typing.get_args(hint), where)
    elif isinstance(origin, type) and issubclass(origin, Mapping):
        if not isinstance(item, Mapping):
            raise ValueError(f"{where} is {_what(item)}; it must be a mapping")
    elif hint in _SCALARS:
        accepts, wanted = _SCALARS[hint]
        if not accepts(item):
            raise ValueError(f"{where} is {_what(item)}; it must be {wanted}")
    elif isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(item, hint):
            raise ValueError(f"{where} is {_what(item)}; it must be a {hint.__name__}")
        _check_value(item, where)


_SCALARS: dict[Any, tuple[Callable[[Any], bool], str]] = {
    bool: (lambda item: isinstance(item, bool), "true or false"),
    int: (lambda item: isinstance(item, int) and not isinstance(item, bool), "a whole number"),
    float: (lambda item: _is_number(item) and math.isfinite(item), "a finite number"),
    str: (lambda item: isinstance(item, str), "a string"),
}


def _check_union(item: Any, options: tuple[Any, ...], where: str) -> None:
    if item is None and type(None) in options:
        return
    problems = []
    for option in options:
        if option is type(None):
            continue
        try:
            _check(item, option, where)
        except ValueError as problem:
            problems.append(problem)
        else:
            return
    raise problems[0] if problems else ValueError(f"{where} is missing")


def _check_tuple(item: Any, args: tuple[Any, ...], where: str) -> None:
    if not isinstance(item, tuple):
        raise ValueError(f"{where} is {_what(item)}; it must be a list")
    if len(args) == 2 and args[1] is Ellipsis:
        for index, element in enumerate(item):
            _check(element, args[0], f"{where}[{index}]")
        return
    if args and len(item) != len(args):
        raise ValueError(f"{where} has {len(item)} items; it must have {len(args)}")
    for index, (element, hint) in enumerate(zip(item, args, strict=False)):
        _check(element, hint, f"{where}[{index}]")


def _what(item: Any) -> str:
    text = repr(item)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(item).__name__} {text}"


def _check_moments(timeline: Any, path: str) -> None:
    """Samples and marks are in time order and inside the timeline (one interval of slack)."""
    prefix = f"{path}." if path else ""
    end = float(timeline.duration_seconds)
    slack = float(timeline.interval_seconds)
    for name in ("samples", "marks"):
        previous = 0.0
        for index, moment in enumerate(getattr(timeline, name)):
            seconds = getattr(moment, "time_seconds", None)
            if not isinstance(seconds, int | float) or isinstance(seconds, bool):
                continue
            where = f"{prefix}{name}[{index}].time_seconds"
            if seconds > end + slack:
                raise ValueError(f"{where} is {seconds!r} s, after the timeline's end "
                                 f"({end!r} s)")
            if seconds < previous:
                raise ValueError(f"{where} is {seconds!r} s, before the {name[:-1]} "
                                 f"before it ({previous!r} s)")
            previous = seconds
