"""Reports: a few grouped sums over postings in SQL; trees, valuation and totals over the groups.

Signs: postings are stored debit-positive (assets and expenses grow positive; liabilities,
equity and income grow negative). The balance sheet, income statement and net worth show each
type in its normal sense, so a positive liability is owed, positive income is earned and
positive equity is owned; the trial balance keeps the stored signs so that it sums to zero.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, FromClause, Select, and_, case, cast, func, select, true
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from finance.db import one_snapshot
from finance.errors import Unprocessable
from finance.ledgers.deps import LedgerAccess
from finance.models import Account, AccountType, Commodity, Ledger, Posting, Transaction
from finance.money import format_minor
from finance.reports import trees
from finance.reports.periods import LAST_DAY, ONE_DAY, Interval, Period, bucket, split
from finance.reports.rows import fetch, raw
from finance.reports.schemas import (
    BalanceNode,
    BalanceSection,
    BalanceSheetReport,
    CashFlow,
    CashFlowKind,
    CashFlowLine,
    Filters,
    GroupBy,
    Holding,
    IncomeStatement,
    MissingRate,
    Money,
    NetWorth,
    NetWorthPoint,
    PeriodNode,
    PeriodOut,
    PeriodSection,
    RateStep,
    RateUsed,
    Spending,
    SpendingGroup,
    TrialBalance,
    TrialBalanceLine,
    Valuation,
)
from finance.reports.trees import EMPTY, Amounts, add, negate, total
from finance.reports.valuation import Converter, price_books

ASSET, LIABILITY, EQUITY = AccountType.ASSET, AccountType.LIABILITY, AccountType.EQUITY
INCOME, EXPENSE = AccountType.INCOME, AccountType.EXPENSE
CREDIT_NORMAL = frozenset({LIABILITY, EQUITY, INCOME})
ALL_TYPES = frozenset(AccountType)

# Lines the balance sheet adds under equity so that it balances without closing entries.
EARNINGS = "Equity:Earnings (current)"
CONVERSIONS = "Equity:Conversions (implied)"

FIRST_DAY = dt.date(1, 1, 2)  # leaves room for "the day before" a report's start
SHARE_PLACES = 4
SHARE_SCALE = 10**SHARE_PLACES


@dataclass(frozen=True)
class ReportFilters:
    account: str | None = None
    tag: str | None = None
    payee: str | None = None

    def covers(self, name: str) -> bool:
        if self.account is None:
            return True
        return name == self.account or name.startswith(self.account + ":")

    def schema(self) -> Filters:
        return Filters(account=self.account, tag=self.tag, payee=self.payee)


@dataclass(frozen=True, eq=False)
class AccountInfo:
    """An account of the books: one object per account, so it keys dicts by identity."""

    id: uuid.UUID
    name: str
    type: AccountType


@dataclass(frozen=True)
class Books:
    """What a report needs to know of the ledger besides its postings (a few small tables).

    Accounts and commodity codes are found by their ids as the driver returns them
    (`rows.raw`), the form in which the report queries' rows carry them.
    """

    ledger_id: uuid.UUID
    base_currency: str
    dialect: str
    accounts: dict[Any, AccountInfo]
    codes: dict[Any, str]
    commodity_ids: dict[str, uuid.UUID]
    precisions: dict[str, int]

    def covered(self, filters: ReportFilters, types: Collection[AccountType]) -> list[AccountInfo]:
        return [
            info
            for info in self.accounts.values()
            if info.type in types and filters.covers(info.name)
        ]

    @property
    def names(self) -> set[str]:
        return {info.name for info in self.accounts.values()}

    def format(self, amounts: Mapping[str, int]) -> dict[str, str]:
        """Decimal strings by code, in code order, zeros left out."""
        return self.formats((amounts,))[0]

    def formats(self, columns: Iterable[Mapping[str, int]]) -> list[dict[str, str]]:
        """`format` of each, in one loop: a report formats thousands of cells."""
        precisions = self.precisions
        formatted: list[dict[str, str]] = []
        for amounts in columns:
            cell: dict[str, str] = {}
            for code, minor in sorted(amounts.items()) if len(amounts) > 1 else amounts.items():
                if minor:
                    cell[code] = format_minor(minor, precisions[code])
            formatted.append(cell)
        return formatted


async def load_books(session: AsyncSession, ledger: Ledger) -> Books:
    """The ledger's accounts and commodities; a report's later reads see the same snapshot."""
    await one_snapshot(session)
    accounts = await fetch(
        session,
        select(raw(Account.id), Account.id, Account.name, Account.type).where(
            Account.ledger_id == ledger.id
        ),
    )
    commodities = await fetch(
        session,
        select(raw(Commodity.id), Commodity.id, Commodity.code, Commodity.precision).where(
            Commodity.ledger_id == ledger.id
        ),
    )
    return Books(
        ledger_id=ledger.id,
        base_currency=ledger.base_currency,
        dialect=session.get_bind().dialect.name,
        accounts={key: AccountInfo(id, name, kind) for key, id, name, kind in accounts},
        codes={key: code for key, _, code, _ in commodities},
        commodity_ids={code: id for _, id, code, _ in commodities},
        precisions={code: precision for _, _, code, precision in commodities},
    )


def _ids(accounts: Iterable[AccountInfo]) -> list[uuid.UUID]:
    return sorted(account.id for account in accounts)


def check_dates(*days: dt.date) -> None:
    for day in days:
        if not FIRST_DAY <= day <= LAST_DAY:
            raise Unprocessable(
                f"{day.isoformat()} is out of range: dates go from {FIRST_DAY.isoformat()} "
                f"to {LAST_DAY.isoformat()}"
            )


def _tag_condition(dialect: str, tag: str) -> ColumnElement[bool]:
    if dialect == "postgresql":
        return cast(Transaction.tags, JSONB).contains([tag])
    each = func.json_each(Transaction.tags).table_valued("value")
    return select(each.c.value).where(each.c.value == tag).exists()


def _tag_table(dialect: str) -> FromClause:
    """One row per tag of the transaction, joined laterally (null for an untagged one)."""
    if dialect == "postgresql":
        return (
            func.json_array_elements_text(Transaction.tags)
            .table_valued("value")
            .render_derived(name="tag")
            .lateral()
        )
    return func.json_each(Transaction.tags).table_valued("value").alias("tag")


def _postings(
    books: Books,
    filters: ReportFilters,
    columns: Sequence[Any],
    *,
    account_ids: Sequence[uuid.UUID] | None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    uppers: tuple[dt.date, ...] | None = None,
    where: Iterable[ColumnElement[bool]] = (),
    join_transactions: bool = False,
    tags: FromClause | None = None,
) -> Select[*tuple[Any, ...]]:
    """One row per posting of the ledger that the filters and bounds keep, with `bucket`.

    `account_ids` are resolved from the (small) accounts table beforehand, so the filter is an
    IN list on the posting's own indexed column; the transaction is joined only for a payee
    or tag filter.
    """
    selected: list[Any] = list(columns)
    if uppers is not None:
        selected.append(bucket(Posting.date, uppers).label("bucket"))
    conditions: list[ColumnElement[bool]] = [Posting.ledger_id == books.ledger_id, *where]
    if account_ids is not None:
        conditions.append(Posting.account_id.in_(account_ids))
    if since is not None:
        conditions.append(Posting.date >= since)
    if until is not None:
        conditions.append(Posting.date <= until)
    statement = select(*selected).select_from(Posting)
    if (
        join_transactions
        or tags is not None
        or filters.payee is not None
        or filters.tag is not None
    ):
        statement = statement.join(
            Transaction,
            and_(
                Transaction.ledger_id == Posting.ledger_id,
                Transaction.id == Posting.transaction_id,
            ),
        )
        if filters.payee is not None:
            conditions.append(Transaction.payee == filters.payee)
        if filters.tag is not None:
            conditions.append(_tag_condition(books.dialect, filters.tag))
        if tags is not None:
            statement = statement.outerjoin(tags, true())
    return statement.where(*conditions)


async def _account_sums(
    session: AsyncSession,
    books: Books,
    filters: ReportFilters,
    accounts: Iterable[AccountInfo] | None,
    *,
    since: dt.date | None = None,
    until: dt.date | None = None,
    uppers: tuple[dt.date, ...] | None = None,
) -> dict[AccountInfo, dict[int, Amounts]]:
    """Units per account, bucket and commodity (bucket 0 without `uppers`)."""
    rows = _postings(
        books,
        filters,
        [raw(Posting.account_id), raw(Posting.commodity_id), Posting.amount],
        account_ids=_ids(accounts) if accounts is not None else None,
        since=since,
        until=until,
        uppers=uppers,
    ).subquery()
    keys = [rows.c.account_id, rows.c.commodity_id]
    if uppers is not None:
        keys.append(rows.c.bucket)
    statement = select(*keys, func.sum(rows.c.amount)).group_by(*keys)
    result: dict[AccountInfo, dict[int, Amounts]] = {}
    by_key, codes = books.accounts, books.codes
    for row in await fetch(session, statement):
        per_bucket = result.setdefault(by_key[row[0]], {})
        index = row[2] if uppers is not None else 0
        per_bucket.setdefault(index, {})[codes[row[1]]] = int(row[-1])
    return result


async def _converter(
    session: AsyncSession, books: Books, currency: str | None, dates: Sequence[dt.date]
) -> Converter | None:
    if currency is None:
        return None
    if currency not in books.precisions:
        raise Unprocessable(f"Unknown commodity {currency!r} in this ledger")
    found = await price_books(session, books.ledger_id, dates, books.codes)
    return Converter(currency, books.precisions, dates, found, prefer=books.base_currency)


def _valuation(converter: Converter | None) -> Valuation | None:
    if converter is None:
        return None
    currency = converter.currency
    return Valuation(
        currency=currency,
        rates=[
            RateUsed(
                date=used.date,
                commodity=used.commodity,
                currency=currency,
                rate=used.route.display_rate(),
                steps=[
                    RateStep(
                        commodity=step.quote.commodity,
                        quote_commodity=step.quote.quote,
                        date=step.quote.date,
                        rate=f"{step.quote.rate:f}",
                        inverted=step.inverted,
                    )
                    for step in used.route.steps
                ],
            )
            for _, used in sorted(converter.used.items())
        ],
        missing=[
            MissingRate(
                date=missing.date,
                commodity=missing.commodity,
                currency=currency,
                detail=f"No price between {missing.commodity} and {currency} on or before "
                f"{missing.date.isoformat()}, directly, inverted or through one other commodity",
            )
            for _, missing in sorted(converter.missing.items())
        ],
    )


def _value(converter: Converter | None, column: int, amounts: Amounts) -> Amounts:
    return converter.value(column, amounts) if converter is not None else amounts


def _periods_out(periods: Sequence[Period]) -> list[PeriodOut]:
    return [PeriodOut(start=period.start, end=period.end) for period in periods]


# -- balance sheet -----------------------------------------------------------------------------


NodeT = TypeVar("NodeT", BalanceNode, PeriodNode)


def _nodes(
    kind: type[NodeT],
    roots: Sequence[trees.Node],
    show: Callable[[Sequence[Mapping[str, int]]], Any],
) -> list[NodeT]:
    """The report's tree as `kind`s, each node's columns of sums shown by `show`."""
    nodes: list[NodeT] = []
    for node in roots:
        balance = show(node.balance)
        nodes.append(
            kind(
                account=node.account,
                depth=node.depth,
                implied=node.implied,
                balance=balance,
                total=balance if node.total is node.balance else show(node.total),
                children=_nodes(kind, node.children, show),
            )
        )
    return nodes


def _balance_nodes(books: Books, roots: Sequence[trees.Node]) -> list[BalanceNode]:
    return _nodes(BalanceNode, roots, lambda columns: books.format(columns[0]))


def _balance_section(
    books: Books, lines: Mapping[str, Amounts], depth: int | None
) -> BalanceSection:
    roots = trees.build({name: [amounts] for name, amounts in lines.items()}, 1, books.names, depth)
    return BalanceSection(
        total=books.format(total(lines.values())), accounts=_balance_nodes(books, roots)
    )


async def _cost_bases(
    session: AsyncSession,
    books: Books,
    filters: ReportFilters,
    held: Collection[tuple[AccountInfo, str]],
    as_of: dt.date,
) -> dict[tuple[AccountInfo, str], tuple[str, int]]:
    """(account, commodity) -> (cost commodity, sum of weights), for holdings booked at cost.

    A holding whose postings do not all carry a cost in one commodity (a deposit without cost,
    a sale at a price only) has no cost basis: it is left out rather than guessed.
    """
    if not held:
        return {}
    commodity_ids = sorted({books.commodity_ids[code] for _, code in held})
    rows = _postings(
        books,
        filters,
        [
            raw(Posting.account_id),
            raw(Posting.commodity_id),
            raw(Posting.cost_commodity_id),
            raw(Posting.weight_commodity_id),
            Posting.weight,
        ],
        account_ids=_ids({account for account, _ in held}),
        until=as_of,
        where=[Posting.commodity_id.in_(commodity_ids)],
    ).subquery()
    keys = [rows.c.account_id, rows.c.commodity_id, rows.c.cost_commodity_id]
    keys.append(rows.c.weight_commodity_id)
    parts: dict[tuple[AccountInfo, str], list[tuple[str | None, str, int]]] = defaultdict(list)
    for account_id, commodity_id, cost_id, weight_id, weight in await fetch(
        session, select(*keys, func.sum(rows.c.weight)).group_by(*keys)
    ):
        cost_code = books.codes[cost_id] if cost_id is not None else None
        parts[(books.accounts[account_id], books.codes[commodity_id])].append(
            (cost_code, books.codes[weight_id], int(weight))
        )
    bases: dict[tuple[AccountInfo, str], tuple[str, int]] = {}
    for key, found in parts.items():
        cost_codes = {cost for cost, _, _ in found}
        if len(cost_codes) == 1 and all(cost == weight for cost, weight, _ in found):
            (cost_code,) = cost_codes
            if cost_code is not None:
                bases[key] = (cost_code, sum(minor for _, _, minor in found))
    return bases


async def _holdings(
    session: AsyncSession,
    books: Books,
    filters: ReportFilters,
    converter: Converter,
    units: Mapping[AccountInfo, Mapping[int, Amounts]],
    as_of: dt.date,
) -> list[Holding]:
    currency = converter.currency
    held = sorted(
        (
            (account, code, minor)
            for account, per_bucket in units.items()
            if account.type in (ASSET, LIABILITY)
            for code, minor in per_bucket[0].items()
            if code != currency and minor != 0
        ),
        key=lambda item: (item[0].name, item[1]),
    )
    bases = await _cost_bases(
        session, books, filters, {(account, code) for account, code, _ in held}, as_of
    )

    def money(minor: int | None, code: str) -> Money | None:
        if minor is None:
            return None
        return Money(amount=format_minor(minor, books.precisions[code]), commodity=code)

    holdings: list[Holding] = []
    for account, code, minor in held:
        value = converter.value(0, {code: minor}).get(currency)
        basis = bases.get((account, code))
        gain: int | None = None
        if value is not None and basis is not None:
            basis_value = converter.value(0, {basis[0]: basis[1]})
            if set(basis_value) <= {currency}:
                gain = value - basis_value.get(currency, 0)
        holdings.append(
            Holding(
                account=account.name,
                commodity=code,
                units=format_minor(minor, books.precisions[code]),
                value=money(value, currency),
                cost_basis=money(basis[1], basis[0]) if basis is not None else None,
                unrealized_gain=money(gain, currency),
            )
        )
    return holdings


async def balance_sheet(
    session: AsyncSession,
    access: LedgerAccess,
    *,
    as_of: dt.date,
    currency: str | None,
    filters: ReportFilters,
    depth: int | None,
) -> BalanceSheetReport:
    """Assets, liabilities and equity at the end of `as_of`.

    Nothing is closed to equity in these books, so income and expenses to date appear as the
    current earnings line; units converted at a cost or a price leave each commodity
    unbalanced, and the conversions line (as in Beancount and hledger's --infer-equity) is
    what makes each commodity balance: with `currency`, the same line holds the unrealized
    gains, the exchange differences and the rounding of the valued lines. Both lines need the
    whole books, so a report filtered by account leaves them out.
    """
    books = await load_books(session, access.ledger)
    check_dates(as_of)
    units = await _account_sums(
        session,
        books,
        filters,
        books.covered(filters, ALL_TYPES) if filters.account is not None else None,
        until=as_of,
    )
    converter = await _converter(session, books, currency, [as_of])
    lines: dict[AccountType, dict[str, Amounts]] = {kind: {} for kind in AccountType}
    for account, per_bucket in units.items():
        valued = _value(converter, 0, per_bucket[0])
        lines[account.type][account.name] = (
            negate(valued) if account.type in CREDIT_NORMAL else valued
        )
    equity = dict(lines[EQUITY])
    if filters.account is None:
        earnings = add(total(lines[INCOME].values()), total(lines[EXPENSE].values()), -1)
        equity[EARNINGS] = earnings
        balance = add(total(lines[ASSET].values()), total(lines[LIABILITY].values()), -1)
        equity[CONVERSIONS] = add(balance, total(equity.values()), -1)
    holdings = (
        await _holdings(session, books, filters, converter, units, as_of)
        if converter is not None
        else []
    )
    return BalanceSheetReport(
        as_of=as_of,
        filters=filters.schema(),
        valuation=_valuation(converter),
        assets=_balance_section(books, lines[ASSET], depth),
        liabilities=_balance_section(books, lines[LIABILITY], depth),
        equity=_balance_section(books, equity, depth),
        holdings=holdings,
    )


# -- income statement ---------------------------------------------------------------------------


def _period_nodes(books: Books, roots: Sequence[trees.Node]) -> list[PeriodNode]:
    return _nodes(PeriodNode, roots, books.formats)


def _uppers(periods: Sequence[Period], *, opening: bool) -> tuple[dt.date, ...]:
    """Bucket bounds: period i is bucket i, or i + 1 after an opening bucket (before start)."""
    ends = tuple(period.end + ONE_DAY for period in periods)
    return (periods[0].start, *ends) if opening else ends


async def income_statement(
    session: AsyncSession,
    access: LedgerAccess,
    *,
    start: dt.date,
    end: dt.date,
    interval: Interval,
    depth: int | None,
    currency: str | None,
    filters: ReportFilters,
) -> IncomeStatement:
    """Income and expenses per period, both positive in their normal sense; net = the
    difference. With `currency`, each period is valued at the prices at its end."""
    books = await load_books(session, access.ledger)
    check_dates(start, end)
    periods = split(start, end, interval)
    count = len(periods)
    cells = await _account_sums(
        session,
        books,
        filters,
        books.covered(filters, (INCOME, EXPENSE)),
        since=start,
        until=end,
        uppers=_uppers(periods, opening=False),
    )
    converter = await _converter(session, books, currency, [period.end for period in periods])
    lines: dict[AccountType, dict[str, Sequence[Mapping[str, int]]]] = {INCOME: {}, EXPENSE: {}}
    for account, per_bucket in cells.items():
        columns: Sequence[Mapping[str, int]] = [
            per_bucket.get(index, EMPTY) for index in range(count)
        ]
        if converter is not None:
            columns = [converter.value(index, amounts) for index, amounts in enumerate(columns)]
        lines[account.type][account.name] = (
            [negate(amounts) for amounts in columns] if account.type is INCOME else columns
        )
    income = trees.build(lines[INCOME], count, books.names, depth)
    expenses = trees.build(lines[EXPENSE], count, books.names, depth)
    income_total = trees.section_total(income, count)
    expense_total = trees.section_total(expenses, count)
    return IncomeStatement(
        from_=start,
        to=end,
        interval=interval,
        depth=depth,
        filters=filters.schema(),
        valuation=_valuation(converter),
        periods=_periods_out(periods),
        income=PeriodSection(
            total=books.formats(income_total),
            accounts=_period_nodes(books, income),
        ),
        expenses=PeriodSection(
            total=books.formats(expense_total),
            accounts=_period_nodes(books, expenses),
        ),
        net_income=[
            books.format(add(dict(income_total[index]), expense_total[index], -1))
            for index in range(count)
        ],
    )


# -- net worth ----------------------------------------------------------------------------------


async def net_worth(
    session: AsyncSession,
    access: LedgerAccess,
    *,
    start: dt.date,
    end: dt.date,
    interval: Interval,
    currency: str | None,
    filters: ReportFilters,
) -> NetWorth:
    """Assets - liabilities at the end of each period: one query buckets every posting up to
    `end`; the running balances are summed per account, and valued per account exactly as
    the balance sheet does, so each point equals the balance sheet at that date."""
    books = await load_books(session, access.ledger)
    check_dates(start, end)
    periods = split(start, end, interval)
    cells = await _account_sums(
        session,
        books,
        filters,
        books.covered(filters, (ASSET, LIABILITY)),
        until=end,
        uppers=_uppers(periods, opening=True),
    )
    converter = await _converter(session, books, currency, [period.end for period in periods])
    running = {account: dict(per_bucket.get(0, {})) for account, per_bucket in cells.items()}
    points: list[NetWorthPoint] = []
    for index, period in enumerate(periods):
        assets: Amounts = {}
        liabilities: Amounts = {}
        for account, per_bucket in cells.items():
            balance = add(running[account], per_bucket.get(index + 1, {}))
            valued = _value(converter, index, balance)
            if account.type is ASSET:
                add(assets, valued)
            else:
                add(liabilities, valued, -1)
        points.append(
            NetWorthPoint(
                date=period.end,
                assets=books.format(assets),
                liabilities=books.format(liabilities),
                net_worth=books.format(add(dict(assets), liabilities, -1)),
            )
        )
    return NetWorth(
        from_=start,
        to=end,
        interval=interval,
        filters=filters.schema(),
        valuation=_valuation(converter),
        points=points,
    )


# -- cash flow ----------------------------------------------------------------------------------


async def cash_flow(
    session: AsyncSession,
    access: LedgerAccess,
    *,
    start: dt.date,
    end: dt.date,
    interval: Interval,
    currency: str | None,
    filters: ReportFilters,
) -> CashFlow:
    """Money into and out of the cash accounts (the asset accounts in the account filter).

    Each other posting of a transaction that touches a cash account is a flow, classified by
    its account's type and measured by its weight (what it was worth in the transaction's
    balance, so a purchase abroad counts in the currency paid). The weights of a balanced
    transaction cancel, so the flows add up to the change of the cash accounts except for
    conversions inside them (an exchange, shares bought at cost), shown as their own line:
    opening + net flows + conversions = closing, per commodity and period.
    """
    books = await load_books(session, access.ledger)
    check_dates(start, end)
    periods = split(start, end, interval)
    count = len(periods)
    cash_accounts = books.covered(filters, (ASSET,))
    cash = _ids(cash_accounts)
    balances_query = _postings(
        books,
        filters,
        [raw(Posting.commodity_id), Posting.amount],
        account_ids=cash,
        until=end,
        uppers=_uppers(periods, opening=True),
    ).subquery()
    keys = [balances_query.c.commodity_id, balances_query.c.bucket]
    changes: dict[int, Amounts] = defaultdict(dict)
    for commodity_id, index, minor in await fetch(
        session, select(*keys, func.sum(balances_query.c.amount)).group_by(*keys)
    ):
        changes[index][books.codes[commodity_id]] = int(minor)

    other = aliased(Posting)
    touches_cash = (
        select(other.id)
        .where(
            other.ledger_id == Posting.ledger_id,
            other.transaction_id == Posting.transaction_id,
            # A posting repeats its transaction's date: this keeps the probe in the range.
            other.date == Posting.date,
            other.date >= start,
            other.date <= end,
            other.account_id.in_(cash),
        )
        .exists()
    )
    counters = _postings(
        books,
        filters,
        [raw(Posting.account_id), raw(Posting.weight_commodity_id), Posting.weight],
        account_ids=None,
        since=start,
        until=end,
        uppers=_uppers(periods, opening=False),
        where=[Posting.account_id.not_in(cash), touches_cash],
    ).subquery()
    weight = counters.c.weight
    keys = [counters.c.account_id, counters.c.weight_commodity_id, counters.c.bucket]
    inflows: dict[CashFlowKind, list[Amounts]] = {
        kind: [{} for _ in periods] for kind in CashFlowKind
    }
    outflows: dict[CashFlowKind, list[Amounts]] = {
        kind: [{} for _ in periods] for kind in CashFlowKind
    }
    kinds = {key: CashFlowKind(account.type.value) for key, account in books.accounts.items()}
    for account_id, commodity_id, index, money_in, money_out in await fetch(
        session,
        select(
            *keys,
            func.sum(case((weight < 0, -weight), else_=0)),
            func.sum(case((weight > 0, weight), else_=0)),
        ).group_by(*keys),
    ):
        kind, code = kinds[account_id], books.codes[commodity_id]
        cell = inflows[kind][index]
        cell[code] = cell.get(code, 0) + int(money_in)
        cell = outflows[kind][index]
        cell[code] = cell.get(code, 0) + int(money_out)

    dates = [start - ONE_DAY, *(period.end for period in periods)]
    converter = await _converter(session, books, currency, dates)
    balances: list[Amounts] = []
    running: Amounts = {}
    for index in range(count + 1):
        add(running, changes.get(index, {}))
        balances.append(_value(converter, index, dict(running)))
    flows: list[CashFlowLine] = []
    explained: list[Amounts] = [{} for _ in periods]
    for kind in CashFlowKind:
        money_in = [_value(converter, i + 1, inflows[kind][i]) for i in range(count)]
        money_out = [_value(converter, i + 1, outflows[kind][i]) for i in range(count)]
        net = [add(dict(money_in[i]), money_out[i], -1) for i in range(count)]
        for index in range(count):
            add(explained[index], net[index])
        flows.append(
            CashFlowLine(
                kind=kind,
                inflow=books.formats(money_in),
                outflow=books.formats(money_out),
                net=books.formats(net),
            )
        )
    net_change = [add(dict(balances[i + 1]), balances[i], -1) for i in range(count)]
    return CashFlow(
        from_=start,
        to=end,
        interval=interval,
        filters=filters.schema(),
        valuation=_valuation(converter),
        accounts=sorted(account.name for account in cash_accounts),
        periods=_periods_out(periods),
        opening=books.formats(balances[:-1]),
        flows=flows,
        conversions=[
            books.format(add(dict(net_change[i]), explained[i], -1)) for i in range(count)
        ],
        net_change=books.formats(net_change),
        closing=books.formats(balances[1:]),
    )


# -- spending -----------------------------------------------------------------------------------


def share(part: int, whole: int) -> str:
    """part / whole with four decimals, rounded half to even: exact, in integers (the sign of
    a share that rounds to zero is kept, as Decimal keeps it: "-0.0000")."""
    quotient, remainder = divmod(abs(part) * SHARE_SCALE, abs(whole))
    if 2 * remainder > abs(whole) or (2 * remainder == abs(whole) and quotient % 2 == 1):
        quotient += 1
    text = format_minor(quotient, SHARE_PLACES)
    return "-" + text if (part < 0) != (whole < 0) else text


async def spending(
    session: AsyncSession,
    access: LedgerAccess,
    *,
    start: dt.date,
    end: dt.date,
    group_by: GroupBy,
    depth: int | None,
    currency: str | None,
    filters: ReportFilters,
) -> Spending:
    """Expenses between the dates by account (folded to `depth`), payee or tag.

    A transaction with several tags counts under each, so tag groups can add up to more than
    the total; refunds make a group smaller, possibly negative.
    """
    books = await load_books(session, access.ledger)
    check_dates(start, end)
    expenses = books.covered(filters, (EXPENSE,))
    by_account = await _account_sums(session, books, filters, expenses, since=start, until=end)
    converter = await _converter(session, books, currency, [end])
    valued = {
        account: _value(converter, 0, per_bucket[0]) for account, per_bucket in by_account.items()
    }
    grand_total = total(valued.values())
    groups: dict[str | None, Amounts] = defaultdict(dict)
    if group_by is GroupBy.ACCOUNT:
        for account, amounts in valued.items():
            add(groups[trees.truncate(account.name, depth)], amounts)
    else:
        tags = _tag_table(books.dialect) if group_by is GroupBy.TAG else None
        key = tags.c.value if tags is not None else Transaction.payee
        rows = _postings(
            books,
            filters,
            [key.label("key"), raw(Posting.commodity_id), Posting.amount],
            account_ids=_ids(expenses),
            since=start,
            until=end,
            join_transactions=True,
            tags=tags,
        ).subquery()
        found: dict[str | None, Amounts] = defaultdict(dict)
        for group, commodity_id, minor in await fetch(
            session,
            select(rows.c.key, rows.c.commodity_id, func.sum(rows.c.amount)).group_by(
                rows.c.key, rows.c.commodity_id
            ),
        ):
            found[group][books.codes[commodity_id]] = int(minor)
        for group, amounts in found.items():
            groups[group] = _value(converter, 0, amounts)
    order = currency or books.base_currency
    answer = [
        SpendingGroup(
            key=group,
            amount=books.format(amounts),
            share={
                code: share(minor, grand_total[code])
                for code, minor in sorted(amounts.items())
                if minor != 0 and grand_total.get(code, 0) != 0
            },
        )
        for group, amounts in sorted(
            groups.items(),
            key=lambda item: (
                order not in item[1],
                -item[1].get(order, 0),
                item[0] is None,
                item[0] or "",
            ),
        )
        if not trees.is_zero(amounts)
    ]
    return Spending(
        from_=start,
        to=end,
        group_by=group_by,
        depth=depth,
        filters=filters.schema(),
        valuation=_valuation(converter),
        total=books.format(grand_total),
        groups=answer,
    )


# -- trial balance ------------------------------------------------------------------------------


async def trial_balance(
    session: AsyncSession,
    access: LedgerAccess,
    *,
    as_of: dt.date,
    currency: str | None,
    filters: ReportFilters,
) -> TrialBalance:
    """Every account with postings up to `as_of`, in stored signs (debit positive).

    Units do not sum to zero when a transaction converts between commodities (shares bought
    at cost, an exchange at a price); what balances is the weights, so both are given and
    `balanced` checks the weights. With `currency` the units are valued; weights stay as booked.
    """
    books = await load_books(session, access.ledger)
    check_dates(as_of)
    rows = _postings(
        books,
        filters,
        [
            raw(Posting.account_id),
            raw(Posting.commodity_id),
            raw(Posting.weight_commodity_id),
            Posting.amount,
            Posting.weight,
        ],
        account_ids=_ids(books.covered(filters, ALL_TYPES))
        if filters.account is not None
        else None,
        until=as_of,
    ).subquery()
    keys = [rows.c.account_id, rows.c.commodity_id, rows.c.weight_commodity_id]
    units: dict[AccountInfo, Amounts] = defaultdict(dict)
    weights: dict[AccountInfo, Amounts] = defaultdict(dict)
    for account_id, commodity_id, weight_id, amount, weight in await fetch(
        session, select(*keys, func.sum(rows.c.amount), func.sum(rows.c.weight)).group_by(*keys)
    ):
        account = books.accounts[account_id]
        add(units[account], {books.codes[commodity_id]: int(amount)})
        add(weights[account], {books.codes[weight_id]: int(weight)})
    converter = await _converter(session, books, currency, [as_of])
    lines = sorted(units, key=lambda account: account.name)
    balances = {account: _value(converter, 0, units[account]) for account in lines}
    weight_total = total(weights.values())
    return TrialBalance(
        as_of=as_of,
        filters=filters.schema(),
        valuation=_valuation(converter),
        accounts=[
            TrialBalanceLine(
                account=account.name,
                type=account.type,
                balance=books.format(balances[account]),
                weight=books.format(weights[account]),
            )
            for account in lines
        ],
        total=books.format(total(balances.values())),
        weight_total=books.format(weight_total),
        balanced=trees.is_zero(weight_total),
    )
