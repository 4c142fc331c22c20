"""Accounts: a hierarchy named by full paths (`Assets:Bank:Checking`).

Parents are implied by the paths; an account's descendants are the accounts whose name starts
with its name and a colon. Paths are compared with `substr`, not `LIKE`: SQLite's `LIKE` ignores
case, and a name may contain `%` or `_`.

The root of a name is its type, as in Beancount: Assets, Liabilities, Equity, Income,
Expenses. A root alone is not an account (it is the type's total).

An account's rules (its open dates and allowed commodities) gate the postings written to it.
A writer of postings reads the account with `get_account(..., lock=True)`: on PostgreSQL the
row is then share-locked, so a concurrent change of those rules, which takes the row's update
lock here, waits for it (and it for the change), and no posting slips outside the rules.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, SQLColumnExpression, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from finance import audit
from finance.accounts.schemas import AccountRead
from finance.commodities.service import check_code, resolve_commodity
from finance.errors import Conflict, NotFound, Unprocessable
from finance.models import Account, AccountType, BalanceAssertion, Commodity, Posting

SEPARATOR = ":"
ROOTS: dict[str, AccountType] = {
    "Assets": AccountType.ASSET,
    "Liabilities": AccountType.LIABILITY,
    "Equity": AccountType.EQUITY,
    "Income": AccountType.INCOME,
    "Expenses": AccountType.EXPENSE,
}


async def get_account(
    session: AsyncSession, ledger_id: uuid.UUID, account_id: uuid.UUID, *, lock: bool = False
) -> Account:
    """The ledger's account, or 404 (also for another ledger's account).

    `lock`: share-lock the row (PostgreSQL) because the caller writes postings or assertions
    to it (see the module docstring).
    """
    if lock:
        account = await session.scalar(
            select(Account)
            .where(Account.ledger_id == ledger_id, Account.id == account_id)
            .with_for_update(read=True)
            .execution_options(populate_existing=True)
        )
    else:
        account = await session.get(Account, (ledger_id, account_id))
    if account is None:
        raise NotFound("No such account")
    return account


def check_account_accepts(account: Account, date: dt.date, commodity_code: str) -> None:
    """Refuse a posting (or an assertion) the account cannot take: 422 naming the reason.

    An account is open from `opened_on` through `closed_on`, both days included; an unset
    bound is open-ended. `allowed_commodities` unset means any commodity.
    """
    if account.opened_on is not None and date < account.opened_on:
        raise Unprocessable(
            f"Account {account.name} opens on {account.opened_on.isoformat()}; "
            f"{date.isoformat()} is before that"
        )
    if account.closed_on is not None and date > account.closed_on:
        raise Unprocessable(
            f"Account {account.name} was closed on {account.closed_on.isoformat()}; "
            f"{date.isoformat()} is after that"
        )
    allowed = account.allowed_commodities
    if allowed is not None and commodity_code not in allowed:
        raise Unprocessable(
            f"Account {account.name} takes only {', '.join(allowed) or 'no commodity'}, "
            f"not {commodity_code}"
        )


def check_name(name: str) -> AccountType:
    """Validate a full path; its type is that of its root."""
    segments = name.split(SEPARATOR)
    root = segments[0]
    if root not in ROOTS:
        raise Unprocessable(
            f"Account name {name!r} must start with one of {', '.join(ROOTS)} "
            "(the root is the account's type)"
        )
    if len(segments) < 2:
        raise Unprocessable(f"{root} alone is not an account: name one below it, like {root}:Cash")
    for segment in segments[1:]:
        if not segment or segment != segment.strip() or not segment.isprintable():
            raise Unprocessable(
                f"Account name {name!r} has an empty level, spaces around a level or an "
                "unprintable character"
            )
    return ROOTS[root]


def descendants_of(
    name: str | SQLColumnExpression[str], column: SQLColumnExpression[str] = Account.name
) -> ColumnElement[bool]:
    """`column` (by default the account's name) names an account strictly below `name`, a
    path or an expression of one. Compared with `substr`: exact and case-sensitive, where LIKE
    would take `%` and `_` in names for wildcards (and ignore case on SQLite)."""
    prefix = name + SEPARATOR
    length = len(prefix) if isinstance(prefix, str) else func.length(prefix)
    return func.substr(column, 1, length) == prefix


def representation(account: Account) -> dict[str, Any]:
    return AccountRead.model_validate(account).model_dump(mode="json")


async def list_accounts(
    session: AsyncSession,
    ledger_id: uuid.UUID,
    *,
    type_: AccountType | None = None,
    prefix: str | None = None,
) -> Sequence[Account]:
    """By name, byte order on both databases; `prefix` is a path: the account and below."""
    statement = select(Account).where(Account.ledger_id == ledger_id)
    if type_ is not None:
        statement = statement.where(Account.type == type_)
    if prefix is not None:
        prefix = prefix.rstrip(SEPARATOR)
        statement = statement.where(or_(Account.name == prefix, descendants_of(prefix)))
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.order_by(Account.name.collate("C"))
    else:
        statement = statement.order_by(Account.name)
    return (await session.scalars(statement)).all()


async def create_account(
    session: AsyncSession,
    ledger_id: uuid.UUID,
    *,
    user_id: uuid.UUID | None,
    name: str,
    type_: AccountType | None,
    allowed_commodities: list[str] | None,
    opened_on: dt.date | None,
    closed_on: dt.date | None,
    note: str | None,
) -> Account:
    root_type = check_name(name)
    _check_type(name, root_type, type_)
    _check_dates(opened_on, closed_on)
    await _check_unused(session, ledger_id, [name])
    account = Account(
        ledger_id=ledger_id,
        name=name,
        type=root_type,
        allowed_commodities=await _commodities(session, ledger_id, allowed_commodities, user_id),
        opened_on=opened_on,
        closed_on=closed_on,
        note=note,
    )
    session.add(account)
    await session.flush()
    await audit.record(
        session,
        ledger_id=ledger_id,
        user_id=user_id,
        action="create",
        object_type="account",
        object_id=account.id,
        after=representation(account),
    )
    return account


async def update_account(
    session: AsyncSession,
    ledger_id: uuid.UUID,
    account_id: uuid.UUID,
    *,
    user_id: uuid.UUID | None,
    changes: dict[str, Any],
) -> Account:
    """Apply the fields present in `changes`; a rename carries the descendants along."""
    account = await _get_for_update(session, ledger_id, account_id)
    before = representation(account)
    if changes.get("name") is None and "name" in changes:
        raise Unprocessable("name cannot be null")
    name: str = changes.get("name") or account.name
    root_type = check_name(name)
    _check_type(name, root_type, changes.get("type"))
    opened_on = changes.get("opened_on", account.opened_on)
    closed_on = changes.get("closed_on", account.closed_on)
    _check_dates(opened_on, closed_on)
    if opened_on != account.opened_on or closed_on != account.closed_on:
        await _check_postings_within(session, account, opened_on, closed_on)
    if "allowed_commodities" in changes:
        allowed = await _commodities(session, ledger_id, changes["allowed_commodities"], user_id)
        await _check_postings_allowed(session, account, allowed)
        account.allowed_commodities = allowed
    account.opened_on, account.closed_on = opened_on, closed_on
    if "note" in changes:
        account.note = changes["note"]
    renamed: list[tuple[Account, dict[str, Any]]] = []
    if name != account.name:
        renamed = await _rename_descendants(session, account, name, root_type)
    await session.flush()
    after = representation(account)
    if after != before:
        await _record_update(session, user_id, account, before, after)
    for descendant, descendant_before in renamed:
        await _record_update(
            session, user_id, descendant, descendant_before, representation(descendant)
        )
    return account


async def delete_account(
    session: AsyncSession, ledger_id: uuid.UUID, account_id: uuid.UUID, *, user_id: uuid.UUID | None
) -> None:
    """Only an unused account may go; one with history is closed instead (`closed_on`)."""
    account = await _get_for_update(session, ledger_id, account_id)
    for model in (Posting, BalanceAssertion):
        used = await session.scalar(
            select(model.id)
            .where(model.ledger_id == ledger_id, model.account_id == account_id)
            .limit(1)
        )
        if used is not None:
            raise Conflict(
                f"Account {account.name} has postings or balance assertions and cannot be "
                "deleted; close it instead (set closed_on)"
            )
    before = representation(account)
    await session.delete(account)
    await session.flush()
    await audit.record(
        session,
        ledger_id=ledger_id,
        user_id=user_id,
        action="delete",
        object_type="account",
        object_id=account_id,
        before=before,
    )


async def _get_for_update(
    session: AsyncSession, ledger_id: uuid.UUID, account_id: uuid.UUID
) -> Account:
    account = await session.scalar(
        select(Account)
        .where(Account.ledger_id == ledger_id, Account.id == account_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if account is None:
        raise NotFound("No such account")
    return account


def _check_type(name: str, root_type: AccountType, given: AccountType | None) -> None:
    if given is not None and given != root_type:
        raise Unprocessable(
            f"An account named {name!r} is of type {root_type.value}, not {given.value}: "
            "the root of the name decides the type"
        )


def _check_dates(opened_on: dt.date | None, closed_on: dt.date | None) -> None:
    if opened_on is not None and closed_on is not None and closed_on < opened_on:
        raise Unprocessable("closed_on cannot be before opened_on")


async def _check_unused(session: AsyncSession, ledger_id: uuid.UUID, names: list[str]) -> None:
    taken = await session.scalar(
        select(Account.name).where(Account.ledger_id == ledger_id, Account.name.in_(names)).limit(1)
    )
    if taken is not None:
        raise Conflict(f"An account named {taken} already exists in this ledger")


async def _commodities(
    session: AsyncSession, ledger_id: uuid.UUID, codes: list[str] | None, user_id: uuid.UUID | None
) -> list[str] | None:
    """Each code must be a commodity of the ledger (an ISO currency is added on first use)."""
    if codes is None:
        return None
    unique = list(dict.fromkeys(codes))
    for code in unique:
        await resolve_commodity(session, ledger_id, check_code(code), user_id=user_id)
    return unique


async def _check_postings_within(
    session: AsyncSession, account: Account, opened_on: dt.date | None, closed_on: dt.date | None
) -> None:
    for model, what in ((Posting, "postings"), (BalanceAssertion, "balance assertions")):
        first, last = (
            await session.execute(
                select(func.min(model.date), func.max(model.date)).where(
                    model.ledger_id == account.ledger_id, model.account_id == account.id
                )
            )
        ).one()
        if opened_on is not None and first is not None and first < opened_on:
            raise Unprocessable(
                f"Account {account.name} has {what} from {first.isoformat()}, before "
                f"opened_on {opened_on.isoformat()}"
            )
        if closed_on is not None and last is not None and last > closed_on:
            raise Unprocessable(
                f"Account {account.name} has {what} on {last.isoformat()}, after "
                f"closed_on {closed_on.isoformat()}"
            )


async def _check_postings_allowed(
    session: AsyncSession, account: Account, allowed: list[str] | None
) -> None:
    if allowed is None:
        return
    held = (
        await session.scalars(
            select(Commodity.code)
            .distinct()
            .join(
                Posting,
                (Posting.ledger_id == Commodity.ledger_id) & (Posting.commodity_id == Commodity.id),
            )
            .where(Posting.ledger_id == account.ledger_id, Posting.account_id == account.id)
        )
    ).all()
    refused = sorted(set(held) - set(allowed))
    if refused:
        raise Unprocessable(
            f"Account {account.name} has postings in {', '.join(refused)}, which "
            "allowed_commodities would leave out"
        )


async def _rename_descendants(
    session: AsyncSession, account: Account, name: str, root_type: AccountType
) -> list[tuple[Account, dict[str, Any]]]:
    """Rename the account and everything below it, atomically; descendants' (before) states.

    The names pass through temporary ones so that the unique constraint, which PostgreSQL
    checks row by row, never sees two rows swapping through each other's names.
    """
    old = account.name
    if name.startswith(old + SEPARATOR):
        raise Unprocessable(f"Account {old} cannot be moved below itself")
    descendants = (
        await session.scalars(
            select(Account)
            .where(Account.ledger_id == account.ledger_id, descendants_of(old))
            .with_for_update()
        )
    ).all()
    targets = {item.id: name + item.name[len(old) :] for item in (account, *descendants)}
    taken = await session.scalar(
        select(Account.name)
        .where(
            Account.ledger_id == account.ledger_id,
            Account.name.in_(list(targets.values())),
            Account.id.not_in(list(targets)),
        )
        .limit(1)
    )
    if taken is not None:
        raise Conflict(f"An account named {taken} already exists in this ledger")
    befores = [(item, representation(item)) for item in descendants]
    for item in (account, *descendants):
        item.name = f"~renaming~{item.id}"  # never a valid name: it has no root
    await session.flush()
    for item in (account, *descendants):
        item.name = targets[item.id]
        item.type = root_type
    return befores


async def _record_update(
    session: AsyncSession,
    user_id: uuid.UUID | None,
    account: Account,
    before: dict[str, Any],
    after: dict[str, Any],
) -> None:
    await audit.record(
        session,
        ledger_id=account.ledger_id,
        user_id=user_id,
        action="update",
        object_type="account",
        object_id=account.id,
        before=before,
        after=after,
    )
