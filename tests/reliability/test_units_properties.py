"""Property-based tests of the size parser and formatter (issue 7)."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from memguard.units import MAX_BYTES, UNITS, format_size, parse_size, size_from_keywords

sizes = st.integers(min_value=0, max_value=2**60)


@given(sizes)
def test_format_then_parse_is_within_half_a_decimal(size: int) -> None:
    text = format_size(size)
    back = parse_size(text)
    _, unit = text.split()
    # One decimal in the printed unit: the error is at most 0.05 of that unit.
    assert abs(back - size) <= 0.05 * UNITS[unit] + 0.5


@given(st.integers(min_value=-(2**60), max_value=2**60))
def test_signed_format_always_has_a_sign(size: int) -> None:
    text = format_size(size, signed=True)
    assert text[0] in "+-"
    assert (text[0] == "-") == (size < 0)


@given(st.integers(min_value=0, max_value=10**9), st.sampled_from(sorted(UNITS)))
def test_integer_with_unit_is_exact(number: int, unit: str) -> None:
    assume(number * UNITS[unit] <= MAX_BYTES)
    assert parse_size(f"{number} {unit}") == number * UNITS[unit]
    assert parse_size(f"{number}{unit}") == number * UNITS[unit]


@given(st.text(max_size=30))
def test_any_text_parses_or_raises_value_error(text: str) -> None:
    try:
        result = parse_size(text)
    except ValueError as error:
        assert repr(text) in str(error)
    else:
        assert isinstance(result, int)
        assert result >= 0


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_any_float_is_bytes_or_a_clear_error(value: float) -> None:
    try:
        result = parse_size(value)
    except ValueError as error:
        too_big = math.isfinite(value) and value > MAX_BYTES
        assert too_big or not (math.isfinite(value) and value >= 0 and value.is_integer())
        assert ("larger than 16 EiB" if too_big else "size") in str(error)
    else:
        assert result == int(value)


@given(
    st.sampled_from(["kb", "mb", "gb", "kib", "mib", "gib"]),
    st.floats(min_value=0, max_value=1e6, allow_nan=False),
)
def test_keyword_sizes_scale(keyword: str, amount: float) -> None:
    scale = {"kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1024, "mib": 1024**2,
             "gib": 1024**3}[keyword]
    assert size_from_keywords(**{keyword: amount}) == round(Fraction(amount) * scale)


@given(st.integers(min_value=MAX_BYTES + 1, max_value=2**80), st.sampled_from(sorted(UNITS)))
def test_sizes_beyond_16_eib_are_refused(number: int, unit: str) -> None:
    with pytest.raises(ValueError, match="larger than 16 EiB"):
        parse_size(f"{number} {unit}")


@pytest.mark.parametrize("bad", [b"1 MB", 1j, object(), [1], {"mb": 1}])
def test_non_size_types_are_type_errors(bad: object) -> None:
    with pytest.raises(TypeError) as info:
        parse_size(bad)  # type: ignore[arg-type]
    assert type(bad).__name__ in str(info.value)
