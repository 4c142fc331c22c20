"""Request and response bodies of transactions, with the amount and rate types they share."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from finance.models import TransactionStatus
from finance.money import MAX_RATE_DIGITS, decimals_of, parse_decimal
from finance.schemas import StrictModel

EARLIEST_DATE = dt.date(1900, 1, 1)
LATEST_DATE = dt.date(2200, 12, 31)
MAX_POSTINGS = 1000
# Rates (per-unit costs and prices) keep the decimals they are given, up to this many.
MAX_RATE_DECIMALS = 20


def _decimal_string(value: Any) -> Decimal:
    """A JSON number has already been through a float in most clients: only text is exact."""
    if not isinstance(value, str):
        raise ValueError('must be a decimal string such as "12.34", not a JSON number')
    return parse_decimal(value)


def _positive_rate(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError("a per-unit cost or price must be greater than zero")
    if decimals_of(value) > MAX_RATE_DECIMALS:
        raise ValueError(f"a per-unit cost or price has at most {MAX_RATE_DECIMALS} decimal places")
    if len(value.normalize().as_tuple().digits) > MAX_RATE_DIGITS:
        raise ValueError(f"a per-unit cost or price has at most {MAX_RATE_DIGITS} digits")
    return value


def _in_date_range(value: dt.date) -> dt.date:
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise ValueError(
            f"date must be between {EARLIEST_DATE.isoformat()} and {LATEST_DATE.isoformat()}"
        )
    return value


_DECIMAL_SCHEMA = {"type": "string", "pattern": r"^[+-]?\d+(\.\d+)?$", "examples": ["-12.34"]}

DecimalString = Annotated[
    Decimal, BeforeValidator(_decimal_string), WithJsonSchema(_DECIMAL_SCHEMA)
]
"""An amount in a request: a decimal string; a JSON number is refused."""

RateString = Annotated[
    Decimal,
    BeforeValidator(_decimal_string),
    AfterValidator(_positive_rate),
    WithJsonSchema({**_DECIMAL_SCHEMA, "examples": ["98.38"]}),
]
"""A per-unit cost or price: positive, exact, up to 20 decimals."""

LedgerDate = Annotated[dt.date, AfterValidator(_in_date_range)]
CommodityCode = Annotated[str, StringConstraints(min_length=1, max_length=24)]
Label = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^\S+$")]
Payee = Annotated[str, StringConstraints(max_length=500)]
Narration = Annotated[str, StringConstraints(max_length=5000)]
Memo = Annotated[str, StringConstraints(max_length=1000)]
ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
MetaKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
MetaValue = Annotated[str, StringConstraints(max_length=1000)] | StrictInt | StrictBool | None
Meta = Annotated[
    dict[MetaKey, MetaValue],
    Field(max_length=32, description="Up to 32 keys, each a string, integer, boolean or null"),
]


class RateIn(StrictModel):
    amount: RateString = Field(description="Per unit, exact (a decimal string)")
    commodity: CommodityCode


class PostingIn(StrictModel):
    account_id: uuid.UUID
    amount: DecimalString | None = Field(
        default=None,
        description="Units, at most the commodity's precision in decimals. At most one posting "
        "of a transaction may leave it out; it is then filled in so that the transaction "
        "balances.",
    )
    commodity: CommodityCode | None = Field(
        default=None, description="Required with an amount; optional on the posting without one"
    )
    cost: RateIn | None = Field(default=None, description="Per-unit cost of a lot ({...})")
    price: RateIn | None = Field(default=None, description="Per-unit conversion rate (@)")
    memo: Memo | None = None


class TransactionFields(StrictModel):
    """Everything of a transaction but its postings."""

    date: LedgerDate
    payee: Payee | None = None
    narration: Narration | None = None
    tags: Annotated[list[Label], Field(max_length=50)] = []
    links: Annotated[list[Label], Field(max_length=50)] = []
    meta: Meta = {}
    status: TransactionStatus = TransactionStatus.CLEARED
    external_id: ExternalId | None = None


class TransactionIn(TransactionFields):
    """A whole transaction: the body of POST and PUT, and what importers prepare."""

    postings: Annotated[
        list[PostingIn],
        Field(min_length=2, max_length=MAX_POSTINGS, description="2 to 1000 postings"),
    ]


class TransactionPatch(StrictModel):
    """PATCH: the fields given replace the stored ones; `postings`, when given, replaces all."""

    date: LedgerDate | None = None
    payee: Payee | None = None
    narration: Narration | None = None
    tags: Annotated[list[Label], Field(max_length=50)] | None = None
    links: Annotated[list[Label], Field(max_length=50)] | None = None
    meta: Meta | None = None
    status: TransactionStatus | None = None
    external_id: ExternalId | None = None
    postings: Annotated[list[PostingIn], Field(min_length=2, max_length=MAX_POSTINGS)] | None = None

    @model_validator(mode="after")
    def _no_null_where_required(self) -> TransactionPatch:
        for name in ("date", "tags", "links", "meta", "status", "postings"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class Amount(BaseModel):
    """An amount of a commodity, written with the commodity's precision."""

    amount: str = Field(examples=["-12.30"])
    commodity: str = Field(examples=["USD"])


class RateOut(BaseModel):
    amount: str = Field(description="Exactly as given")
    commodity: str


class PostingOut(BaseModel):
    id: uuid.UUID
    account_id: uuid.UUID
    amount: str
    commodity: str
    cost: RateOut | None
    price: RateOut | None
    weight: Amount = Field(
        description="What the posting weighs in the balance: units x cost, else units x price, "
        "else the units; rounded half-even to the weight commodity's precision"
    )
    memo: str | None


class TransactionOut(BaseModel):
    id: uuid.UUID
    date: dt.date
    payee: str | None
    narration: str | None
    tags: list[str]
    links: list[str]
    meta: dict[str, Any]
    status: TransactionStatus
    external_id: str | None
    version: int = Field(description="Bumped by every change; the ETag")
    created_by: uuid.UUID | None
    created_at: dt.datetime
    updated_at: dt.datetime
    postings: list[PostingOut]
    residual: dict[str, str] = Field(
        description="Per weight commodity, the exact sum of the postings' weights where it is "
        "not zero (within the inferred tolerance); empty when the transaction balances exactly",
        examples=[{"USD": "0.003125"}],
    )
