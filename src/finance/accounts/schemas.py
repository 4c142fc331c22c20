"""Request and response bodies of the account endpoints."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from finance.models import AccountType
from finance.schemas import StrictModel

AccountName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=1000,
        description="The full path, levels separated by `:`; the root names the type",
        examples=["Assets:Bank:Checking", "Expenses:Food:Groceries"],
    ),
]
Codes = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=24)]],
    Field(
        min_length=1,
        max_length=100,
        description="The only commodities the account may hold; null: any",
        examples=[["USD"]],
    ),
]
Note = Annotated[str, Field(max_length=10_000)]
TypeField = Field(
    default=None,
    description="asset (root Assets), liability (Liabilities), equity (Equity), income (Income) "
    "or expense (Expenses); inferred from the root of the name when left out",
)


class AccountCreate(StrictModel):
    name: AccountName
    type: AccountType | None = TypeField
    allowed_commodities: Codes | None = None
    opened_on: dt.date | None = Field(default=None, description="First day it may have postings")
    closed_on: dt.date | None = Field(default=None, description="Last day it may have postings")
    note: Note | None = None


class AccountUpdate(StrictModel):
    """Fields left out stay as they are; null clears an optional field."""

    name: AccountName | None = Field(
        default=None, description="A new path; the account's descendants are renamed with it"
    )
    type: AccountType | None = TypeField
    allowed_commodities: Codes | None = None
    opened_on: dt.date | None = None
    closed_on: dt.date | None = None
    note: Note | None = None


class AccountRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    type: AccountType
    allowed_commodities: list[str] | None
    opened_on: dt.date | None
    closed_on: dt.date | None
    note: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
