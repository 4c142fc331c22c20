"""Double-entry transactions: validation, bulk writing, reading, listing, updates and deletes.

The API and the statement importers share this module. Validation and writing are separate
steps, so that an import of ten thousand lines validates every line first (with one `Lookups`
cache, so accounts and commodities are fetched once per batch, not once per line) and then
writes them all at once (`finance.bulkwrite`: COPY on PostgreSQL, executemany on SQLite):

    lookups = Lookups(ledger_id, user_id)
    prepared = [await prepare_transaction(session, ledger_id, line, lookups) for line in lines]
    ids = await insert_transactions(session, ledger_id, user_id, prepared)

`create_transaction` is the API's path: prepare, insert, and an audit entry.

A transaction must balance; the rule (weights, the inferred tolerance, the residual, the
posting whose amount is filled in) is written out in `finance.transactions.balancing`. In
short: per commodity of weight, the postings' weights (units x per-unit cost, else units x
per-unit price, else units) sum to zero; exactly, unless a cost or price makes a weight finer
than its commodity's precision, in which case up to Beancount's inferred tolerance is accepted
and the exact remainder is reported as `residual`.

Every function only flushes; the caller's session (one per request) commits.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, NamedTuple, Protocol, cast

import pydantic_core
from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    Dialect,
    Enum,
    Insert,
    Integer,
    Select,
    String,
    Table,
    Text,
    TypeDecorator,
    Uuid,
    and_,
    any_,
    bindparam,
    delete,
    exists,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    type_coerce,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy import column as sql_column
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.sqltypes import NullType

from finance import audit
from finance.accounts.service import (
    check_account_accepts,
    descendants_of,
    get_account,
)
from finance.bulkwrite import insert_records, new_ids
from finance.commodities.service import find_commodity, resolve_commodity
from finance.errors import AppError, NotFound, PreconditionFailed, Unprocessable
from finance.models import Account, Commodity, Posting, Transaction, TransactionStatus
from finance.models.base import utcnow
from finance.money import AmountError, format_minor, from_minor, to_minor
from finance.schemas import PageParams, cursor_date, cursor_key, cursor_uuid
from finance.transactions.balancing import (
    Leg,
    balance,
    round_half_even,
    show,
    sum_by_commodity,
    weigh,
)
from finance.transactions.schemas import (
    PostingIn,
    RateIn,
    TransactionIn,
    TransactionOut,
    TransactionPatch,
)

OBJECT_TYPE = "transaction"


# --- lookups ---------------------------------------------------------------------------------


# Built once (they run on every write). Rows are locked in id order, as everywhere.
_ACCOUNTS_LOOKUP = (
    select(Account)
    .where(
        Account.ledger_id == bindparam("ledger_id"),
        Account.id.in_(bindparam("ids", expanding=True)),
    )
    .order_by(Account.id)
    .with_for_update(read=True)
)
_COMMODITIES_LOOKUP = (
    select(Commodity)
    .where(
        Commodity.ledger_id == bindparam("ledger_id"),
        Commodity.code.in_(bindparam("codes", expanding=True)),
    )
    .order_by(Commodity.id)
    .with_for_update(read=True)
)
# Both at once, one round trip (PostgreSQL): a row holds an account or a commodity.
_LOCKED_ACCOUNTS = _ACCOUNTS_LOOKUP.cte("locked_accounts")
_LOCKED_COMMODITIES = _COMMODITIES_LOOKUP.cte("locked_commodities")
_BOTH_LOOKUP = (
    select(aliased(Account, _LOCKED_ACCOUNTS), aliased(Commodity, _LOCKED_COMMODITIES))
    .select_from(_LOCKED_ACCOUNTS)
    .join(_LOCKED_COMMODITIES, false(), full=True)
)


class Lookups:
    """A cache of one ledger's accounts and commodities, for one request or one import batch.

    Each `load_*` call fetches everything it does not know yet in one query, so preparing a
    batch costs a query per new set of accounts or commodities, not one per line. The rows
    are share-locked on PostgreSQL as the accounts and commodities services ask of writers
    (a concurrent change of an account's dates or a commodity's precision waits for this
    transaction, and this one for it). ISO currencies used for the first time are created,
    recorded in the audit log against `user_id`. One ledger, one session: do not share it.
    """

    def __init__(self, ledger_id: uuid.UUID, user_id: uuid.UUID | None = None) -> None:
        self.ledger_id = ledger_id
        self.user_id = user_id
        self.accounts: dict[uuid.UUID, Account | None] = {}
        self.commodities: dict[str, Commodity | None] = {}
        self.commodities_by_id: dict[uuid.UUID, Commodity] = {}

    def knows(self, postings: Iterable[PostingIn]) -> bool:
        """Whether every account and commodity the postings name is loaded (or known not to
        exist): preparing them then costs no query."""
        accounts, commodities = self.accounts, self.commodities
        for posting in postings:
            if posting.account_id not in accounts:
                return False
            if posting.commodity is not None and posting.commodity not in commodities:
                return False
            for rate in (posting.cost, posting.price):
                if rate is not None and rate.commodity not in commodities:
                    return False
        return True

    async def load(
        self, session: AsyncSession, account_ids: Iterable[uuid.UUID], codes: Iterable[str]
    ) -> None:
        """`load_accounts` and `load_commodities`; on PostgreSQL in one statement when both
        are wanted (one round trip of the five a POST costs)."""
        ids = {account_id for account_id in account_ids if account_id not in self.accounts}
        wanted = {code for code in codes if code not in self.commodities}
        if not (ids and wanted and session.get_bind().dialect.name == "postgresql"):
            await self.load_accounts(session, ids)
            await self.load_commodities(session, wanted)
            return
        rows = await session.execute(
            _BOTH_LOOKUP,
            {"ledger_id": self.ledger_id, "ids": sorted(ids), "codes": sorted(wanted)},
        )
        for account, commodity in rows:
            if account is not None:
                self.accounts[account.id] = account
            if commodity is not None:
                self._remember(commodity)
        self._missing_accounts(ids)
        await self._create_currencies(session, wanted)

    async def load_accounts(self, session: AsyncSession, ids: Iterable[uuid.UUID]) -> None:
        wanted = {account_id for account_id in ids if account_id not in self.accounts}
        if not wanted:
            return
        found = await session.scalars(
            _ACCOUNTS_LOOKUP, {"ledger_id": self.ledger_id, "ids": sorted(wanted)}
        )
        for account in found:
            self.accounts[account.id] = account
        self._missing_accounts(wanted)

    def _missing_accounts(self, wanted: set[uuid.UUID]) -> None:
        for account_id in wanted:
            self.accounts.setdefault(account_id, None)

    async def load_commodities(self, session: AsyncSession, codes: Iterable[str]) -> None:
        """Known codes in one query; ISO currencies not used before are created here."""
        wanted = {code for code in codes if code not in self.commodities}
        if not wanted:
            return
        found = await session.scalars(
            _COMMODITIES_LOOKUP, {"ledger_id": self.ledger_id, "codes": sorted(wanted)}
        )
        for commodity in found:
            self._remember(commodity)
        await self._create_currencies(session, wanted)

    async def _create_currencies(self, session: AsyncSession, wanted: set[str]) -> None:
        """Of the `wanted` codes not found, the ISO currencies; the others are unknown."""
        for code in sorted(wanted - self.commodities.keys()):
            try:
                commodity = await resolve_commodity(
                    session, self.ledger_id, code, user_id=self.user_id
                )
            except Unprocessable:
                self.commodities[code] = None
            else:
                self._remember(commodity)

    async def load_commodity_ids(self, session: AsyncSession, ids: Iterable[uuid.UUID]) -> None:
        """For showing amounts (no lock): the commodities of stored postings."""
        wanted = {
            commodity_id for commodity_id in ids if commodity_id not in self.commodities_by_id
        }
        if not wanted:
            return
        found = await session.scalars(
            select(Commodity).where(Commodity.ledger_id == self.ledger_id, Commodity.id.in_(wanted))
        )
        for commodity in found:
            self.commodities_by_id[commodity.id] = commodity

    def _remember(self, commodity: Commodity) -> None:
        self.commodities[commodity.code] = commodity
        self.commodities_by_id[commodity.id] = commodity


# --- preparing -------------------------------------------------------------------------------


# Prepared values are not changed once made, but not frozen either: a frozen dataclass costs
# a microsecond or two more to build, which an import pays several times per line.


@dataclass(slots=True)
class PreparedPosting:
    """A posting ready to be written: ids resolved, integers of minor units, weight computed."""

    account_id: uuid.UUID
    commodity_id: uuid.UUID
    amount: int
    cost: Decimal | None
    cost_commodity_id: uuid.UUID | None
    price: Decimal | None
    price_commodity_id: uuid.UUID | None
    weight: int
    weight_commodity_id: uuid.UUID
    memo: str | None


@dataclass(slots=True)
class PreparedTransaction:
    """A transaction that passed every rule and can be written by `insert_transactions`.

    `residual` is, per weight commodity code, the exact sum of the weights where it is not
    zero (accepted within the inferred tolerance).
    """

    date: dt.date
    payee: str | None
    narration: str | None
    tags: list[str]
    links: list[str]
    meta: dict[str, Any]
    status: TransactionStatus
    external_id: str | None
    postings: list[PreparedPosting]
    residual: dict[str, Decimal] = field(default_factory=dict)


def _posting_error(index: int, name: str, message: str, kind: str) -> Unprocessable:
    where = f"postings[{index}].{name}"
    return Unprocessable(
        f"{where}: {message}",
        errors=[{"loc": ["body", "postings", str(index), name], "msg": message, "type": kind}],
    )


async def prepare_transaction(
    session: AsyncSession,
    ledger_id: uuid.UUID,
    data: TransactionIn,
    lookups: Lookups | None = None,
) -> PreparedTransaction:
    """Check `data` against every rule and turn it into rows-to-be; writes nothing of its own.

    Resolves the accounts and commodities (through `lookups`, loading what it lacks in one
    query each; ISO currencies used for the first time are created, in the caller's
    transaction), converts amounts to integers of minor units (refusing more decimals than the
    commodity has), checks each account takes the posting (open on the date, commodity
    allowed), fills in the one posting that may leave out its amount, computes the weights and
    applies the balance rule (see `finance.transactions.balancing`).

    Raises `Unprocessable` (422) naming the posting (`postings[2].amount: ...`, with the same
    location in the problem's `errors`) or, for an imbalance, the commodity, the amount it is
    off by and the postings that weigh in it (also in the problem's `imbalance`). An account of
    another ledger is refused exactly like an unknown one.
    """
    lookups = lookups or Lookups(ledger_id)
    assert lookups.ledger_id == ledger_id, "a Lookups cache serves one ledger"
    postings = data.postings
    if not lookups.knows(postings):
        codes: set[str] = set()
        for posting in postings:
            if posting.commodity is not None:
                codes.add(posting.commodity)
            codes.update(rate.commodity for rate in (posting.cost, posting.price) if rate)
        await lookups.load(session, (posting.account_id for posting in postings), codes)

    legs: list[Leg] = []
    minors: list[int | None] = []  # the given amounts, in minor units
    for index, posting in enumerate(postings):
        leg, minor = _leg(index, posting, lookups)
        legs.append(leg)
        minors.append(minor)
    balanced = balance(legs)

    prepared: list[PreparedPosting] = []
    rounded: list[bool] = []
    for index, posting in enumerate(postings):
        account = lookups.accounts[posting.account_id]
        assert account is not None  # checked by _leg
        code = posting.commodity or balanced.fill_code
        assert code is not None  # the filled posting's commodity is one the others weigh in
        commodity = _commodity(lookups, index, "commodity", code)
        try:
            check_account_accepts(account, data.date, code)
        except Unprocessable as exc:
            raise _posting_error(index, "account_id", exc.detail, "account_refuses") from exc
        units = balanced.units[index]
        rate_in = posting.cost or posting.price
        try:
            amount = minors[index]
            if amount is None:  # the filled-in posting
                amount = to_minor(units, commodity.precision, field="amount")
            if rate_in is None:
                # The weight is the units themselves, exact at the commodity's precision.
                weight_commodity = commodity
                weight_minor = amount
                rounded.append(False)
            else:
                weight_commodity = _commodity(lookups, index, "cost", rate_in.commodity)
                weight = round_half_even(balanced.weights[index], weight_commodity.precision)
                rounded.append(weight != balanced.weights[index])
                weight_minor = to_minor(weight, weight_commodity.precision, field="weight")
        except AmountError as exc:
            raise _posting_error(index, "amount", str(exc), "amount") from exc
        cost, price = posting.cost, posting.price
        prepared.append(
            PreparedPosting(
                account_id=posting.account_id,
                commodity_id=commodity.id,
                amount=amount,
                cost=cost.amount if cost is not None else None,
                cost_commodity_id=_rate_commodity_id(lookups, cost),
                price=price.amount if price is not None else None,
                price_commodity_id=_rate_commodity_id(lookups, price),
                weight=weight_minor,
                weight_commodity_id=weight_commodity.id,
                memo=posting.memo,
            )
        )
    return PreparedTransaction(
        date=data.date,
        payee=data.payee,
        narration=data.narration,
        tags=list(data.tags),
        links=list(data.links),
        meta=dict(data.meta),
        status=data.status,
        external_id=data.external_id,
        postings=_book_weights(prepared, balanced.weights, rounded),
        residual=balanced.residual,
    )


def _book_weights(
    postings: list[PreparedPosting], exact: Sequence[Decimal], rounded: Sequence[bool]
) -> list[PreparedPosting]:
    """Make the stored weights of each commodity sum to exactly zero.

    Rounding inexact weights (units x a cost or price) one by one can leave the rounded sum a
    minor unit or so from zero even though the exact residual is within the tolerance. The
    difference is booked on the posting with the largest inexact weight, so that the stored
    weights always balance and a trial balance of weights is exactly zero, while the exact
    residual stays reported. Exact weights are never touched.
    """
    if not any(rounded):
        return postings
    totals: dict[uuid.UUID, int] = {}
    for posting in postings:
        totals[posting.weight_commodity_id] = (
            totals.get(posting.weight_commodity_id, 0) + posting.weight
        )
    booked = list(postings)
    for commodity_id, total in totals.items():
        if total == 0:
            continue
        inexact = [
            index
            for index, posting in enumerate(postings)
            if posting.weight_commodity_id == commodity_id and rounded[index]
        ]
        assert inexact, "exact weights that pass the balance rule sum to zero"
        index = max(inexact, key=lambda i: abs(exact[i]))
        booked[index] = replace(booked[index], weight=booked[index].weight - total)
    return booked


def _commodity(lookups: Lookups, index: int, name: str, code: str) -> Commodity:
    commodity = lookups.commodities.get(code)
    if commodity is None:
        raise _posting_error(
            index,
            name,
            f"unknown commodity {code!r}: create it first (POST commodities) with its precision",
            "unknown_commodity",
        )
    return commodity


def _rate_commodity_id(lookups: Lookups, rate: RateIn | None) -> uuid.UUID | None:
    if rate is None:
        return None
    commodity = lookups.commodities[rate.commodity]
    assert commodity is not None  # checked by _leg
    return commodity.id


def _leg(index: int, posting: PostingIn, lookups: Lookups) -> tuple[Leg, int | None]:
    """What the balance rule needs of a posting, and its amount in minor units when given;
    refuses what makes it meaningless."""
    if lookups.accounts.get(posting.account_id) is None:
        raise _posting_error(
            index, "account_id", "no such account in this ledger", "unknown_account"
        )
    if posting.amount is not None and posting.commodity is None:
        raise _posting_error(index, "commodity", "an amount needs its commodity", "missing")
    units_code = posting.commodity
    units_precision = 0
    if units_code is not None:
        units_precision = _commodity(lookups, index, "commodity", units_code).precision
    minor = None
    if posting.amount is not None and units_code is not None:
        try:
            minor = to_minor(posting.amount, units_precision)
        except AmountError as exc:
            raise _posting_error(index, "amount", f"{exc} ({units_code})", "amount") from exc
    rate_in, rate_name = (posting.cost, "cost") if posting.cost else (posting.price, "price")
    if posting.price is not None and posting.price.commodity == units_code:
        raise _posting_error(
            index, "price", "a price must be in another commodity than the units", "same"
        )
    if posting.cost is not None and posting.cost.commodity == units_code:
        raise _posting_error(
            index, "cost", "a cost must be in another commodity than the units", "same"
        )
    if posting.price is not None:
        _commodity(lookups, index, "price", posting.price.commodity)
    if rate_in is None:
        leg = Leg(posting.amount, units_code, units_precision, None, units_code, units_precision)
        return leg, minor
    weight_commodity = _commodity(lookups, index, rate_name, rate_in.commodity)
    leg = Leg(
        posting.amount,
        units_code,
        units_precision,
        rate_in.amount,
        weight_commodity.code,
        weight_commodity.precision,
    )
    return leg, minor


# --- writing ---------------------------------------------------------------------------------

TRANSACTIONS = cast(Table, Transaction.__table__)
POSTINGS = cast(Table, Posting.__table__)


def _header_values(item: PreparedTransaction) -> dict[str, Any]:
    return {
        "date": item.date,
        "payee": item.payee,
        "narration": item.narration,
        "tags": item.tags,
        "links": item.links,
        "meta": item.meta,
        "status": item.status,
        "external_id": item.external_id,
    }


def _posting_rows(
    ledger_id: uuid.UUID, transaction_id: uuid.UUID, item: PreparedTransaction
) -> list[dict[str, Any]]:
    return [
        {
            "ledger_id": ledger_id,
            "id": uuid.uuid4(),
            "transaction_id": transaction_id,
            "position": position,
            "date": item.date,
            "account_id": posting.account_id,
            "commodity_id": posting.commodity_id,
            "amount": posting.amount,
            "cost": posting.cost,
            "cost_commodity_id": posting.cost_commodity_id,
            "price": posting.price,
            "price_commodity_id": posting.price_commodity_id,
            "weight": posting.weight,
            "weight_commodity_id": posting.weight_commodity_id,
            "memo": posting.memo,
        }
        for position, posting in enumerate(item.postings)
    ]


def _new_rows(
    ledger_id: uuid.UUID, user_id: uuid.UUID | None, item: PreparedTransaction
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    now = utcnow()
    transaction_id = uuid.uuid4()
    row = {
        "ledger_id": ledger_id,
        "id": transaction_id,
        **_header_values(item),
        "version": 1,
        "created_by": user_id,
        "created_at": now,
        "updated_at": now,
    }
    return row, _posting_rows(ledger_id, transaction_id, item)


# Built once: the few rows of one API write (batches go through `insert_transactions`).
_INSERTS = {TRANSACTIONS: insert(TRANSACTIONS), POSTINGS: insert(POSTINGS)}


async def _insert(session: AsyncSession, table: Table, rows: list[dict[str, Any]]) -> None:
    """Rows of one API write, in one statement."""
    if rows:
        await session.execute(_INSERTS[table], rows)


# The columns `insert_transactions` writes per row; the rest are the same on every row.
_HEADER_COLUMNS = (
    "id",
    "date",
    "payee",
    "narration",
    "tags",
    "links",
    "meta",
    "status",
    "external_id",
)
_POSTING_COLUMNS = (
    "id",
    "transaction_id",
    "position",
    "date",
    "account_id",
    "commodity_id",
    "amount",
    "cost",
    "cost_commodity_id",
    "price",
    "price_commodity_id",
    "weight",
    "weight_commodity_id",
    "memo",
)


# The columns of a transaction row that `_new_rows` fills.
_NEW_HEADER = ("ledger_id", *_HEADER_COLUMNS, "version", "created_by", "created_at", "updated_at")


def _insert_created() -> Insert:
    """PostgreSQL: a new transaction, its postings and its audit entry in one statement.

    One round trip instead of three (each costs the server a tenth of a millisecond or more of
    CPU here, in the kernel and in SQLAlchemy). The transaction and the postings are inserted
    by data-modifying CTEs; the postings come from `unnest` of one array per column, so the
    statement is the same (and compiled once) whatever the number of postings. PostgreSQL
    checks foreign keys at the end of the statement, when the transaction row is there.
    """
    header = (
        insert(TRANSACTIONS)
        .values({name: bindparam(name, type_=TRANSACTIONS.c[name].type) for name in _NEW_HEADER})
        .cte("new_transaction")
    )
    columns = func.unnest(
        *(
            bindparam(f"postings_{name}", type_=ARRAY(POSTINGS.c[name].type))
            for name in _POSTING_COLUMNS
        )
    ).table_valued(*(sql_column(name, POSTINGS.c[name].type) for name in _POSTING_COLUMNS))
    postings = (
        insert(POSTINGS)
        .from_select(
            [*_POSTING_COLUMNS, "ledger_id"],
            select(*columns.render_derived().c, bindparam("ledger_id", type_=Uuid())),
        )
        .cte("new_postings")
    )
    entry = audit.TABLE
    return (
        insert(entry)
        .values({item.key: bindparam(f"audit_{item.key}", type_=item.type) for item in entry.c})
        .add_cte(header, postings)
    )


_INSERT_CREATED = _insert_created()


async def insert_transactions(
    session: AsyncSession,
    ledger_id: uuid.UUID,
    user_id: uuid.UUID | None,
    prepared: Sequence[PreparedTransaction],
    *,
    extra_columns: Mapping[str, Any] | None = None,
) -> list[uuid.UUID]:
    """Write prepared transactions and their postings; return the new ids, in order.

    Written the fastest way each database has (`finance.bulkwrite`: COPY on PostgreSQL,
    executemany on SQLite), in the caller's transaction, stored exactly as an `insert()`
    would store them: nothing goes through the ORM unit of work, and no audit entry is
    written (an import records its own). `extra_columns` are set on every transaction row (a
    column the caller's model adds, such as an import batch id, or a value that replaces the
    prepared one). Only `PreparedTransaction`s from `prepare_transaction` on the same ledger
    are valid input.
    """
    if not prepared:
        return []
    now = utcnow()
    extras = dict(extra_columns or {})
    ids = new_ids(len(prepared))
    posting_ids = iter(new_ids(sum(len(item.postings) for item in prepared)))
    headers: list[tuple[Any, ...]] = []
    postings: list[tuple[Any, ...]] = []
    for transaction_id, item in zip(ids, prepared, strict=True):
        headers.append(
            (
                transaction_id,
                item.date,
                item.payee,
                item.narration,
                item.tags,
                item.links,
                item.meta,
                item.status,
                item.external_id,
            )
        )
        for position, posting in enumerate(item.postings):
            postings.append(
                (
                    next(posting_ids),
                    transaction_id,
                    position,
                    item.date,
                    posting.account_id,
                    posting.commodity_id,
                    posting.amount,
                    posting.cost,
                    posting.cost_commodity_id,
                    posting.price,
                    posting.price_commodity_id,
                    posting.weight,
                    posting.weight_commodity_id,
                    posting.memo,
                )
            )
    columns: Sequence[str] = _HEADER_COLUMNS
    if extras.keys() & set(columns):
        keep = [index for index, name in enumerate(columns) if name not in extras]
        columns = [columns[index] for index in keep]
        headers = [tuple(row[index] for index in keep) for row in headers]
    constants = {
        "ledger_id": ledger_id,
        "version": 1,
        "created_by": user_id,
        "created_at": now,
        "updated_at": now,
        **extras,
    }
    await insert_records(session, TRANSACTIONS, columns, headers, constants)
    await insert_records(session, POSTINGS, _POSTING_COLUMNS, postings, {"ledger_id": ledger_id})
    return ids


async def create_transaction(
    session: AsyncSession,
    ledger_id: uuid.UUID,
    user_id: uuid.UUID | None,
    data: TransactionIn,
    lookups: Lookups | None = None,
) -> dict[str, Any]:
    """Prepare, insert and audit one transaction: the API's POST. Answers `TransactionOut` as
    plain data (as the read paths do), made from the rows just written, not from ORM objects."""
    lookups = lookups or Lookups(ledger_id, user_id)
    prepared = await prepare_transaction(session, ledger_id, data, lookups)
    transaction, postings = _new_rows(ledger_id, user_id, prepared)
    created = _representation(
        _Header(*(transaction[name] for name in _Header._fields)),
        [_Stored(*(row[name] for name in _Stored._fields)) for row in postings],
        lookups.commodities_by_id,
    )
    change: audit.Change = {
        "ledger_id": ledger_id,
        "user_id": user_id,
        "action": "create",
        "object_type": OBJECT_TYPE,
        "object_id": transaction["id"],
        "after": pydantic_core.to_jsonable_python(created),
    }
    if session.get_bind().dialect.name != "postgresql":
        await _insert(session, TRANSACTIONS, [transaction])
        await _insert(session, POSTINGS, postings)
        await audit.record(session, **change)
        return created
    parameters = {
        **transaction,
        **{f"postings_{name}": [row[name] for row in postings] for name in _POSTING_COLUMNS},
        **{f"audit_{name}": value for name, value in audit.entry(session, **change).items()},
    }
    await session.execute(_INSERT_CREATED, parameters)
    return created


# --- reading ---------------------------------------------------------------------------------


# Ids are UUIDs where a write path has the objects, their text where a read path selected
# them for showing (`_UuidText`); keys of the commodities' mapping are of the same kind.
_Id = uuid.UUID | str


class _Header(NamedTuple):
    """A transaction's own fields, in the order of `TransactionOut`."""

    id: _Id
    date: dt.date
    payee: str | None
    narration: str | None
    tags: list[str]
    links: list[str]
    meta: dict[str, Any]
    status: TransactionStatus
    external_id: str | None
    version: int
    created_by: _Id | None
    created_at: dt.datetime
    updated_at: dt.datetime


class _Stored(NamedTuple):
    """What a representation shows of a stored posting."""

    id: _Id
    account_id: _Id
    commodity_id: _Id
    amount: int
    cost: Decimal | None
    cost_commodity_id: _Id | None
    price: Decimal | None
    price_commodity_id: _Id | None
    weight: int
    weight_commodity_id: _Id
    memo: str | None


class _Commodity(Protocol):
    """A `Commodity`, or its code and precision as a read path finds them (`_Shown`)."""

    @property
    def code(self) -> str: ...

    @property
    def precision(self) -> int: ...


class _Shown(NamedTuple):
    """A commodity as a read path finds it beside a posting."""

    code: str
    precision: int


# The commodities a posting refers to, in the order `_with_postings` joins them.
_COMMODITY_REFERENCES = (
    "commodity_id",
    "cost_commodity_id",
    "price_commodity_id",
    "weight_commodity_id",
)


def _rate(
    rate: Decimal, commodity_id: _Id | None, commodities: Mapping[Any, _Commodity]
) -> dict[str, str] | None:
    """A cost or price as shown (called only where there is one: a page has hundreds of
    postings, most without)."""
    if commodity_id is None:
        return None
    return {"amount": f"{rate:f}", "commodity": commodities[commodity_id].code}


def _residual(postings: Iterable[_Stored], commodities: Mapping[Any, _Commodity]) -> dict[str, str]:
    """Per weight commodity, the exact sum of the postings' weights where it is not zero.

    A posting without a cost or price weighs its own units: those add up as integers of minor
    units; only the others (units x rate) are summed as exact decimals.
    """
    units_only: dict[_Id, int] = {}
    weights: list[tuple[_Commodity, Decimal]] = []
    for posting in postings:
        rate = posting.cost if posting.cost is not None else posting.price
        commodity_id = posting.commodity_id
        if rate is None and posting.weight_commodity_id == commodity_id:
            units_only[commodity_id] = units_only.get(commodity_id, 0) + posting.amount
        else:
            units = from_minor(posting.amount, commodities[commodity_id].precision)
            weights.append((commodities[posting.weight_commodity_id], weigh(units, rate)))
    if not weights and not any(units_only.values()):
        return {}
    for commodity_id, total in units_only.items():
        commodity = commodities[commodity_id]
        weights.append((commodity, from_minor(total, commodity.precision)))
    precisions = {commodity.code: commodity.precision for commodity, _ in weights}
    totals = sum_by_commodity((commodity.code, weight) for commodity, weight in weights)
    return {
        code: show(total, precisions[code]) for code, total in sorted(totals.items()) if total != 0
    }


def _representation(
    header: _Header, postings: Sequence[_Stored], commodities: Mapping[Any, _Commodity]
) -> dict[str, Any]:
    """`TransactionOut` as plain data, ready for JSON; the residual is recomputed exactly
    from the stored postings."""
    outs = []
    for posting in postings:
        units = commodities[posting.commodity_id]
        amount = format_minor(posting.amount, units.precision)
        if posting.weight_commodity_id == posting.commodity_id and posting.weight == posting.amount:
            weight = {"amount": amount, "commodity": units.code}  # no cost or price: the units
        else:
            of = commodities[posting.weight_commodity_id]
            weight = {"amount": format_minor(posting.weight, of.precision), "commodity": of.code}
        outs.append(
            {
                "id": posting.id,
                "account_id": posting.account_id,
                "amount": amount,
                "commodity": units.code,
                "cost": None
                if posting.cost is None
                else _rate(posting.cost, posting.cost_commodity_id, commodities),
                "price": None
                if posting.price is None
                else _rate(posting.price, posting.price_commodity_id, commodities),
                "weight": weight,
                "memo": posting.memo,
            }
        )
    out = header._asdict()
    out["postings"] = outs
    out["residual"] = _residual(postings, commodities)
    return out


def _out(
    transaction: Transaction,
    postings: Sequence[Posting],
    commodities: Mapping[uuid.UUID, Commodity],
) -> TransactionOut:
    """The API representation, as a model (what the write paths answer and audit)."""
    header = _Header(*(getattr(transaction, name) for name in _Header._fields))
    stored = [
        _Stored(*(getattr(posting, name) for name in _Stored._fields)) for posting in postings
    ]
    return TransactionOut.model_validate(_representation(header, stored, commodities))


def _commodity_ids(posting: Posting) -> list[uuid.UUID]:
    return [
        commodity_id
        for commodity_id in (
            posting.commodity_id,
            posting.weight_commodity_id,
            posting.cost_commodity_id,
            posting.price_commodity_id,
        )
        if commodity_id is not None
    ]


async def _outs(
    session: AsyncSession,
    ledger_id: uuid.UUID,
    transactions: Sequence[Transaction],
    lookups: Lookups | None = None,
) -> list[tuple[TransactionOut, list[Posting]]]:
    """Representations of transactions about to change (and their postings): postings in one
    query, their commodities (those `lookups` does not know yet) in another."""
    if not transactions:
        return []
    lookups = lookups or Lookups(ledger_id)
    postings = (
        await session.scalars(
            select(Posting)
            .where(
                Posting.ledger_id == ledger_id,
                Posting.transaction_id.in_([t.id for t in transactions]),
            )
            .order_by(Posting.transaction_id, Posting.position)
        )
    ).all()
    by_transaction: dict[uuid.UUID, list[Posting]] = {t.id: [] for t in transactions}
    commodity_ids: set[uuid.UUID] = set()
    for posting in postings:
        by_transaction[posting.transaction_id].append(posting)
        commodity_ids.update(_commodity_ids(posting))
    await lookups.load_commodity_ids(session, commodity_ids)
    return [
        (_out(t, by_transaction[t.id], lookups.commodities_by_id), by_transaction[t.id])
        for t in transactions
    ]


# The read paths select rows, not objects (transactions with their postings in one statement,
# then the postings' commodities), and answer plain data that the router sends as JSON
# without validating it again: `TransactionOut` is what it documents, and what tests hold
# it to.
T = TRANSACTIONS.c
P = POSTINGS.c
ACCOUNTS = cast(Table, Account.__table__)
COMMODITIES = cast(Table, Commodity.__table__)


class _AsText(FunctionElement[str]):
    """A UUID column as PostgreSQL's canonical text (see `_UuidText`); elsewhere the column."""

    type = String()
    inherit_cache = True


@compiles(_AsText)
def _as_stored(element: _AsText, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(_AsText, "postgresql")
def _as_text(element: _AsText, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS TEXT)"


class _UuidText(TypeDecorator[str]):
    """A UUID column read as its canonical text, all that a representation needs of it.

    PostgreSQL sends the text itself (`_AsText`), sparing a `uuid.UUID` per value and its
    formatting; SQLite keeps the 32 hex digits (`UUID.hex`), where the dashes are inserted.
    """

    impl = Uuid
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(as_uuid=False)

    def result_processor(
        self, dialect: Dialect, coltype: object
    ) -> Callable[[Any], str | None] | None:
        if dialect.supports_native_uuid:
            return None

        def process(value: str | None) -> str | None:
            if value is None:
                return None
            return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"

        return process


def shown(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """A column as the read paths select it: a UUID as its text, JSON as its text (parsed by
    the reader, once per object, where the driver would parse it on every row)."""
    if isinstance(column.type, Uuid):
        return type_coerce(_AsText(column), _UuidText()).label(column.key)
    if isinstance(column.type, JSON):
        return sql_cast(column, Text).label(column.key)
    return column


# What a page is made of: the keys of its transactions, in the listing's order.
_KEYS = select(T.id, T.date)
_SHOWN_HEADER = [shown(T[name]) for name in _Header._fields]
# The transaction's columns come again on the row of each of its postings: they are read as
# the driver gives them, and converted once per transaction (`_header`).
_RAW_HEADER: list[ColumnElement[Any]] = [
    type_coerce(column, NullType()) for column in _SHOWN_HEADER
]
# A posting's commodities are only keys of the mapping of codes and precisions (see
# `_with_postings`): read as the driver gives them.
_STORED_COLUMNS = [
    type_coerce(shown(P[name]), NullType()) if name in _COMMODITY_REFERENCES else shown(P[name])
    for name in _Stored._fields
]
# Code and precision of the ledger's commodities `ids` (as text), for showing amounts.
SHOWN_COMMODITIES = select(
    shown(COMMODITIES.c.id), COMMODITIES.c.code, COMMODITIES.c.precision
).where(
    COMMODITIES.c.ledger_id == bindparam("ledger_id"),
    COMMODITIES.c.id.in_(bindparam("ids", expanding=True, type_=_UuidText())),
)


def _with_postings(keys: Select[Any]) -> Select[Any]:
    """A row per posting of each transaction whose `_KEYS` the query `keys` selects, in the
    order it gives (its LIMIT counts transactions), postings by position: the transaction's
    columns (raw, see `_header`), the posting's (a `_Stored`), then code and precision of
    each of its `_COMMODITY_REFERENCES`. Parameter: `ledger_id`.

    The commodities are read by the statement that reads the amounts, so with them: a
    precision changed meanwhile (which rewrites the amounts) is never applied to amounts read
    before the change, as it could be by a second statement, which sees a later snapshot.

    The keys are found on the index of transactions by date alone; only the transactions of
    the page are read in full.
    """
    page = keys.subquery("page")
    ledger_id = bindparam("ledger_id", type_=Uuid())
    statement = (
        select(*_RAW_HEADER, *_STORED_COLUMNS)
        .select_from(page)
        .join(TRANSACTIONS, and_(T.ledger_id == ledger_id, T.id == page.c.id))
        .outerjoin(POSTINGS, and_(P.ledger_id == ledger_id, P.transaction_id == page.c.id))
        .order_by(page.c.date.desc(), page.c.id.desc(), P.position)
    )
    for reference in _COMMODITY_REFERENCES:
        commodity = COMMODITIES.alias(reference.removesuffix("_id"))
        statement = statement.add_columns(commodity.c.code, commodity.c.precision).outerjoin(
            commodity, and_(commodity.c.ledger_id == ledger_id, commodity.c.id == P[reference])
        )
    return statement


_EMPTY_JSON: dict[str, Callable[[], Any]] = {"[]": list, "{}": dict}


def _unless_empty(process: Callable[[str], Any]) -> Callable[[str], Any]:
    """A JSON column's parsing that skips an empty list or object: most transactions have no
    tags, links or meta."""

    def convert(value: str) -> Any:
        empty = _EMPTY_JSON.get(value)
        return empty() if empty is not None else process(value)

    return convert


@functools.cache
def _header_processors(dialect: Dialect) -> list[tuple[int, Callable[[Any], Any]]]:
    """What SQLAlchemy would do to the columns of a `_Header` on this dialect: (index,
    conversion) for each column that has one. The status stays the text it is stored as, the
    value of its `StrEnum`, which is what the answer shows."""
    processors = []
    for index, (name, column) in enumerate(zip(_Header._fields, _SHOWN_HEADER, strict=True)):
        if isinstance(T[name].type, JSON):
            processors.append((index, _unless_empty(json.loads)))
            continue
        if isinstance(T[name].type, Enum):
            continue
        process = column.type.dialect_impl(dialect).result_processor(dialect, None)
        if process is not None:
            processors.append((index, process))
    return processors


def _header(dialect: Dialect, raw: Sequence[Any]) -> _Header:
    values = list(raw)
    for index, process in _header_processors(dialect):
        values[index] = process(values[index])
    return _Header._make(values)


def _representations(
    dialect: Dialect, rows: Iterable[Sequence[Any]]
) -> list[tuple[_Header, dict[str, Any]]]:
    """Each transaction of rows of `_with_postings`, in their order, with its representation."""
    found: list[tuple[_Header, list[_Stored]]] = []
    commodities: dict[_Id, _Commodity] = {}
    width = len(_Header._fields)
    shown = width + len(_Stored._fields)
    last_id = None
    for row in rows:
        if row[0] != last_id:
            last_id = row[0]
            found.append((_header(dialect, row[:width]), []))
        if row[width] is None:  # a transaction without postings: none was ever written
            continue
        posting = _Stored._make(row[width:shown])
        found[-1][1].append(posting)
        for commodity_id, at in (
            (posting.commodity_id, shown),
            (posting.cost_commodity_id, shown + 2),
            (posting.price_commodity_id, shown + 4),
            (posting.weight_commodity_id, shown + 6),
        ):
            if commodity_id is not None and commodity_id not in commodities:
                commodities[commodity_id] = _Shown(row[at], row[at + 1])
    return [(header, _representation(header, postings, commodities)) for header, postings in found]


_ONE = _with_postings(
    _KEYS.where(T.ledger_id == bindparam("ledger_id"), T.id == bindparam("transaction_id"))
)


async def get_transaction(
    session: AsyncSession, ledger_id: uuid.UUID, transaction_id: uuid.UUID
) -> dict[str, Any]:
    """The transaction with its postings (`TransactionOut` as plain data), or 404 (also for
    another ledger's)."""
    rows = await session.execute(_ONE, {"ledger_id": ledger_id, "transaction_id": transaction_id})
    found = _representations(session.get_bind().dialect, rows.all())
    if not found:
        raise NotFound("No such transaction")
    return found[0][1]


# --- listing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransactionFilters:
    """What `GET transactions` can filter on; every filter given must hold.

    The posting filters (`account_id`, `commodity`, `min_amount`, `max_amount`) must all hold
    for one same posting: "a posting on Checking of 100 USD or more". The amount range is on
    the absolute value of the posting's units, inclusive, in `commodity` (required with it).
    """

    date_from: dt.date | None = None
    date_to: dt.date | None = None
    account_id: uuid.UUID | None = None
    include_descendants: bool = True
    payee: str | None = None
    tag: str | None = None
    status: TransactionStatus | None = None
    q: str | None = None
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    commodity: str | None = None


def _like(text: str) -> str:
    """`text` as a LIKE pattern's literal part, escaped with "/" as SQLAlchemy's
    `autoescape` does (which takes no bound parameter)."""
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


def _contains(column: ColumnElement[str | None], parameter: str) -> ColumnElement[bool]:
    """`column` contains the text of `parameter` (escaped by `_like`), in any case."""
    return column.icontains(bindparam(parameter, type_=String()), escape="/")


def in_subtree(dialect: str, descendants: bool) -> ColumnElement[bool]:
    """A condition on a posting: on the account `account_id` or, with `descendants`, on one
    below it. The account is given by its id alone: its name is read in the same statement.
    An account the ledger does not have matches nothing.
    """
    account_id = bindparam("account_id", type_=Uuid())
    if not descendants:
        return P.account_id == account_id
    a = ACCOUNTS.c
    ledger_id = bindparam("ledger_id", type_=Uuid())
    name = select(a.name).where(a.ledger_id == ledger_id, a.id == account_id).scalar_subquery()
    ids = select(a.id).where(
        a.ledger_id == ledger_id, or_(a.id == account_id, descendants_of(name, a.name))
    )
    if dialect == "postgresql":
        # PostgreSQL joins an IN (subquery) to the accounts' key for every posting it checks
        # (twice the work of the whole listing); an array of the ids is built once.
        return P.account_id == any_(func.array(ids.scalar_subquery()))
    return P.account_id.in_(ids)


def _has_tag(dialect: str) -> ColumnElement[bool]:
    tag = bindparam("tag", type_=String())
    if dialect == "postgresql":
        return sql_cast(T.tags, JSONB).contains(func.jsonb_build_array(tag))
    value = func.json_each(T.tags).table_valued("value")
    return exists(select(literal(1)).select_from(value).where(value.c.value == tag))


@functools.lru_cache(maxsize=256)
def _listing(dialect: str, given: frozenset[str], descendants: bool) -> Select[Any]:
    """The listing's statement (see `_with_postings`) for the parameters `given` (see
    `_parameters`): built once per combination of filters, then only executed."""
    conditions: list[ColumnElement[bool]] = [T.ledger_id == bindparam("ledger_id")]
    if "date_from" in given:
        conditions.append(T.date >= bindparam("date_from"))
    if "date_to" in given:
        conditions.append(T.date <= bindparam("date_to"))
    if "payee" in given:
        conditions.append(_contains(T.payee, "payee"))
    if "status" in given:
        conditions.append(T.status == bindparam("status"))
    if "tag" in given:
        conditions.append(_has_tag(dialect))
    if "q" in given:
        in_memo = exists().where(
            P.ledger_id == T.ledger_id, P.transaction_id == T.id, _contains(P.memo, "q")
        )
        conditions.append(or_(_contains(T.payee, "q"), _contains(T.narration, "q"), in_memo))
    on_posting: list[ColumnElement[bool]] = []
    if "account_id" in given:
        on_posting.append(in_subtree(dialect, descendants))
    if "commodity_id" in given:
        on_posting.append(P.commodity_id == bindparam("commodity_id"))
    if "min_amount" in given:
        on_posting.append(func.abs(P.amount) >= bindparam("min_amount", type_=BigInteger()))
    if "max_amount" in given:
        on_posting.append(func.abs(P.amount) <= bindparam("max_amount", type_=BigInteger()))
    if on_posting:
        conditions.append(
            exists().where(P.ledger_id == T.ledger_id, P.transaction_id == T.id, *on_posting)
        )
    if "after_date" in given:
        after = tuple_(bindparam("after_date", type_=Date()), bindparam("after_id", type_=Uuid()))
        conditions.append(tuple_(T.date, T.id) < after)
    keys = _KEYS.where(*conditions).order_by(T.date.desc(), T.id.desc())
    return _with_postings(keys.limit(bindparam("limit", type_=Integer())))


def _amount_bound(value: Decimal, precision: int, name: str) -> int:
    if value < 0:
        raise Unprocessable(f"{name} is compared with absolute amounts; give it without a sign")
    try:
        return to_minor(value, precision, field=name)
    except AmountError as exc:
        raise Unprocessable(str(exc)) from exc


async def _parameters(
    session: AsyncSession, ledger_id: uuid.UUID, filters: TransactionFilters, page: PageParams
) -> dict[str, Any] | None:
    """The values of the listing's parameters: which are given decides the statement (see
    `_listing`). None when nothing can match (an unused commodity); 422 for what cannot be
    compared. An unknown account is not checked here: it matches nothing.
    """
    f = filters
    given: dict[str, Any] = {"ledger_id": ledger_id, "limit": page.limit + 1}
    for name, value in (
        ("date_from", f.date_from),
        ("date_to", f.date_to),
        ("status", f.status),
        ("account_id", f.account_id),
    ):
        if value is not None:
            given[name] = value
    for name, text in (("payee", f.payee), ("q", f.q)):
        if text:
            given[name] = _like(text)
    if f.tag:
        given["tag"] = f.tag
    if (f.min_amount is not None or f.max_amount is not None) and f.commodity is None:
        raise Unprocessable("min_amount and max_amount need commodity (the amounts' commodity)")
    if f.commodity is not None:
        commodity = await find_commodity(session, ledger_id, f.commodity)
        if commodity is None:
            return None
        given["commodity_id"] = commodity.id
        if f.min_amount is not None:
            given["min_amount"] = _amount_bound(f.min_amount, commodity.precision, "min_amount")
        if f.max_amount is not None:
            given["max_amount"] = _amount_bound(f.max_amount, commodity.precision, "max_amount")
    if page.cursor is not None:
        given["after_date"], given["after_id"] = cursor_key(page.cursor, cursor_date, cursor_uuid)
    return given


async def _check_account(
    session: AsyncSession, ledger_id: uuid.UUID, account_id: uuid.UUID | None
) -> None:
    """404 for an `account_id` filter that names no account of the ledger."""
    if account_id is not None:
        await get_account(session, ledger_id, account_id)


async def list_transactions(
    session: AsyncSession, ledger_id: uuid.UUID, filters: TransactionFilters, page: PageParams
) -> dict[str, Any]:
    """Newest first (date, then id, descending), a keyset page at a time, with postings:
    `Page[TransactionOut]` as plain data, from one statement (see `_with_postings`).

    An unknown `account_id` is 404, before any other problem with the request; it is looked
    up only when the answer would otherwise be empty or a 422.
    """
    try:
        given = await _parameters(session, ledger_id, filters, page)
    except Unprocessable:
        await _check_account(session, ledger_id, filters.account_id)
        raise
    found: list[tuple[_Header, dict[str, Any]]] = []
    if given is not None:
        dialect = session.get_bind().dialect
        statement = _listing(dialect.name, frozenset(given), filters.include_descendants)
        found = _representations(dialect, (await session.execute(statement, given)).all())
    if not found:
        await _check_account(session, ledger_id, filters.account_id)
    last = found[page.limit - 1][0] if len(found) > page.limit else None
    return {
        "items": [out for _, out in found[: page.limit]],
        "next_cursor": page.next_cursor(
            [last.date.isoformat(), str(last.id)] if last is not None else None
        ),
    }


# --- updating and deleting -------------------------------------------------------------------


@dataclass(frozen=True)
class _Current:
    row: Transaction
    postings: list[Posting]
    out: TransactionOut


async def _locked(
    session: AsyncSession, ledger_id: uuid.UUID, transaction_id: uuid.UUID
) -> _Current:
    """The transaction, locked until the end of the request (PostgreSQL; SQLite's write
    transactions are serial already), with its representation before the change."""
    transaction = await session.scalar(
        select(Transaction)
        .where(Transaction.ledger_id == ledger_id, Transaction.id == transaction_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if transaction is None:
        raise NotFound("No such transaction")
    ((out, postings),) = await _outs(session, ledger_id, [transaction])
    return _Current(transaction, postings, out)


def _check_version(current: int, if_match: Iterable[int] | None) -> None:
    if if_match is not None and current not in set(if_match):
        raise PreconditionFailed(
            f"The transaction is at version {current}, not the one given in If-Match; "
            "read it again and reapply the change",
            current_version=current,
        )


def _stale(current: int) -> AppError:
    return PreconditionFailed(
        "The transaction was changed by another request meanwhile; read it again",
        current_version=current,
    )


def _as_input(current: TransactionOut) -> TransactionIn:
    """The stored transaction as a request body: what a PATCH starts from."""
    return TransactionIn.model_validate(
        {
            **current.model_dump(
                include={
                    "date",
                    "payee",
                    "narration",
                    "tags",
                    "links",
                    "meta",
                    "status",
                    "external_id",
                }
            ),
            "postings": [
                posting.model_dump(
                    include={"account_id", "amount", "commodity", "cost", "price", "memo"}
                )
                for posting in current.postings
            ],
        }
    )


async def replace_transaction(
    session: AsyncSession,
    ledger_id: uuid.UUID,
    user_id: uuid.UUID | None,
    transaction_id: uuid.UUID,
    data: TransactionIn,
    *,
    if_match: Iterable[int] | None = None,
) -> TransactionOut:
    """PUT: every field and all postings replaced at once, under the same rules as a create.

    `if_match` holds the versions the client last saw (None: no precondition); any other
    current version is 412. The version is bumped by an UPDATE conditional on the version
    read, so of two concurrent writers only one can win.
    """
    current = await _locked(session, ledger_id, transaction_id)
    _check_version(current.row.version, if_match)
    return await _rewrite(session, ledger_id, user_id, current, data)


async def patch_transaction(
    session: AsyncSession,
    ledger_id: uuid.UUID,
    user_id: uuid.UUID | None,
    transaction_id: uuid.UUID,
    patch: TransactionPatch,
    *,
    if_match: Iterable[int] | None = None,
) -> TransactionOut:
    """PATCH: the given fields replace the stored ones (`postings` all together), and the
    result is checked like a create (balance, accounts open on a new date...)."""
    current = await _locked(session, ledger_id, transaction_id)
    _check_version(current.row.version, if_match)
    changes = {name: getattr(patch, name) for name in patch.model_fields_set}
    data = _as_input(current.out).model_copy(update=changes)
    return await _rewrite(session, ledger_id, user_id, current, data)


def _same_postings(stored: Sequence[Posting], prepared: Sequence[PreparedPosting]) -> bool:
    def key(p: Posting | PreparedPosting) -> tuple[Any, ...]:
        return (
            p.account_id,
            p.commodity_id,
            p.amount,
            p.cost,
            p.cost_commodity_id,
            p.price,
            p.price_commodity_id,
            p.weight,
            p.weight_commodity_id,
            p.memo,
        )

    return [key(p) for p in stored] == [key(p) for p in prepared]


async def _rewrite(
    session: AsyncSession,
    ledger_id: uuid.UUID,
    user_id: uuid.UUID | None,
    current: _Current,
    data: TransactionIn,
) -> TransactionOut:
    """Write the new state over `current` (locked, version checked) and audit the change.

    Postings are replaced all at once; when they are unchanged (a new payee or status) they
    are kept, ids and all, and only their date follows the transaction's.
    """
    lookups = Lookups(ledger_id, user_id)
    prepared = await prepare_transaction(session, ledger_id, data, lookups)
    row = current.row
    now = utcnow()
    header = _header_values(prepared)
    result = await session.execute(
        update(TRANSACTIONS)
        .where(
            TRANSACTIONS.c.ledger_id == ledger_id,
            TRANSACTIONS.c.id == row.id,
            TRANSACTIONS.c.version == row.version,
        )
        .values(**header, version=row.version + 1, updated_at=now)
    )
    if cast(CursorResult[Any], result).rowcount != 1:
        raise _stale(row.version)
    of_transaction = and_(POSTINGS.c.ledger_id == ledger_id, POSTINGS.c.transaction_id == row.id)
    postings: list[Posting] = current.postings
    if not _same_postings(current.postings, prepared.postings):
        await session.execute(delete(POSTINGS).where(of_transaction))
        rows = _posting_rows(ledger_id, row.id, prepared)
        await _insert(session, POSTINGS, rows)
        postings = [Posting(**values) for values in rows]
    elif prepared.date != row.date:
        await session.execute(update(POSTINGS).where(of_transaction).values(date=prepared.date))
    await lookups.load_commodity_ids(
        session, [commodity for p in postings for commodity in _commodity_ids(p)]
    )
    updated = Transaction(
        ledger_id=ledger_id,
        id=row.id,
        **header,
        version=row.version + 1,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=now,
    )
    after = _out(updated, postings, lookups.commodities_by_id)
    await audit.record(
        session,
        ledger_id=ledger_id,
        user_id=user_id,
        action="update",
        object_type=OBJECT_TYPE,
        object_id=row.id,
        before=current.out.model_dump(mode="json"),
        after=after.model_dump(mode="json"),
    )
    return after


async def delete_transaction(
    session: AsyncSession,
    ledger_id: uuid.UUID,
    user_id: uuid.UUID | None,
    transaction_id: uuid.UUID,
    *,
    if_match: Iterable[int] | None = None,
) -> None:
    """Delete a transaction and its postings (same If-Match rule as an update); audited."""
    current = await _locked(session, ledger_id, transaction_id)
    row = current.row
    _check_version(row.version, if_match)
    await session.execute(
        delete(POSTINGS).where(
            POSTINGS.c.ledger_id == ledger_id, POSTINGS.c.transaction_id == row.id
        )
    )
    result = await session.execute(
        delete(TRANSACTIONS).where(
            TRANSACTIONS.c.ledger_id == ledger_id,
            TRANSACTIONS.c.id == row.id,
            TRANSACTIONS.c.version == row.version,
        )
    )
    if cast(CursorResult[Any], result).rowcount != 1:
        raise _stale(row.version)
    await audit.record(
        session,
        ledger_id=ledger_id,
        user_id=user_id,
        action="delete",
        object_type=OBJECT_TYPE,
        object_id=row.id,
        before=current.out.model_dump(mode="json"),
    )


# At most this many ids in one IN list: within SQLite's bound parameters, and a bounded slice
# of rows held in memory.
DELETE_CHUNK = 2000


async def delete_transactions(
    session: AsyncSession,
    ledger_id: uuid.UUID,
    user_id: uuid.UUID | None,
    ids: Sequence[uuid.UUID],
) -> int:
    """Delete many transactions and their postings, a chunk at a time; return how many.

    Set-based (per chunk: the rows and their postings read and locked, then the postings and
    the transactions deleted, each with one statement) and audited like `delete_transaction`,
    one entry per transaction with its representation before, bulk-inserted. Ids that are not
    (or no longer) in the ledger are skipped. No If-Match: the caller (an import's undo)
    deletes what it created, whatever was edited since.
    """
    deleted = 0
    lookups = Lookups(ledger_id)
    for start in range(0, len(ids), DELETE_CHUNK):
        part = list(dict.fromkeys(ids[start : start + DELETE_CHUNK]))
        rows = (
            await session.scalars(
                select(Transaction)
                .where(Transaction.ledger_id == ledger_id, Transaction.id.in_(part))
                .order_by(Transaction.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).all()
        if not rows:
            continue
        # Locked in key order (as every writer locks); audited in the order given.
        order = {transaction_id: index for index, transaction_id in enumerate(part)}
        rows = sorted(rows, key=lambda row: order[row.id])
        found = [row.id for row in rows]
        outs = await _outs(session, ledger_id, rows, lookups)
        befores = [out.model_dump(mode="json") for out, _ in outs]
        await session.execute(
            delete(POSTINGS).where(
                POSTINGS.c.ledger_id == ledger_id, POSTINGS.c.transaction_id.in_(found)
            )
        )
        await session.execute(
            delete(TRANSACTIONS).where(
                TRANSACTIONS.c.ledger_id == ledger_id, TRANSACTIONS.c.id.in_(found)
            )
        )
        await audit.record_many(
            session,
            ledger_id=ledger_id,
            user_id=user_id,
            action="delete",
            object_type=OBJECT_TYPE,
            changes=[(row.id, before, None) for row, before in zip(rows, befores, strict=True)],
        )
        deleted += len(rows)
    return deleted
