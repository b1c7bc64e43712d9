"""The one size parser and the one size formatter."""

from __future__ import annotations

import math

import pytest

from memguard.units import format_size, parse_size, size_from_keywords


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100 MB", 100_000_000),
        ("100MB", 100_000_000),
        ("1.5 GiB", 1_610_612_736),
        ("512 KiB", 524_288),
        ("1e6 B", 1_000_000),
        ("2 kB", 2000),
        ("2 KB", 2000),
        ("3 TB", 3 * 10**12),
        ("1 TiB", 2**40),
        ("0 B", 0),
        ("  7 MiB  ", 7 * 2**20),
        ("123", 123),
        (".5 KiB", 512),
        ("1e-9999999 B", 0),
        ("18446744 TB", 18446744 * 10**12),
        ("16777216 TiB", 2**64),
        ("0.1 MB", 100_000),
    ],
)
def test_parse_size_strings(text: str, expected: int) -> None:
    assert parse_size(text) == expected


def test_parse_size_numbers() -> None:
    assert parse_size(4096) == 4096
    assert parse_size(1e6) == 1_000_000
    assert parse_size(0) == 0


@pytest.mark.parametrize(
    ("bad", "error", "fragment"),
    [
        ("100 Mb", ValueError, "lower-case 'b' means bits"),
        ("100 mb", ValueError, "unknown unit 'mb'"),
        ("100 XB", ValueError, "unknown unit 'XB'"),
        ("lots", ValueError, "is not a size"),
        ("", ValueError, "is not a size"),
        ("-5 MB", ValueError, "must not be negative"),
        ("1e400 B", ValueError, "larger than 16 EiB"),
        ("1e999999999 B", ValueError, "larger than 16 EiB"),
        ("17 EB", ValueError, "unknown unit 'EB'"),
        (2**64 + 1, ValueError, "larger than 16 EiB"),
        ("nan MB", ValueError, "is not a size"),
        (-1, ValueError, "must not be negative"),
        (math.nan, ValueError, "finite"),
        (math.inf, ValueError, "finite"),
        (1.5, ValueError, "fractional number of bytes"),
        (True, TypeError, "not bool"),
        (None, TypeError, "not NoneType"),
        ([1], TypeError, "not list"),
    ],
)
def test_parse_size_rejects(bad: object, error: type[Exception], fragment: str) -> None:
    with pytest.raises(error) as info:
        parse_size(bad)  # type: ignore[arg-type]
    assert fragment in str(info.value)


def test_error_lists_accepted_units_and_input() -> None:
    with pytest.raises(ValueError) as info:
        parse_size("3 parsecs", name="limit")
    message = str(info.value)
    assert "limit='3 parsecs'" in message
    assert "KiB" in message
    assert "MB" in message


@pytest.mark.parametrize(
    ("keywords", "expected"),
    [
        ({"kb": 2}, 2000),
        ({"mb": 100}, 100_000_000),
        ({"gb": 1.5}, 1_500_000_000),
        ({"kib": 4}, 4096),
        ({"mib": 1.5}, 1_572_864),
        ({"gib": 2}, 2 * 2**30),
        ({"mb": None, "kib": 1}, 1024),
    ],
)
def test_size_keywords(keywords: dict[str, float | None], expected: int) -> None:
    assert size_from_keywords(**keywords) == expected


def test_size_positional() -> None:
    assert size_from_keywords("1 KiB") == 1024


@pytest.mark.parametrize(
    ("args", "keywords", "error", "fragment"),
    [
        ((), {}, TypeError, "got no size"),
        (("1 MB",), {"mb": 1}, TypeError, "several sizes: '1 MB', mb=1"),
        ((), {"mb": 1, "kib": 2}, TypeError, "several sizes: mb=1, kib=2"),
        ((), {"megabytes": 1}, TypeError, "unknown size keyword 'megabytes'"),
        ((), {"mb": -1}, ValueError, "must not be negative"),
        ((), {"mb": math.nan}, ValueError, "finite"),
        ((), {"mb": True}, TypeError, "mb= takes a number of megabytes (MB, powers of 1000), "
                                      "such as mb=100; got bool True"),
        ((), {"gib": 1e300}, ValueError, "larger than 16 EiB"),
        ((), {"mb": "1"}, TypeError, "got str '1' (a string goes first: limit('1 MB'))"),
    ],
)
def test_size_keywords_reject(
    args: tuple[object, ...], keywords: dict[str, object], error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error) as info:
        size_from_keywords(*args, **keywords)  # type: ignore[arg-type]
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("size", "signed", "expected"),
    [
        (0, False, "0 B"),
        (512, False, "512 B"),
        (1023, False, "1023 B"),
        (1024, False, "1.0 KiB"),
        (1536, False, "1.5 KiB"),
        (100_000_000, False, "95.4 MiB"),
        (2**30, False, "1.0 GiB"),
        (1024**4 * 3, False, "3.0 TiB"),
        (1024**5, False, "1024.0 TiB"),
        (-2 * 2**20, True, "-2.0 MiB"),
        (64, True, "+64 B"),
        (0, True, "+0 B"),
        (-64, False, "-64 B"),
        (1024**2 - 1, False, "1.0 MiB"),
    ],
)
def test_format_size(size: int, signed: bool, expected: str) -> None:
    assert format_size(size, signed=signed) == expected


def test_round_trip_through_formatter_is_close() -> None:
    for size in (1, 1000, 123_456, 10**9, 7 * 2**40):
        text = format_size(size)
        assert abs(parse_size(text) - size) <= max(1, size * 0.05)
