"""Balances as of a date, account registers with running balances, and balance assertions.

Everything here is summed by the database over integers of minor units: one grouped SUM for all
balances, a window SUM for a register, one correlated SUM per assertion in a single query.
Python only formats the results and rolls the per-account sums up the account tree (a loop over
accounts, never over postings).

An account's figures cover its descendants (the accounts named below it, `Assets:Bank` for
`Assets:Bank:Checking`) wherever `include_descendants` is true, and always for assertions, as
in Beancount.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Date, Integer, Select, Uuid, and_, func, literal, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from finance import audit
from finance.accounts.service import SEPARATOR, check_account_accepts, get_account
from finance.balances.schemas import (
    AccountBalance,
    AccountBalanceOut,
    AssertionIn,
    AssertionOut,
    BalanceSheet,
    PathTotal,
    RegisterEntry,
)
from finance.commodities.service import resolve_commodity
from finance.errors import NotFound, Unprocessable
from finance.models import (
    Account,
    AccountType,
    BalanceAssertion,
    Commodity,
    Posting,
    Transaction,
)
from finance.money import AmountError, format_minor, to_minor
from finance.schemas import Page, PageParams, cursor_date, cursor_int, cursor_key, cursor_uuid
from finance.transactions.schemas import Amount
from finance.transactions.service import Lookups, subtree

Sums = dict[uuid.UUID, int]  # commodity id -> minor units


def _amounts(
    sums: Mapping[uuid.UUID, int], commodities: Mapping[uuid.UUID, Commodity]
) -> list[Amount]:
    """Decimal strings at each commodity's precision, by code; zero amounts left out."""
    return sorted(
        (
            Amount(
                amount=format_minor(total, commodities[commodity_id].precision),
                commodity=commodities[commodity_id].code,
            )
            for commodity_id, total in sums.items()
            if total
        ),
        key=lambda amount: amount.commodity,
    )


def _parents(name: str) -> Iterable[str]:
    """`Assets:Bank:Checking` -> `Assets`, `Assets:Bank`, `Assets:Bank:Checking`."""
    parts = name.split(SEPARATOR)
    for depth in range(1, len(parts) + 1):
        yield SEPARATOR.join(parts[:depth])


async def balance_sheet(
    session: AsyncSession, ledger_id: uuid.UUID, as_of: dt.date
) -> BalanceSheet:
    """Every account's balance at the end of `as_of`, every path's roll-up, each type's total.

    One grouped SUM over the postings (an index-only scan of `ix_postings_balance` on
    PostgreSQL); the roll-ups add the per-account sums up each account's path.
    """
    rows = (
        await session.execute(
            select(Posting.account_id, Posting.commodity_id, func.sum(Posting.amount))
            .where(Posting.ledger_id == ledger_id, Posting.date <= as_of)
            .group_by(Posting.account_id, Posting.commodity_id)
        )
    ).all()
    accounts = (await session.scalars(select(Account).where(Account.ledger_id == ledger_id))).all()
    lookups = Lookups(ledger_id)
    await lookups.load_commodity_ids(session, {commodity_id for _, commodity_id, _ in rows})
    commodities = lookups.commodities_by_id

    own: dict[uuid.UUID, Sums] = defaultdict(dict)
    for account_id, commodity_id, total in rows:
        own[account_id][commodity_id] = int(total)  # PostgreSQL sums bigints as NUMERIC
    totals: dict[str, Sums] = {}
    by_type: dict[AccountType, Sums] = {kind: {} for kind in AccountType}
    for account in accounts:
        sums = own.get(account.id, {})
        for path in _parents(account.name):
            rolled = totals.setdefault(path, {})
            for commodity_id, total in sums.items():
                rolled[commodity_id] = rolled.get(commodity_id, 0) + total
        typed = by_type[account.type]
        for commodity_id, total in sums.items():
            typed[commodity_id] = typed.get(commodity_id, 0) + total
    by_name = {account.name: account for account in accounts}
    return BalanceSheet(
        as_of=as_of,
        accounts=[
            AccountBalance(
                account_id=account.id,
                name=account.name,
                type=account.type,
                balances=_amounts(own.get(account.id, {}), commodities),
            )
            for account in sorted(accounts, key=lambda account: account.name)
        ],
        totals=[
            PathTotal(
                path=path,
                account_id=by_name[path].id if path in by_name else None,
                balances=_amounts(totals[path], commodities),
            )
            for path in sorted(totals)
        ],
        by_type={kind: _amounts(sums, commodities) for kind, sums in by_type.items()},
    )


def _in_subtree(ledger_id: uuid.UUID, account: Account, include_descendants: bool) -> Any:
    return Posting.account_id.in_(
        select(Account.id).where(
            Account.ledger_id == ledger_id, subtree(account, include_descendants)
        )
    )


async def account_balance(
    session: AsyncSession,
    ledger_id: uuid.UUID,
    account_id: uuid.UUID,
    as_of: dt.date,
    include_descendants: bool,
) -> AccountBalanceOut:
    account = await get_account(session, ledger_id, account_id)
    rows = (
        await session.execute(
            select(Posting.commodity_id, func.sum(Posting.amount))
            .where(
                Posting.ledger_id == ledger_id,
                Posting.date <= as_of,
                _in_subtree(ledger_id, account, include_descendants),
            )
            .group_by(Posting.commodity_id)
        )
    ).all()
    lookups = Lookups(ledger_id)
    await lookups.load_commodity_ids(session, {commodity_id for commodity_id, _ in rows})
    return AccountBalanceOut(
        account_id=account.id,
        name=account.name,
        as_of=as_of,
        include_descendants=include_descendants,
        balances=_amounts(
            {commodity_id: int(total) for commodity_id, total in rows},
            lookups.commodities_by_id,
        ),
    )


async def register(
    session: AsyncSession,
    ledger_id: uuid.UUID,
    account_id: uuid.UUID,
    *,
    include_descendants: bool,
    date_from: dt.date | None,
    date_to: dt.date | None,
    page: PageParams,
) -> Page[RegisterEntry]:
    """The account's postings, newest first, each with the running balance after it.

    Postings are ordered by (date, transaction id, position). The running balance is a window
    SUM over all of the account's postings in that order, per commodity, computed in a subquery
    before the date range and the page are applied, so it is right on every page and for
    every range (a range starting in March still counts January).
    """
    account = await get_account(session, ledger_id, account_id)
    running = func.sum(Posting.amount).over(
        partition_by=Posting.commodity_id,
        order_by=(Posting.date, Posting.transaction_id, Posting.position),
        rows=(None, 0),
    )
    postings = (
        select(
            Posting.id,
            Posting.transaction_id,
            Posting.position,
            Posting.date,
            Posting.account_id,
            Posting.commodity_id,
            Posting.amount,
            Posting.memo,
            running.label("balance"),
        )
        .where(Posting.ledger_id == ledger_id, _in_subtree(ledger_id, account, include_descendants))
        .subquery("register")
    )
    p = postings.c
    query: Select[Any] = select(
        postings, Transaction.status, Transaction.payee, Transaction.narration
    ).join(
        Transaction, and_(Transaction.ledger_id == ledger_id, Transaction.id == p.transaction_id)
    )
    if date_from is not None:
        query = query.where(p.date >= date_from)
    if date_to is not None:
        query = query.where(p.date <= date_to)
    if page.cursor is not None:
        day, transaction_id, position = cursor_key(
            page.cursor, cursor_date, cursor_uuid, cursor_int
        )
        query = query.where(
            tuple_(p.date, p.transaction_id, p.position)
            < tuple_(
                literal(day, Date()), literal(transaction_id, Uuid()), literal(position, Integer())
            )
        )
    query = query.order_by(p.date.desc(), p.transaction_id.desc(), p.position.desc()).limit(
        page.limit + 1
    )
    rows = (await session.execute(query)).all()
    lookups = Lookups(ledger_id)
    await lookups.load_commodity_ids(session, {row.commodity_id for row in rows})
    commodities = lookups.commodities_by_id
    entries = []
    for row in rows[: page.limit]:
        precision = commodities[row.commodity_id].precision
        entries.append(
            RegisterEntry(
                posting_id=row.id,
                transaction_id=row.transaction_id,
                date=row.date,
                status=row.status,
                payee=row.payee,
                narration=row.narration,
                account_id=row.account_id,
                amount=format_minor(row.amount, precision),
                commodity=commodities[row.commodity_id].code,
                memo=row.memo,
                balance=format_minor(int(row.balance), precision),
            )
        )
    last = rows[page.limit - 1] if len(rows) > page.limit else None
    return Page(
        items=entries,
        next_cursor=page.next_cursor(
            [last.date.isoformat(), str(last.transaction_id), last.position] if last else None
        ),
    )


# --- balance assertions ----------------------------------------------------------------------

ASSERTION = "balance_assertion"


def _assertions(ledger_id: uuid.UUID) -> Select[Any]:
    """Each assertion with its account's name, its commodity and the actual balance.

    The actual balance is a correlated SUM over the postings of the asserted account and its
    descendants (names below it, compared with `substr` so that case and `%` or `_` in names
    are exact), dated before the assertion's date: the balance at the start of that day.
    """
    asserted = aliased(Account, name="asserted")
    below = aliased(Account, name="below")
    a = BalanceAssertion
    prefix = asserted.name + SEPARATOR
    actual = (
        select(func.coalesce(func.sum(Posting.amount), 0))
        .join(below, and_(below.ledger_id == Posting.ledger_id, below.id == Posting.account_id))
        .where(
            Posting.ledger_id == ledger_id,
            Posting.commodity_id == a.commodity_id,
            Posting.date < a.date,
            or_(
                below.id == a.account_id,
                func.substr(below.name, 1, func.length(prefix)) == prefix,
            ),
        )
        .correlate(a, asserted)
        .scalar_subquery()
    )
    return (
        select(a, asserted.name, Commodity.code, Commodity.precision, actual.label("actual"))
        .join(asserted, and_(asserted.ledger_id == a.ledger_id, asserted.id == a.account_id))
        .join(Commodity, and_(Commodity.ledger_id == a.ledger_id, Commodity.id == a.commodity_id))
        .where(a.ledger_id == ledger_id)
        .order_by(a.date, asserted.name, a.id)
    )


def _assertion_out(row: Any) -> AssertionOut:
    assertion: BalanceAssertion = row[0]
    name, code, precision, actual = row[1], row[2], row[3], int(row[4])
    return AssertionOut(
        id=assertion.id,
        account_id=assertion.account_id,
        account=name,
        date=assertion.date,
        amount=format_minor(assertion.amount, precision),
        commodity=code,
        actual=format_minor(actual, precision),
        difference=format_minor(actual - assertion.amount, precision),
        passing=actual == assertion.amount,
        created_at=assertion.created_at,
    )


async def list_assertions(session: AsyncSession, ledger_id: uuid.UUID) -> list[AssertionOut]:
    """Every assertion, checked now, in one query; by date, then account name."""
    rows = await session.execute(_assertions(ledger_id))
    return [_assertion_out(row) for row in rows]


async def get_assertion(
    session: AsyncSession, ledger_id: uuid.UUID, assertion_id: uuid.UUID
) -> AssertionOut:
    row = (
        await session.execute(_assertions(ledger_id).where(BalanceAssertion.id == assertion_id))
    ).one_or_none()
    if row is None:
        raise NotFound("No such balance assertion")
    return _assertion_out(row)


def _field_error(name: str, message: str) -> Unprocessable:
    return Unprocessable(
        f"{name}: {message}",
        errors=[{"loc": ["body", name], "msg": message, "type": "value_error"}],
    )


async def create_assertion(
    session: AsyncSession, ledger_id: uuid.UUID, user_id: uuid.UUID | None, data: AssertionIn
) -> AssertionOut:
    """Record an assertion; whether it passes is worked out whenever it is read."""
    try:
        account = await get_account(session, ledger_id, data.account_id, lock=True)
    except NotFound as exc:
        raise _field_error("account_id", "no such account in this ledger") from exc
    try:
        commodity = await resolve_commodity(session, ledger_id, data.commodity, user_id=user_id)
    except Unprocessable as exc:
        raise _field_error("commodity", exc.detail) from exc
    try:
        check_account_accepts(account, data.date, commodity.code)
    except Unprocessable as exc:
        raise _field_error("account_id", exc.detail) from exc
    try:
        amount = to_minor(data.amount, commodity.precision)
    except AmountError as exc:
        raise _field_error("amount", f"{exc} ({commodity.code})") from exc
    assertion = BalanceAssertion(
        ledger_id=ledger_id,
        account_id=account.id,
        date=data.date,
        commodity_id=commodity.id,
        amount=amount,
    )
    session.add(assertion)
    await session.flush()
    created = await get_assertion(session, ledger_id, assertion.id)
    await audit.record(
        session,
        ledger_id=ledger_id,
        user_id=user_id,
        action="create",
        object_type=ASSERTION,
        object_id=assertion.id,
        after=created.model_dump(mode="json"),
    )
    return created


async def delete_assertion(
    session: AsyncSession, ledger_id: uuid.UUID, user_id: uuid.UUID | None, assertion_id: uuid.UUID
) -> None:
    before = await get_assertion(session, ledger_id, assertion_id)
    assertion = await session.get(BalanceAssertion, (ledger_id, assertion_id))
    assert assertion is not None
    await session.delete(assertion)
    await session.flush()
    await audit.record(
        session,
        ledger_id=ledger_id,
        user_id=user_id,
        action="delete",
        object_type=ASSERTION,
        object_id=assertion_id,
        before=before.model_dump(mode="json"),
    )
