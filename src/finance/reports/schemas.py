"""Report answers: amounts are decimal strings written with their commodity's precision."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from finance.models import AccountType
from finance.reports.periods import Interval

AmountStr = Annotated[
    str,
    Field(
        pattern=r"^-?\d+(\.\d+)?$",
        examples=["1234.50"],
        description="Exact, with the commodity's decimals",
    ),
]
Amounts = Annotated[
    dict[str, AmountStr],
    Field(
        description="Commodity code -> amount; a commodity whose amount is zero is left out",
        examples=[{"USD": "1234.50", "EUR": "-12.00"}],
    ),
]


class GroupBy(enum.StrEnum):
    ACCOUNT = "account"
    PAYEE = "payee"
    TAG = "tag"


class CashFlowKind(enum.StrEnum):
    """The type of the counter-account; `asset` is a transfer with an asset account outside
    the cash accounts of the report."""

    INCOME = "income"
    EXPENSE = "expense"
    LIABILITY = "liability"
    EQUITY = "equity"
    ASSET = "asset"


class Report(BaseModel):
    """A report's answer; `from_` is written `from` in JSON."""

    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)


class Money(BaseModel):
    amount: AmountStr
    commodity: str


class Filters(BaseModel):
    """The filters the report was computed with, as given."""

    account: str | None = Field(description="Account path prefix: the account and its subtree")
    tag: str | None
    payee: str | None


class RateStep(BaseModel):
    """A stored price: one `commodity` was worth `rate` `quote_commodity` on `date`."""

    commodity: str
    quote_commodity: str
    date: dt.date
    rate: str
    inverted: bool = Field(description="The price was quoted the other way and is used as 1/rate")


class RateUsed(BaseModel):
    date: dt.date = Field(description="The valuation date (the report's date or period end)")
    commodity: str
    currency: str
    rate: str = Field(
        description="Units of `currency` per unit of `commodity`, product of the steps, shown "
        "with 16 significant digits; values are computed with the exact steps"
    )
    steps: list[RateStep]


class MissingRate(BaseModel):
    date: dt.date
    commodity: str
    currency: str
    detail: str


class Valuation(BaseModel):
    """Present when `currency` was asked: the rates used, and what could not be converted
    (those amounts stay in their own commodity in the report)."""

    currency: str
    rates: list[RateUsed]
    missing: list[MissingRate]


class PeriodOut(BaseModel):
    start: dt.date
    end: dt.date = Field(description="Included")


class BalanceNode(BaseModel):
    account: str = Field(description="The full path")
    depth: int
    implied: bool = Field(
        description="Not an account of the ledger: a parent implied by its children's paths, "
        "or a line the report adds (current earnings, conversions)"
    )
    balance: Amounts = Field(description="This account's own postings")
    total: Amounts = Field(description="This account and its subtree")
    children: list[BalanceNode]


class BalanceSection(BaseModel):
    total: Amounts
    accounts: list[BalanceNode]


class Holding(BaseModel):
    """An asset or liability held in a commodity other than the report's currency."""

    account: str
    commodity: str
    units: AmountStr
    value: Money | None = Field(description="At the latest price; absent when none was found")
    cost_basis: Money | None = Field(
        description="The sum of the weights of the holding's postings at cost, in the cost "
        "commodity; absent unless every posting of the holding carries a cost in one commodity"
    )
    unrealized_gain: Money | None = Field(
        description="value - cost basis (the cost basis converted at the same date if its "
        "commodity is not the currency)"
    )


class BalanceSheetReport(Report):
    as_of: dt.date
    filters: Filters
    valuation: Valuation | None
    assets: BalanceSection
    liabilities: BalanceSection
    equity: BalanceSection
    holdings: list[Holding] = Field(description="Only with `currency`")


class PeriodNode(BaseModel):
    account: str
    depth: int
    implied: bool
    balance: list[Amounts] = Field(description="Per period: this account's own postings")
    total: list[Amounts] = Field(description="Per period: this account and its subtree")
    children: list[PeriodNode]


class PeriodSection(BaseModel):
    total: list[Amounts]
    accounts: list[PeriodNode]


class IncomeStatement(Report):
    from_: dt.date = Field(alias="from")
    to: dt.date
    interval: Interval
    depth: int | None
    filters: Filters
    valuation: Valuation | None
    periods: list[PeriodOut]
    income: PeriodSection = Field(description="Positive: money earned")
    expenses: PeriodSection = Field(description="Positive: money spent")
    net_income: list[Amounts] = Field(description="Per period: income - expenses")


class NetWorthPoint(BaseModel):
    date: dt.date
    assets: Amounts
    liabilities: Amounts = Field(description="Positive: money owed")
    net_worth: Amounts


class NetWorth(Report):
    from_: dt.date = Field(alias="from")
    to: dt.date
    interval: Interval
    filters: Filters
    valuation: Valuation | None
    points: list[NetWorthPoint]


class CashFlowLine(BaseModel):
    kind: CashFlowKind
    inflow: list[Amounts] = Field(description="Per period, positive")
    outflow: list[Amounts] = Field(description="Per period, positive")
    net: list[Amounts] = Field(description="Per period: inflow - outflow")


class CashFlow(Report):
    from_: dt.date = Field(alias="from")
    to: dt.date
    interval: Interval
    filters: Filters
    valuation: Valuation | None
    accounts: list[str] = Field(description="The cash accounts: asset accounts in the filter")
    periods: list[PeriodOut]
    opening: list[Amounts]
    flows: list[CashFlowLine]
    conversions: list[Amounts] = Field(
        description="Per period: the change of the cash accounts that no counter-account "
        "explains: exchanges between commodities inside them and, with `currency`, revaluation"
    )
    net_change: list[Amounts]
    closing: list[Amounts]


class SpendingGroup(BaseModel):
    key: str | None = Field(description="Account, payee or tag; null for no payee or no tag")
    amount: Amounts
    share: dict[str, str] = Field(
        description="Per commodity: amount / total, 4 decimals, rounded half to even",
        examples=[{"USD": "0.2534"}],
    )


class Spending(Report):
    from_: dt.date = Field(alias="from")
    to: dt.date
    group_by: GroupBy
    depth: int | None
    filters: Filters
    valuation: Valuation | None
    total: Amounts
    groups: list[SpendingGroup]


class TrialBalanceLine(BaseModel):
    account: str
    type: AccountType
    balance: Amounts = Field(description="Units; positive is a debit")
    weight: Amounts = Field(description="What the postings weighed when balanced (x cost, x price)")


class TrialBalance(Report):
    as_of: dt.date
    filters: Filters
    valuation: Valuation | None
    accounts: list[TrialBalanceLine]
    total: Amounts = Field(description="Units; not zero when commodities were converted")
    weight_total: Amounts = Field(description="Zero in every commodity when the books balance")
    balanced: bool
