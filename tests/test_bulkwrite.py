"""The bulk path (COPY, executemany) stores what the ORM stores, in the caller's transaction."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any, cast

import httpx
import pytest
from sqlalchemy import Table, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from finance import audit
from finance.bulkwrite import insert_records, insert_rows, new_ids
from finance.db import Database
from finance.models import (
    Base,
    ImportBatch,
    ImportFormat,
    ImportLine,
    ImportStatus,
    LineOutcome,
    Posting,
    Transaction,
    TransactionStatus,
)
from finance.transactions.schemas import TransactionIn
from finance.transactions.service import Lookups, insert_transactions, prepare_transaction
from tests.books import Books, open_books
from tests.conftest import AuthedUser

ACCOUNTS = ["Assets:Broker", "Assets:Cash", "Expenses:Fees", "Expenses:Travel"]


async def _raw(session: AsyncSession, table: str, order: str) -> list[dict[str, Any]]:
    """Every row of a table as the driver returns it: no SQLAlchemy type in between."""
    connection = await session.connection()
    result = await connection.exec_driver_sql(f"SELECT * FROM {table} ORDER BY {order}")  # noqa: S608
    return [dict(row._mapping) for row in result]


def _without(row: dict[str, Any], *names: str) -> dict[str, Any]:
    return {key: value for key, value in row.items() if key not in names}


def _attributes(obj: Base, *skip: str) -> dict[str, Any]:
    table = cast(Table, type(obj).__table__)
    return {
        column.key: getattr(obj, column.key) for column in table.columns if column.key not in skip
    }


async def _books(client: httpx.AsyncClient, user: AuthedUser) -> Books:
    books = await open_books(client, user, *ACCOUNTS)
    await books.commodity("ITOT", 3)
    return books


def _mixed(books: Books) -> TransactionIn:
    """A transaction that exercises every kind of column: a cost and a price (exact decimal
    text), tags, links and meta (JSON), a status (enum), memos, an amount filled in."""
    return TransactionIn.model_validate(
        books.body(
            "2024-03-01",
            ("Assets:Broker", "10.125", "ITOT", {"cost": {"amount": "12.345", "commodity": "USD"}}),
            ("Expenses:Fees", "1.00", "EUR", {"price": {"amount": "1.10", "commodity": "USD"}}),
            ("Expenses:Travel", "0.50", "USD", {"memo": "taxi ünïcode"}),
            ("Assets:Cash", None, None),
            payee="Broker & Co",
            narration="Quarterly\nrebalance",
            tags=["invest", "q1"],
            links=["^statement-7"],
            meta={"source": "test", "n": 3, "ok": True, "none": None},
            status="pending",
            external_id="ext-1",
        )
    )


async def test_transactions_written_in_bulk_read_back_like_the_orms(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await _books(client, user)
    ledger_id, user_id = uuid.UUID(books.ledger_id), uuid.UUID(user.id)
    async with database.sessions() as session, session.begin():
        prepared = await prepare_transaction(
            session, ledger_id, _mixed(books), Lookups(ledger_id, user_id)
        )
        (bulk_id,) = await insert_transactions(session, ledger_id, user_id, [prepared])
    async with database.sessions() as session, session.begin():
        bulk = await session.get_one(Transaction, (ledger_id, bulk_id))
        # The same values through the ORM's unit of work (the time read back is exact).
        orm_id = uuid.uuid4()
        session.add(
            Transaction(
                ledger_id=ledger_id,
                id=orm_id,
                date=prepared.date,
                payee=prepared.payee,
                narration=prepared.narration,
                tags=prepared.tags,
                links=prepared.links,
                meta=prepared.meta,
                status=prepared.status,
                external_id=prepared.external_id,
                version=1,
                created_by=user_id,
                created_at=bulk.created_at,
                updated_at=bulk.updated_at,
            )
        )
        await session.flush()
        session.add_all(
            Posting(
                ledger_id=ledger_id,
                id=uuid.uuid4(),
                transaction_id=orm_id,
                position=position,
                date=prepared.date,
                account_id=posting.account_id,
                commodity_id=posting.commodity_id,
                amount=posting.amount,
                cost=posting.cost,
                cost_commodity_id=posting.cost_commodity_id,
                price=posting.price,
                price_commodity_id=posting.price_commodity_id,
                weight=posting.weight,
                weight_commodity_id=posting.weight_commodity_id,
                memo=posting.memo,
            )
            for position, posting in enumerate(prepared.postings)
        )

    async with database.sessions() as session:
        # Stored the same, byte for byte as the driver sees it...
        # (the driver's id: 32 hex digits on SQLite, a UUID on PostgreSQL)
        raw = {uuid.UUID(str(row["id"])): row for row in await _raw(session, "transactions", "id")}
        assert _without(raw[bulk_id], "id") == _without(raw[orm_id], "id")
        postings = await _raw(session, "postings", "transaction_id, position")
        assert len(postings) == 8
        firsts = [_without(row, "id", "transaction_id") for row in postings[:4]]
        seconds = [_without(row, "id", "transaction_id") for row in postings[4:]]
        assert firsts == seconds
        # ...and read back the same through the ORM.
        loaded = {
            t.id: _attributes(t, "id")
            for t in await session.scalars(
                select(Transaction).where(Transaction.ledger_id == ledger_id)
            )
        }
        assert loaded[bulk_id] == loaded[orm_id]
        assert loaded[bulk_id]["meta"] == {"source": "test", "n": 3, "ok": True, "none": None}
        assert loaded[bulk_id]["created_at"].tzinfo is not None
        legs = {
            transaction_id: [
                _attributes(p, "id", "transaction_id")
                for p in await session.scalars(
                    select(Posting)
                    .where(Posting.transaction_id == transaction_id)
                    .order_by(Posting.position)
                )
            ]
            for transaction_id in (bulk_id, orm_id)
        }
        assert legs[bulk_id] == legs[orm_id]
        assert legs[bulk_id][0]["cost"] == Decimal("12.345")
    # The API reads the bulk-written transaction as it was given.
    shown = await books.get(f"/transactions/{bulk_id}")
    assert shown["status"] == "pending"
    assert [(p["amount"], p["commodity"]) for p in shown["postings"]] == [
        ("10.125", "ITOT"),
        ("1.00", "EUR"),
        ("0.50", "USD"),
        ("-126.59", "USD"),
    ]
    assert shown["residual"] == {"USD": "0.003125"}


async def test_line_records_and_audit_entries_written_in_bulk_read_back_like_the_orms(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await _books(client, user)
    ledger_id, user_id = uuid.UUID(books.ledger_id), uuid.UUID(user.id)
    batch_id = uuid.uuid4()
    line: dict[str, Any] = {
        "ledger_id": ledger_id,
        "batch_id": batch_id,
        "position": "line 2",
        "outcome": LineOutcome.FLAGGED,
        "reason": "looks like one entered by hand",
        "reference": "REF-1",
        "date": dt.date(2024, 2, 29),
        "amount": Decimal("-12.50"),
        "commodity": "USD",
        "payee": "Café",
        "narration": None,
        "counter_account_id": uuid.UUID(books.id("Expenses:Fees")),
        "transaction_id": None,
        "candidate_id": uuid.uuid4(),
    }
    async with database.sessions() as session, session.begin():
        session.add(
            ImportBatch(
                ledger_id=ledger_id,
                id=batch_id,
                format=ImportFormat.CSV,
                file_sha256="0" * 64,
                options={},
                status=ImportStatus.COMPLETED,
                created_at=dt.datetime.now(dt.UTC),
            )
        )
        await session.flush()
        await insert_rows(
            session,
            cast(Table, ImportLine.__table__),
            [{**line, "seq": 1, "identity": uuid.uuid4()}],
        )
        session.add(ImportLine(**line, seq=2, identity=uuid.uuid4()))
        object_id = uuid.uuid4()
        change = {"before": {"amount": "1.00", "tags": ["a"]}, "after": None}
        await audit.record(
            session,
            ledger_id=ledger_id,
            user_id=user_id,
            action="delete",
            object_type="transaction",
            object_id=object_id,
            **change,
        )
        await session.flush()
        await audit.record_many(
            session,
            ledger_id=ledger_id,
            user_id=user_id,
            action="delete",
            object_type="transaction",
            changes=[(object_id, change["before"], change["after"])],
        )

    async with database.sessions() as session:
        first, second = await _raw(session, "import_lines", "seq")
        assert _without(first, "seq", "identity") == _without(second, "seq", "identity")
        lines = list(await session.scalars(select(ImportLine).order_by(ImportLine.seq)))
        assert _attributes(lines[0], "seq", "identity") == _attributes(lines[1], "seq", "identity")
        assert lines[0].outcome is LineOutcome.FLAGGED
        entries = await _raw(session, "audit_log", "at")
        entries = [row for row in entries if row["action"] == "delete"]
        assert len(entries) == 2
        assert _without(entries[0], "id", "at") == _without(entries[1], "id", "at")
        assert entries[0]["at"] < entries[1]["at"]  # recorded later, listed later


async def test_bulk_writes_belong_to_the_callers_transaction(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await _books(client, user)
    ledger_id, user_id = uuid.UUID(books.ledger_id), uuid.UUID(user.id)
    data = TransactionIn.model_validate(
        books.body("2024-01-02", ("Expenses:Fees", "2.00", "USD"), ("Assets:Cash", None, None))
    )
    async with database.sessions() as session:
        prepared = await prepare_transaction(session, ledger_id, data, Lookups(ledger_id))
        await session.rollback()
    # The very first statement of a transaction, then rolled back: nothing stays.
    async with database.sessions() as session:
        await insert_transactions(session, ledger_id, user_id, [prepared])
        await session.rollback()
    # Inside a savepoint that is rolled back (a dry run): only what came before stays.
    async with database.sessions() as session, session.begin():
        (kept,) = await insert_transactions(session, ledger_id, user_id, [prepared])
        savepoint = await session.begin_nested()
        await insert_transactions(session, ledger_id, user_id, [prepared, prepared])
        await savepoint.rollback()
    async with database.sessions() as session:
        stored = list(await session.scalars(select(Transaction.id)))
        assert stored == [kept]
        assert len(list(await session.scalars(select(Posting.id)))) == 2


async def test_a_violated_constraint_is_sqlalchemys_integrity_error(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await _books(client, user)
    ledger_id = uuid.UUID(books.ledger_id)
    now = dt.datetime.now(dt.UTC)
    row: tuple[Any, ...] = (
        uuid.uuid4(),
        dt.date(2024, 1, 1),
        None,
        None,
        [],
        [],
        {},
        TransactionStatus.CLEARED,
        None,
    )
    constants = {
        "ledger_id": ledger_id,
        "version": 1,
        "created_by": None,
        "created_at": now,
        "updated_at": now,
    }
    columns = (
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
    table = cast(Table, Transaction.__table__)
    async with database.sessions() as session:
        await insert_records(session, table, columns, [row], constants)
        with pytest.raises(IntegrityError):
            await insert_records(session, table, columns, [row], constants)
        await session.rollback()


def test_new_ids_are_random_version_4_uuids() -> None:
    ids = new_ids(1000)
    assert len(set(ids)) == 1000
    assert {identifier.version for identifier in ids} == {4}
    assert {identifier.variant for identifier in ids} == {uuid.RFC_4122}
    assert new_ids(0) == []
