"""Listing transactions: every filter, newest first, keyset pages, postings in one query."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from finance.db import Database
from tests.books import Books, open_books
from tests.conftest import AuthedUser, assert_problem

CHECKING = "Assets:Bank:Checking"
SAVINGS = "Assets:Bank:Savings"
BANK = "Assets:Bank"
ODD = "Assets:Bank_%"
LOOKALIKE = "Assets:BankX"
FOOD = "Expenses:Food"
SALARY = "Income:Salary"


@pytest.fixture
async def books(client: httpx.AsyncClient, user: AuthedUser) -> Books:
    books = await open_books(client, user, BANK, CHECKING, SAVINGS, ODD, LOOKALIKE, FOOD, SALARY)
    await books.create(
        "2024-01-31",
        (CHECKING, "3000.00", "USD"),
        (SALARY, None, None),
        payee="ACME Corp",
        tags=["salary"],
    )
    await books.create(
        "2024-02-03",
        (FOOD, "45.10", "USD", {"memo": "weekly groceries"}),
        (CHECKING, None, None),
        payee="Corner Market",
        status="pending",
    )
    await books.create(
        "2024-02-03",
        (SAVINGS, "500.00", "USD"),
        (CHECKING, None, None),
        narration="Save",
        tags=["transfer", "saving"],
    )
    await books.create(
        "2024-02-10",
        (FOOD, "8.00", "EUR"),
        (ODD, None, None),
        payee="100% Café",
        status="reconciled",
    )
    await books.create("2024-02-11", (FOOD, "12.00", "USD"), (LOOKALIKE, None, None))
    await books.create("2024-03-01", (FOOD, "-45.10", "USD"), (BANK, None, None), payee="refund")
    return books


async def _payees(books: Books, **params: Any) -> list[str | None]:
    page = await books.get("/transactions", **params)
    assert page["next_cursor"] is None
    return [item["payee"] or item["narration"] or item["date"] for item in page["items"]]


async def test_newest_first_with_postings(books: Books) -> None:
    page = await books.get("/transactions")
    dates = [item["date"] for item in page["items"]]
    assert dates == sorted(dates, reverse=True)
    same_day = [item["id"] for item in page["items"] if item["date"] == "2024-02-03"]
    assert same_day == sorted(same_day, reverse=True)
    assert all(len(item["postings"]) == 2 for item in page["items"])


async def test_keyset_pages_cover_everything_once(books: Books) -> None:
    everything = [item["id"] for item in (await books.get("/transactions"))["items"]]
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = await books.get("/transactions", **params)
        seen += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == everything
    assert len(seen) == 6
    # A page that ends exactly at the last item says so.
    assert (await books.get("/transactions", limit=6))["next_cursor"] is None


async def test_date_range_is_inclusive(books: Books) -> None:
    page = await books.get("/transactions", **{"from": "2024-02-03", "to": "2024-02-10"})
    assert [item["date"] for item in page["items"]] == ["2024-02-10", "2024-02-03", "2024-02-03"]


async def test_account_with_and_without_descendants_escapes_wildcards(books: Books) -> None:
    bank = books.id(BANK)
    with_children = await books.get("/transactions", account_id=bank)
    assert len(with_children["items"]) == 4  # Checking, Savings, Bank itself; not BankX, Bank_%
    alone = await _payees(books, account_id=bank, include_descendants="false")
    assert alone == ["refund"]
    odd = await _payees(books, account_id=books.id(ODD))
    assert odd == ["100% Café"]
    missing = await books.client.get(
        f"{books.url}/transactions",
        params={"account_id": "00000000-0000-4000-8000-000000000000"},
        headers=books.owner.headers,
    )
    assert_problem(missing, 404)


async def test_payee_tag_status_and_text(books: Books) -> None:
    assert await _payees(books, payee="market") == ["Corner Market"]
    assert await _payees(books, payee="100%") == ["100% Café"]
    assert await _payees(books, payee="%") == ["100% Café"]
    assert await _payees(books, tag="saving") == ["Save"]
    assert await _payees(books, tag="sav") == []
    assert await _payees(books, status="pending") == ["Corner Market"]
    assert await _payees(books, q="GROCERIES") == ["Corner Market"]
    assert await _payees(books, q="save") == ["Save"]
    assert await _payees(books, q="acme") == ["ACME Corp"]


async def test_amount_range_on_absolute_posting_amounts_in_a_commodity(books: Books) -> None:
    assert await _payees(books, commodity="USD", min_amount="45.10", max_amount="45.10") == [
        "refund",
        "Corner Market",
    ]
    assert await _payees(books, commodity="USD", min_amount="1000") == ["ACME Corp"]
    assert await _payees(books, commodity="EUR") == ["100% Café"]
    assert await _payees(books, commodity="EUR", max_amount="7.99") == []
    assert await _payees(books, commodity="JPY") == []
    # Posting filters hold for one same posting: Savings has no posting of 45.10.
    assert (
        await _payees(books, account_id=books.id(SAVINGS), commodity="USD", max_amount="100") == []
    )
    for params in (
        {"min_amount": "1"},
        {"commodity": "USD", "min_amount": "-1"},
        {"commodity": "USD", "min_amount": "0.001"},
        {"commodity": "USD", "max_amount": "1e5x"},
        {"status": "void"},
        {"from": "2024-13-01"},
    ):
        response = await books.client.get(
            f"{books.url}/transactions", params=params, headers=books.owner.headers
        )
        assert_problem(response, 422)


@contextmanager
def _statements(database: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(args[2])

    event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", count)


async def test_a_page_costs_the_same_few_queries_whatever_its_size(
    books: Books, database: Database
) -> None:
    with _statements(database) as small:
        await books.get("/transactions", limit=1)
    for n in range(30):
        await books.create("2024-04-01", (FOOD, f"{n + 1}.00", "USD"), (CHECKING, None, None))
    with _statements(database) as large:
        page = await books.get("/transactions", limit=30)
    assert len(page["items"]) == 30
    assert len(large) == len(small)
