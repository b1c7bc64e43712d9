"""L1 foundation: the one size parser and the one size formatter.

Every byte quantity in memguard is an ``int`` of bytes. This module is the
only code that knows what "MB" or "MiB" means:

* SI units are powers of 1000: ``kB`` (or ``KB``), ``MB``, ``GB``, ``TB``.
* IEC units are powers of 1024: ``KiB``, ``MiB``, ``GiB``, ``TiB``.
* ``B`` is a byte. A lower-case ``b`` means *bits* and is refused.

Note:
    pytest-memray reads "MB" as 1024² bytes. memguard follows the SI and IEC
    standards instead, so ``"100 MB"`` is 100,000,000 bytes and
    ``"100 MiB"`` is 104,857,600 bytes. Output always uses IEC units, so a
    printed size is never ambiguous.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

__all__ = ["MAX_BYTES", "UNITS", "Size", "format_size", "parse_size", "size_from_keywords"]

Size = int | float | str
"""A size argument: bytes as a number, or a string with a unit."""

UNITS: dict[str, int] = {
    "B": 1,
    "kB": 1000,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "TiB": 1024**4,
}
"""Every accepted unit and its size in bytes."""

KEYWORD_UNITS: dict[str, int] = {
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
"""The keyword forms (``mb=100``) and their sizes in bytes."""

_ACCEPTED = "B, kB/KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024)"
_SIZE_RE = re.compile(
    r"^\s*(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(?P<unit>[A-Za-z]*)\s*$"
)


def _check_number(value: object, what: str) -> float | int:
    """Return a finite, non-negative real number, or raise naming *what*."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a number of bytes or a string such as '100 MB', "
                        f"not {type(value).__name__} {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{what} must be a finite size, got {value!r}")
    if value < 0:
        raise ValueError(f"{what} must not be negative, got {value!r}")
    return value


MAX_BYTES = 2**64
"""The largest size accepted (16 EiB): anything bigger is a mistake, not a limit."""


def _to_bytes(amount: float | int | Decimal, scale: int, what: str) -> int:
    """*amount* × *scale*, rounded to a whole byte, exactly, within MAX_BYTES."""
    if amount > Decimal(MAX_BYTES) / scale:
        raise ValueError(f"{what} is larger than 16 EiB ({MAX_BYTES} bytes), "
                         f"beyond any machine's memory")
    if isinstance(amount, int):
        return amount * scale
    with localcontext() as context:
        context.prec = 60
        exact = Decimal(amount) * scale
        return int(exact.to_integral_value(rounding=ROUND_HALF_EVEN))


def parse_size(value: Size, *, name: str = "size") -> int:
    """Turn a size argument into a number of bytes.

    Args:
        value: An ``int`` (bytes), an integral ``float`` such as ``1e6``, or a
            string: a number and a unit, such as ``"100 MB"``, ``"1.5 GiB"``,
            ``"512 KiB"`` or ``"1e6 B"``. A string without a unit is bytes.
        name: The parameter name to use in error messages.

    Returns:
        The size in bytes, rounded to the nearest byte.

    Raises:
        TypeError: *value* is not a number or a string (``bool`` included).
        ValueError: *value* is negative, NaN, infinite, fractional bytes, or
            a string that is not a number and a known unit.

    Example:
        >>> parse_size("1.5 KiB")
        1536
        >>> parse_size("100 MB")
        100000000
    """
    if isinstance(value, str):
        match = _SIZE_RE.match(value)
        if match is None:
            raise ValueError(
                f"{name}={value!r} is not a size: write a number and a unit, "
                f"such as '100 MB'; units: {_ACCEPTED}"
            )
        unit = match["unit"] or "B"
        if unit not in UNITS:
            hint = " (a lower-case 'b' means bits)" if unit.endswith("b") else ""
            raise ValueError(f"{name}={value!r} has an unknown unit {unit!r}{hint}; "
                             f"units: {_ACCEPTED}")
        # Decimal keeps "36893489 TB" exact, where a float would round it.
        amount = Decimal(match["number"])
        if amount < 0:
            raise ValueError(f"{name}={value!r} must not be negative")
        return _to_bytes(amount, UNITS[unit], f"{name}={value!r}")
    number = _check_number(value, name)
    if isinstance(number, float) and not number.is_integer():
        raise ValueError(f"{name}={value!r} is a fractional number of bytes; "
                         f"pass an int or a string with a unit, such as '1.5 KiB'")
    return _to_bytes(int(number), 1, f"{name}={value!r}")


def size_from_keywords(
    size: Size | None = None, /, *, name: str = "size", **keywords: float | int | None
) -> int:
    """Resolve a size given positionally or as exactly one unit keyword.

    This is how ``limit("100 MB")`` and ``limit(mb=100)`` share one parser.

    Args:
        size: A positional size for :func:`parse_size`, or ``None``.
        name: The parameter name to use in error messages.
        **keywords: At most one of ``kb``, ``mb``, ``gb``, ``kib``,
            ``mib``, ``gib``, with a non-negative number; ``None`` values are
            ignored.

    Returns:
        The size in bytes.

    Raises:
        TypeError: A keyword is unknown, or several sizes (or none) are given.
        ValueError: The size is negative, NaN, infinite or malformed.

    Example:
        >>> size_from_keywords(mb=1.5)
        1500000
        >>> size_from_keywords(kib=4)
        4096
    """
    unknown = sorted(set(keywords) - set(KEYWORD_UNITS))
    if unknown:
        raise TypeError(f"unknown size keyword {unknown[0]!r}; accepted: "
                        f"{', '.join(KEYWORD_UNITS)} (or a positional size such as '100 MB')")
    given = {key: value for key, value in keywords.items() if value is not None}
    count = len(given) + (size is not None)
    if count != 1:
        shown = [repr(size)] if size is not None else []
        shown += [f"{key}={value!r}" for key, value in given.items()]
        what = "no size" if count == 0 else "several sizes: " + ", ".join(shown)
        raise TypeError(f"{name}: give exactly one size, either positional ('100 MB', 10**8) or "
                        f"one keyword of {', '.join(KEYWORD_UNITS)}; got {what}")
    if size is not None:
        return parse_size(size, name=name)
    ((key, value),) = given.items()
    return _to_bytes(_check_keyword(key, value), KEYWORD_UNITS[key], f"{key}={value!r}")


_KEYWORD_NAMES = {"kb": ("kilobytes", "kB", "1000"), "mb": ("megabytes", "MB", "1000"),
                  "gb": ("gigabytes", "GB", "1000"), "kib": ("kibibytes", "KiB", "1024"),
                  "mib": ("mebibytes", "MiB", "1024"), "gib": ("gibibytes", "GiB", "1024")}


def _check_keyword(key: str, value: object) -> float | int:
    """A unit keyword's number, or an error that says what the keyword takes.

    Example:
        >>> _check_keyword("mb", "100")
        Traceback (most recent call last):
        ...
        TypeError: mb= takes a number of megabytes (MB, powers of 1000), such as mb=100; ...
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        words, unit, base = _KEYWORD_NAMES[key]
        hint = f" (a string goes first: limit('{value} {unit}'))" if isinstance(value, str) else ""
        raise TypeError(f"{key}= takes a number of {words} ({unit}, powers of {base}), such as "
                        f"{key}=100; got {type(value).__name__} {value!r}{hint}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{key}= must be a finite number of {_KEYWORD_NAMES[key][0]}, "
                         f"got {value!r}")
    if value < 0:
        raise ValueError(f"{key}= must not be negative, got {value!r}")
    return value


def format_size(size_bytes: int | float, *, signed: bool = False) -> str:
    """Print a byte count in IEC units with one decimal.

    Args:
        size_bytes: A number of bytes; may be negative for a change.
        signed: Always print a sign, as for a change (``+1.5 MiB``).

    Returns:
        ``"512 B"``, ``"1.5 KiB"``, ``"-3.0 MiB"``, ... Byte counts under
        1 KiB print without a decimal.

    Example:
        >>> format_size(1536)
        '1.5 KiB'
        >>> format_size(-2 * 1024**2, signed=True)
        '-2.0 MiB'
        >>> format_size(64, signed=True)
        '+64 B'
    """
    sign = "-" if size_bytes < 0 else ("+" if signed else "")
    magnitude = abs(size_bytes)
    if magnitude < 1024:
        return f"{sign}{magnitude:.0f} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        magnitude /= 1024
        if round(magnitude, 1) < 1024 or unit == "TiB":
            return f"{sign}{magnitude:.1f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover
