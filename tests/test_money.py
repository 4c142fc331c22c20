"""Exact amounts: the integer formatting of minor units agrees with the decimal one."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from finance.money import MAX_MINOR_UNITS, MAX_PRECISION, format_decimal, format_minor, from_minor


@given(
    st.integers(min_value=-(10**40), max_value=10**40)
    | st.integers(min_value=-MAX_MINOR_UNITS, max_value=MAX_MINOR_UNITS)
    | st.integers(min_value=-1000, max_value=1000),
    st.integers(min_value=0, max_value=MAX_PRECISION),
)
def test_format_minor_is_the_decimal_at_the_precision(minor: int, precision: int) -> None:
    assert format_minor(minor, precision) == format_decimal(from_minor(minor, precision), precision)


def test_format_minor_examples() -> None:
    assert format_minor(1234, 2) == "12.34"
    assert format_minor(-5, 2) == "-0.05"
    assert format_minor(0, 2) == "0.00"
    assert format_minor(-1230, 0) == "-1230"
    assert format_minor(7, 3) == "0.007"
