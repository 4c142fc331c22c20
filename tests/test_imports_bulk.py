"""Statements over many chunks: duplicates, look-alikes and counter-accounts across chunk
borders, re-import, undo; the payee's latest counter-account; the collector set aside."""

from __future__ import annotations

import datetime as dt
import gc
import io
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from finance.db import Database
from finance.imports import service, statements
from finance.imports.outcomes import ImportRequest
from finance.imports.schemas import CsvMapping
from finance.models import AuditEntry, ImportFormat, Ledger, Transaction
from tests.books import Books, open_books
from tests.conftest import AuthedUser
from tests.test_imports import balances, imported, transaction_count

CHECKING = "Assets:Bank:Checking"
MAPPING = {
    "date": "Date",
    "amount": "Amount",
    "payee": "Payee",
    "reference": "Ref",
    "currency": "USD",
}
PAYEES = ["Market", "Cafe", "Fuel Station"]


def _csv(rows: list[tuple[str, str, str, str]]) -> bytes:
    return ("Date,Amount,Payee,Ref\n" + "".join(",".join(row) + "\n" for row in rows)).encode()


def _rows(count: int) -> list[tuple[str, str, str, str]]:
    start = dt.date(2024, 1, 1)
    return [
        (
            (start + dt.timedelta(days=index // 3)).isoformat(),
            f"-{index + 1}.{index % 100:02d}",
            PAYEES[index % 3],
            f"R{index}",
        )
        for index in range(count)
    ]


async def _import(books: Books, content: bytes) -> dict[str, Any]:
    return await imported(
        books, "statement.csv", content=content, account_id=books.id(CHECKING), mapping=MAPPING
    )


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 7 lines: the borders are where a chunked import could go wrong."""
    monkeypatch.setattr(statements, "CHUNK", 7)
    monkeypatch.setattr(service, "CHUNK", 7)


@pytest.mark.usefixtures("small_chunks")
async def test_a_statement_over_many_chunks_imports_reimports_and_undoes(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await open_books(client, user, CHECKING, "Expenses:Food")
    rows = _rows(40)
    rows[7] = rows[6]  # the same line twice, across a chunk border: both stay
    rows[12] = (rows[12][0], "0.00", "Nothing", "R12")  # skipped
    # Entered by hand, then found in the statement (in the fourth chunk): flagged.
    await books.create(
        "2024-01-08",
        (CHECKING, "-22.21", "USD"),
        ("Expenses:Food", "22.21", "USD"),
        payee="Market",
    )
    content = _csv(rows)
    batch = await _import(books, content)
    assert batch["counts"] == {
        "lines": 40,
        "new": 38,
        "duplicate": 0,
        "flagged": 1,
        "rejected": 0,
        "skipped": 1,
    }
    lines = batch["lines"]
    assert [line["seq"] for line in lines] == list(range(1, 41))
    assert lines[21]["outcome"] == "flagged"
    assert (lines[6]["outcome"], lines[7]["outcome"]) == ("new", "new")
    assert lines[6]["transaction_id"] != lines[7]["transaction_id"]
    # Market's counter-account is learned from the hand-entered transaction, in every chunk.
    food = books.id("Expenses:Food")
    assert {line["counter_account_id"] for line in lines if line["payee"] == "Market"} == {food}
    new = [Decimal(line["amount"]) for line in lines if line["outcome"] == "new"]
    totals = await balances(database, books.ledger_id)
    assert totals[(CHECKING, "USD")] == sum(new) - Decimal("22.21")
    assert await transaction_count(database, books.ledger_id) == 39

    again = await _import(books, content)
    assert again["counts"]["duplicate"] == 39
    assert again["counts"]["skipped"] == 1

    response = await client.delete(f"{books.url}/imports/{batch['id']}", headers=user.headers)
    assert response.status_code == 200, response.text
    assert await transaction_count(database, books.ledger_id) == 1  # the one entered by hand
    async with database.sessions() as session:
        deleted = await session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "delete", AuditEntry.object_type == "transaction")
        )
    assert deleted == 38
    # Its identities are released: the statement comes back, the look-alike flagged again.
    back = await _import(books, content)
    assert (back["counts"]["new"], back["counts"]["flagged"]) == (38, 1)


async def test_the_counter_account_is_the_one_of_the_payees_latest_transaction(
    client: httpx.AsyncClient, user: AuthedUser
) -> None:
    books = await open_books(
        client, user, CHECKING, "Expenses:Food", "Expenses:Rent", "Expenses:Car"
    )
    for date, other, payee in [
        ("2023-06-01", "Expenses:Rent", "Market"),
        ("2023-07-01", "Expenses:Food", "Market"),  # the latest date wins
        ("2023-05-01", "Expenses:Car", "Market"),
        ("2023-06-01", "Expenses:Rent", "Cafe"),
        ("2023-06-01", "Expenses:Food", "Cafe"),  # the same date: the later entered wins
    ]:
        await books.create(date, (CHECKING, "-5.00", "USD"), (other, "5.00", "USD"), payee=payee)
    batch = await _import(books, _csv(_rows(6)))
    by_payee = {line["payee"]: line["counter_account_id"] for line in batch["lines"]}
    assert by_payee["Market"] == books.id("Expenses:Food")
    assert by_payee["Cafe"] == books.id("Expenses:Food")
    assert by_payee["Fuel Station"] != books.id("Expenses:Food")  # the default, created


@pytest.mark.usefixtures("small_chunks")
async def test_the_collector_leaves_the_rest_of_the_process_alone_only_while_importing(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await open_books(client, user, CHECKING)
    before = gc.get_freeze_count()
    during: list[int] = []
    async with database.sessions() as session, session.begin():
        ledger = await session.get_one(Ledger, uuid.UUID(books.ledger_id))
        batch = await service.run_import(
            session,
            ledger,
            uuid.UUID(user.id),
            io.BytesIO(_csv(_rows(20))),
            ImportRequest(
                format=ImportFormat.CSV,
                account_id=uuid.UUID(books.id(CHECKING)),
                mapping=CsvMapping.model_validate(MAPPING),
            ),
            max_lines=100,
            progress=lambda _done: during.append(gc.get_freeze_count()),
        )
    assert batch.counts.new == 20
    assert len(during) == 3
    assert min(during) > before
    assert gc.get_freeze_count() == before
    async with database.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Transaction)) == 20
