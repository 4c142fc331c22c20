"""Exact amounts: decimal strings in, integers of minor units stored, decimal strings out.

Nothing here ever goes through a float. A JSON number is accepted only from its source text
(see `errors`-free parsing in the schemas), and more decimals than a commodity allows is an error,
never a silent rounding.
"""

from __future__ import annotations

import re
from decimal import Context, Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

# Postings are stored as signed 64-bit integers of minor units, the widest integer both
# SQLite and PostgreSQL keep natively; sums are exact on both (PostgreSQL widens to NUMERIC).
MAX_MINOR_UNITS = 2**63 - 1
MAX_PRECISION = 18
# Rates (per-unit costs and prices) keep their own decimals; this bounds their size.
MAX_RATE_DIGITS = 38

_DECIMAL_TEXT = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
# Wide enough for any amount and precision; passed to each operation rather than switched to.
_WIDE = Context(prec=80)


class AmountError(ValueError):
    """An amount that cannot be represented exactly where it was given."""


def parse_decimal(value: Any, *, field: str = "amount") -> Decimal:
    """Parse a decimal string (or an int, or an exact Decimal); refuse floats and junk."""
    if isinstance(value, (bool, float)):
        raise AmountError(f'{field} must be a decimal string such as "12.34", not a JSON number')
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise AmountError(f"{field} must be a finite number")
        return value
    if not isinstance(value, str):
        raise AmountError(f"{field} must be a decimal string")
    text = value.strip().replace("_", "")
    if not _DECIMAL_TEXT.match(text) or len(text) > MAX_RATE_DIGITS + 2:
        raise AmountError(f"{field} {value!r} is not a decimal number")
    try:
        return Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the regex guards this
        raise AmountError(f"{field} {value!r} is not a decimal number") from exc


def decimals_of(value: Decimal) -> int:
    """How many decimal places `value` is written with, ignoring trailing zeros."""
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def to_minor(value: Decimal, precision: int, *, field: str = "amount") -> int:
    """`12.34` at precision 2 -> 1234. Refuses more decimals than the precision allows."""
    exponent = value.as_tuple().exponent
    # As written it has few enough decimals, or else it may still once trailing zeros go.
    if not (isinstance(exponent, int) and exponent >= -precision) and (
        decimals_of(value) > precision
    ):
        raise AmountError(
            f"{field} {format_decimal(value)} has more than {precision} decimal places"
        )
    minor = int(value.scaleb(precision, _WIDE))
    if abs(minor) > MAX_MINOR_UNITS:
        raise AmountError(f"{field} {format_decimal(value)} is too large")
    return minor


def from_minor(minor: int, precision: int) -> Decimal:
    """1234 at precision 2 -> Decimal('12.34'), always written with `precision` decimals."""
    return Decimal(minor).scaleb(-precision, _WIDE)


def format_minor(minor: int, precision: int) -> str:
    """1234 at precision 2 -> "12.34", always with `precision` decimals; integers only."""
    if precision == 0:
        return str(minor)
    digits = str(-minor if minor < 0 else minor).zfill(precision + 1)
    return f"{'-' if minor < 0 else ''}{digits[:-precision]}.{digits[-precision:]}"


def format_decimal(value: Decimal, places: int | None = None) -> str:
    """Plain notation (never `1E+3`), with exactly `places` decimals when given."""
    if places is not None:
        return f"{value.quantize(Decimal(1).scaleb(-places), context=_WIDE):f}"
    text = f"{value.normalize():f}" if value != 0 else "0"
    return text


def _parse_for_schema(value: Any) -> Decimal:
    return parse_decimal(value)


# A pydantic field type for amounts: accepts decimal strings (ints too), refuses floats,
# serializes as a plain decimal string, and documents itself as a string in OpenAPI.
DecimalStr = Annotated[
    Decimal,
    BeforeValidator(_parse_for_schema),
    PlainSerializer(lambda v: format_decimal(v), return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^[+-]?\d+(\.\d+)?$", "examples": ["12.34"]}),
]
