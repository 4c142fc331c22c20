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
import functools
import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    Date,
    Integer,
    Select,
    Uuid,
    and_,
    bindparam,
    func,
    or_,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from finance import audit
from finance.accounts.service import (
    SEPARATOR,
    check_account_accepts,
    descendants_of,
    get_account,
)
from finance.balances.schemas import AssertionIn, AssertionOut
from finance.commodities.service import resolve_commodity
from finance.db import one_snapshot
from finance.errors import NotFound, Unprocessable
from finance.models import Account, AccountType, BalanceAssertion, Commodity, Posting
from finance.money import AmountError, format_minor, to_minor
from finance.schemas import PageParams, cursor_date, cursor_int, cursor_key, cursor_uuid
from finance.transactions.service import (
    ACCOUNTS,
    POSTINGS,
    SHOWN_COMMODITIES,
    TRANSACTIONS,
    in_subtree,
    shown,
)

# The read paths select rows, not objects, with ids as their text (`shown`), and answer plain
# data in the shape of their response models (`BalanceSheet`, `AccountBalanceOut`,
# `Page[RegisterEntry]`), which the router sends without validating it again; tests hold the
# answers to the models. Statements are built once: only their parameters change.
A = ACCOUNTS.c
P = POSTINGS.c
T = TRANSACTIONS.c

Sums = dict[str, int]  # commodity id (text) -> minor units


async def _commodities(
    session: AsyncSession, ledger_id: uuid.UUID, ids: Collection[str]
) -> dict[str, Any]:
    """The rows of `SHOWN_COMMODITIES` (code, precision) of `ids`, by id."""
    if not ids:
        return {}
    rows = await session.execute(SHOWN_COMMODITIES, {"ledger_id": ledger_id, "ids": list(ids)})
    return {row.id: row for row in rows}


def _amounts(sums: Mapping[str, int], commodities: Mapping[str, Any]) -> list[dict[str, str]]:
    """`Amount`s: decimal strings at each commodity's precision, by code; zeros left out."""
    amounts = []
    for commodity_id, total in sums.items():
        if total:
            commodity = commodities[commodity_id]
            amounts.append(
                {"amount": format_minor(total, commodity.precision), "commodity": commodity.code}
            )
    amounts.sort(key=itemgetter("commodity"))
    return amounts


def _parents(name: str) -> Iterable[str]:
    """`Assets:Bank:Checking` -> `Assets`, `Assets:Bank`, `Assets:Bank:Checking`."""
    parts = name.split(SEPARATOR)
    for depth in range(1, len(parts) + 1):
        yield SEPARATOR.join(parts[:depth])


_SUMS = (
    select(shown(P.account_id), shown(P.commodity_id), func.sum(P.amount))
    .where(P.ledger_id == bindparam("ledger_id"), P.date <= bindparam("as_of"))
    .group_by(P.account_id, P.commodity_id)
)
_ACCOUNTS = select(shown(A.id), A.name, A.type).where(A.ledger_id == bindparam("ledger_id"))


async def balance_sheet(
    session: AsyncSession, ledger_id: uuid.UUID, as_of: dt.date
) -> dict[str, Any]:
    """Every account's balance at the end of `as_of`, every path's roll-up, each type's total:
    `BalanceSheet` as plain data.

    One grouped SUM over the postings (an index-only scan of `ix_postings_balance` on
    PostgreSQL); the roll-ups add the per-account sums up each account's path.
    """
    await one_snapshot(session)
    rows = (await session.execute(_SUMS, {"ledger_id": ledger_id, "as_of": as_of})).all()
    accounts = (await session.execute(_ACCOUNTS, {"ledger_id": ledger_id})).all()
    commodities = await _commodities(session, ledger_id, {row[1] for row in rows})

    own: dict[str, Sums] = defaultdict(dict)
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
    ids = {name: account_id for account_id, name, _ in accounts}
    return {
        "as_of": as_of,
        "accounts": [
            {
                "account_id": account_id,
                "name": name,
                "type": kind,
                "balances": _amounts(own.get(account_id, {}), commodities),
            }
            for account_id, name, kind in sorted(accounts, key=itemgetter(1))  # by name
        ],
        "totals": [
            {
                "path": path,
                "account_id": ids.get(path),
                "balances": _amounts(totals[path], commodities),
            }
            for path in sorted(totals)
        ],
        "by_type": {kind: _amounts(sums, commodities) for kind, sums in by_type.items()},
    }


_ACCOUNT_NAME = select(A.name).where(
    A.ledger_id == bindparam("ledger_id"), A.id == bindparam("account_id")
)


async def _account_name(session: AsyncSession, ledger_id: uuid.UUID, account_id: uuid.UUID) -> str:
    """The account's name, or 404 (also for another ledger's account)."""
    name = await session.scalar(_ACCOUNT_NAME, {"ledger_id": ledger_id, "account_id": account_id})
    if name is None:
        raise NotFound("No such account")
    return str(name)


@functools.cache
def _account_sums(dialect: str, descendants: bool) -> Select[Any]:
    return (
        select(shown(P.commodity_id), func.sum(P.amount))
        .where(
            P.ledger_id == bindparam("ledger_id"),
            P.date <= bindparam("as_of"),
            in_subtree(dialect, descendants),
        )
        .group_by(P.commodity_id)
    )


async def account_balance(
    session: AsyncSession,
    ledger_id: uuid.UUID,
    account_id: uuid.UUID,
    as_of: dt.date,
    include_descendants: bool,
) -> dict[str, Any]:
    """`AccountBalanceOut` as plain data."""
    await one_snapshot(session)
    name = await _account_name(session, ledger_id, account_id)
    given = {"ledger_id": ledger_id, "account_id": account_id, "as_of": as_of}
    statement = _account_sums(session.get_bind().dialect.name, include_descendants)
    rows = (await session.execute(statement, given)).all()
    sums = {commodity_id: int(total) for commodity_id, total in rows}
    return {
        "account_id": str(account_id),
        "name": name,
        "as_of": as_of,
        "include_descendants": include_descendants,
        "balances": _amounts(sums, await _commodities(session, ledger_id, sums.keys())),
    }


@functools.cache
def _register(dialect: str, descendants: bool, given: frozenset[str]) -> Select[Any]:
    """The register's statement for the parameters `given` (`date_from`, `date_to`, the
    cursor's `after_date`...): one per combination, built once.

    Postings are ordered by (date, transaction id, position). The running balance is a window
    SUM over all of the account's postings in that order, per commodity, computed in a subquery
    before the date range and the page are applied, so it is right on every page and for
    every range (a range starting in March still counts January).
    """
    running = func.sum(P.amount).over(
        partition_by=P.commodity_id,
        order_by=(P.date, P.transaction_id, P.position),
        rows=(None, 0),
    )
    ledger_id = bindparam("ledger_id", type_=Uuid())
    postings = (
        select(
            P.id,
            P.transaction_id,
            P.position,
            P.date,
            P.account_id,
            P.commodity_id,
            P.amount,
            P.memo,
            running.label("balance"),
        )
        .where(P.ledger_id == ledger_id, in_subtree(dialect, descendants))
        .subquery("register")
    )
    r = postings.c
    query = select(*(shown(column) for column in postings.c), T.status, T.payee, T.narration).join(
        TRANSACTIONS, and_(T.ledger_id == ledger_id, T.id == r.transaction_id)
    )
    if "date_from" in given:
        query = query.where(r.date >= bindparam("date_from"))
    if "date_to" in given:
        query = query.where(r.date <= bindparam("date_to"))
    if "after_date" in given:
        query = query.where(
            tuple_(r.date, r.transaction_id, r.position)
            < tuple_(
                bindparam("after_date", type_=Date()),
                bindparam("after_id", type_=Uuid()),
                bindparam("after_position", type_=Integer()),
            )
        )
    return query.order_by(r.date.desc(), r.transaction_id.desc(), r.position.desc()).limit(
        bindparam("limit", type_=Integer())
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
) -> dict[str, Any]:
    """The account's postings, newest first, each with the running balance after it (see
    `_register`): `Page[RegisterEntry]` as plain data."""
    await one_snapshot(session)
    await _account_name(session, ledger_id, account_id)
    given: dict[str, Any] = {
        "ledger_id": ledger_id,
        "account_id": account_id,
        "limit": page.limit + 1,
    }
    if date_from is not None:
        given["date_from"] = date_from
    if date_to is not None:
        given["date_to"] = date_to
    if page.cursor is not None:
        given["after_date"], given["after_id"], given["after_position"] = cursor_key(
            page.cursor, cursor_date, cursor_uuid, cursor_int
        )
    dialect = session.get_bind().dialect.name
    statement = _register(dialect, include_descendants, frozenset(given))
    rows = (await session.execute(statement, given)).all()
    on_page = rows[: page.limit]
    commodities = await _commodities(session, ledger_id, {row.commodity_id for row in on_page})
    entries = []
    for row in on_page:
        commodity = commodities[row.commodity_id]
        precision = commodity.precision
        entries.append(
            {
                "posting_id": row.id,
                "transaction_id": row.transaction_id,
                "date": row.date,
                "status": row.status,
                "payee": row.payee,
                "narration": row.narration,
                "account_id": row.account_id,
                "amount": format_minor(row.amount, precision),
                "commodity": commodity.code,
                "memo": row.memo,
                "balance": format_minor(int(row.balance), precision),
            }
        )
    last = on_page[-1] if len(rows) > page.limit else None
    return {
        "items": entries,
        "next_cursor": page.next_cursor(
            [last.date.isoformat(), last.transaction_id, last.position] if last else None
        ),
    }


# --- balance assertions ----------------------------------------------------------------------

ASSERTION = "balance_assertion"


def _assertions(ledger_id: uuid.UUID) -> Select[Any]:
    """Each assertion with its account's name, its commodity and the actual balance.

    The actual balance is a correlated SUM over the postings of the asserted account and its
    descendants (`descendants_of`), dated before the assertion's date: the balance at the
    start of that day.
    """
    asserted = aliased(Account, name="asserted")
    below = aliased(Account, name="below")
    a = BalanceAssertion
    actual = (
        select(func.coalesce(func.sum(Posting.amount), 0))
        .join(below, and_(below.ledger_id == Posting.ledger_id, below.id == Posting.account_id))
        .where(
            Posting.ledger_id == ledger_id,
            Posting.commodity_id == a.commodity_id,
            Posting.date < a.date,
            or_(
                below.id == a.account_id,
                descendants_of(asserted.name, below.name),
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
