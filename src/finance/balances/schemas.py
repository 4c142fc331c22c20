"""Response bodies of balances and registers, and the bodies of balance assertions."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, Field

from finance.models import AccountType, TransactionStatus
from finance.schemas import StrictModel
from finance.transactions.schemas import Amount, CommodityCode, DecimalString, LedgerDate


class AccountBalance(BaseModel):
    account_id: uuid.UUID
    name: str
    type: AccountType
    balances: list[Amount] = Field(description="Its own postings only; no zero amounts")


class PathTotal(BaseModel):
    path: str
    account_id: uuid.UUID | None = Field(
        description="Null where the path is only implied by the names below it"
    )
    balances: list[Amount] = Field(description="The path and everything below it")


class BalanceSheet(BaseModel):
    as_of: dt.date = Field(description="Balances at the end of this day")
    accounts: list[AccountBalance] = Field(description="Every account, by name")
    totals: list[PathTotal] = Field(
        description="Every path (each account and each parent above it), rolled up"
    )
    by_type: dict[AccountType, list[Amount]]


class AccountBalanceOut(BaseModel):
    account_id: uuid.UUID
    name: str
    as_of: dt.date
    include_descendants: bool
    balances: list[Amount]


class RegisterEntry(BaseModel):
    posting_id: uuid.UUID
    transaction_id: uuid.UUID
    date: dt.date
    status: TransactionStatus
    payee: str | None
    narration: str | None
    account_id: uuid.UUID
    amount: str
    commodity: str
    memo: str | None
    balance: str = Field(
        description="The running balance in this commodity after this posting, over every "
        "posting of the account (and its descendants, if asked) up to it"
    )


class AssertionIn(StrictModel):
    account_id: uuid.UUID
    date: LedgerDate = Field(description="Checked against the balance at the start of this day")
    amount: DecimalString
    commodity: CommodityCode


class AssertionOut(BaseModel):
    id: uuid.UUID
    account_id: uuid.UUID
    account: str = Field(description="The account's name")
    date: dt.date
    amount: str
    commodity: str
    actual: str = Field(
        description="The balance of the account and its descendants in the commodity, over "
        "every posting dated before `date`, as of now"
    )
    difference: str = Field(description="actual - amount")
    passing: bool
    created_at: dt.datetime
