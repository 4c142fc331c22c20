"""`format_minor` writes integers of minor units exactly, as the Decimal arithmetic would."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finance.money import MAX_MINOR_UNITS, MAX_PRECISION, format_minor, from_minor, to_minor


def by_decimal(minor: int, precision: int) -> str:
    """The same amount written through Decimal (wide enough to be exact): a reference."""
    with localcontext() as context:
        context.prec = 100
        return f"{Decimal(minor).scaleb(-precision).quantize(Decimal(1).scaleb(-precision)):f}"


@pytest.mark.parametrize(
    ("minor", "precision", "text"),
    [
        (0, 2, "0.00"),
        (5, 2, "0.05"),
        (-5, 2, "-0.05"),
        (99, 2, "0.99"),
        (100, 2, "1.00"),
        (-100, 2, "-1.00"),
        (123456, 2, "1234.56"),
        (-123456, 2, "-1234.56"),
        (7, 0, "7"),
        (-7, 0, "-7"),
        (0, 0, "0"),
        (1, 3, "0.001"),
        (-1000, 3, "-1.000"),
        (1, MAX_PRECISION, "0.000000000000000001"),
        (MAX_MINOR_UNITS, 2, "92233720368547758.07"),
        (-MAX_MINOR_UNITS - 1, 2, "-92233720368547758.08"),
        # Report totals may go beyond 64 bits (PostgreSQL sums exactly).
        (10**30 + 1, 2, "10000000000000000000000000000.01"),
    ],
)
def test_format_minor(minor: int, precision: int, text: str) -> None:
    assert format_minor(minor, precision) == text
    assert format_minor(minor, precision) == by_decimal(minor, precision)


@given(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.integers(min_value=0, max_value=MAX_PRECISION),
)
def test_format_minor_matches_decimal(minor: int, precision: int) -> None:
    text = format_minor(minor, precision)
    assert text == by_decimal(minor, precision)
    assert Decimal(text) == from_minor(minor, precision)
    if abs(minor) <= MAX_MINOR_UNITS:
        assert to_minor(Decimal(text), precision) == minor
