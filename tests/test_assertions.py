"""Balance assertions: the balance at the start of a day, descendants included, always current."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from finance.db import Database
from finance.models import AuditEntry
from tests.books import Books, add_member, counts, open_books
from tests.conftest import AuthedUser, UserFactory, assert_problem, statements

BANK = "Assets:Bank"
CHECKING = "Assets:Bank:Checking"
LOOKALIKE = "Assets:BankX"
FOOD = "Expenses:Food"
SALARY = "Income:Salary"


@pytest.fixture
async def books(client: httpx.AsyncClient, user: AuthedUser) -> Books:
    books = await open_books(client, user, BANK, CHECKING, LOOKALIKE, FOOD, SALARY)
    await books.account("Assets:Closed", closed_on="2023-12-31")
    await books.create("2024-01-31", (CHECKING, "3000.00", "USD"), (SALARY, None, None))
    await books.create("2024-02-01", (FOOD, "100.00", "USD"), (CHECKING, None, None))
    await books.create("2024-02-01", (LOOKALIKE, "7.00", "USD"), (SALARY, None, None))
    await books.create("2024-02-02", (BANK, "10.00", "EUR"), (SALARY, None, None))
    return books


async def _assert(
    books: Books,
    account: str,
    date: str,
    amount: str,
    commodity: str = "USD",
    user: AuthedUser | None = None,
) -> httpx.Response:
    return await books.client.post(
        f"{books.url}/assertions",
        json={
            "account_id": books.id(account),
            "date": date,
            "amount": amount,
            "commodity": commodity,
        },
        headers=(user or books.owner).headers,
    )


async def _created(books: Books, *args: Any) -> dict[str, Any]:
    response = await _assert(books, *args)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert response.headers["Location"] == f"{books.url}/assertions/{body['id']}"
    return body


async def test_the_balance_at_the_start_of_the_day(books: Books) -> None:
    # Postings dated 2024-02-01 are not yet in the balance at the start of 2024-02-01.
    passing = await _created(books, CHECKING, "2024-02-01", "3000.00")
    assert (passing["passing"], passing["actual"], passing["difference"]) == (
        True,
        "3000.00",
        "0.00",
    )
    failing = await _created(books, CHECKING, "2024-02-02", "3000.00")
    assert (failing["passing"], failing["actual"], failing["difference"]) == (
        False,
        "2900.00",
        "-100.00",
    )
    assert failing["account"] == CHECKING


async def test_a_parent_counts_its_descendants_but_not_lookalikes(books: Books) -> None:
    usd = await _created(books, BANK, "2024-03-01", "2900.00")
    assert usd["passing"] is True
    eur = await _created(books, BANK, "2024-03-01", "10.00", "EUR")
    assert eur["passing"] is True
    nothing = await _created(books, CHECKING, "2024-03-01", "0", "EUR")
    assert (nothing["passing"], nothing["actual"]) == (True, "0.00")


async def test_always_current_after_changes_before_the_date(books: Books) -> None:
    created = await _created(books, CHECKING, "2024-03-01", "2900.00")
    tx = await books.create("2024-02-15", (FOOD, "25.00", "USD"), (CHECKING, None, None))
    listed = await books.get("/assertions")
    assert [(a["id"], a["passing"], a["difference"]) for a in listed] == [
        (created["id"], False, "-25.00")
    ]
    await books.create("2024-03-01", (FOOD, "999.00", "USD"), (CHECKING, None, None))
    response = await books.client.delete(
        f"{books.url}/transactions/{tx['id']}", headers=books.owner.headers
    )
    assert response.status_code == 204
    again = await books.get(f"/assertions/{created['id']}")
    assert (again["passing"], again["actual"]) == (True, "2900.00")


async def test_listing_is_one_query_ordered_by_date(books: Books, database: Database) -> None:
    for date in ("2024-03-01", "2024-01-01", "2024-02-02"):
        await _created(books, CHECKING, date, "0")
    with statements(database) as seen:
        listed = await books.get("/assertions")
    assert [a["date"] for a in listed] == ["2024-01-01", "2024-02-02", "2024-03-01"]
    assert [a["passing"] for a in listed] == [True, False, False]
    assert sum("balance_assertions" in statement for statement in seen) == 1


async def test_delete_is_audited_and_another_ledgers_assertion_is_404(
    books: Books, database: Database, make_user: UserFactory
) -> None:
    created = await _created(books, CHECKING, "2024-02-01", "3000.00")
    other = await make_user()
    theirs = await open_books(books.client, other, "Assets:Theirs")
    url = f"{theirs.url}/assertions/{created['id']}"
    assert_problem(await books.client.get(url, headers=other.headers), 404)
    assert_problem(await books.client.delete(url, headers=other.headers), 404)
    url = f"{books.url}/assertions/{created['id']}"
    assert (await books.client.delete(url, headers=books.owner.headers)).status_code == 204
    assert_problem(await books.client.get(url, headers=books.owner.headers), 404)
    async with database.sessions() as session:
        actions = (
            await session.scalars(
                select(AuditEntry.action).where(AuditEntry.object_type == "balance_assertion")
            )
        ).all()
    assert sorted(actions) == ["create", "delete"]


async def test_bad_assertions_write_nothing(
    books: Books, database: Database, make_user: UserFactory
) -> None:
    viewer = await make_user()
    await add_member(books, viewer, "viewer")
    theirs = await open_books(books.client, await make_user(), "Assets:Theirs")
    before = await counts(database)
    url = f"{books.url}/assertions"
    good = {
        "account_id": books.id(CHECKING),
        "date": "2024-02-01",
        "amount": "1.00",
        "commodity": "USD",
    }
    for change, fragment in (
        ({"account_id": theirs.id("Assets:Theirs")}, "no such account in this ledger"),
        ({"account_id": "00000000-0000-4000-8000-000000000000"}, "no such account in this ledger"),
        ({"amount": "1.001"}, "more than 2 decimal places"),
        ({"amount": 1.5}, "must be a decimal string"),
        ({"commodity": "NOPE"}, "Unknown commodity"),
        ({"date": "1800-01-01"}, "date must be between"),
        ({"account_id": books.id("Assets:Closed")}, "was closed on 2023-12-31"),
        ({"id": books.id(CHECKING)}, "Extra inputs"),
    ):
        response = await books.client.post(
            url, json={**good, **change}, headers=books.owner.headers
        )
        assert fragment in assert_problem(response, 422)["detail"]
    assert_problem(await _assert(books, CHECKING, "2024-02-01", "1.00", "USD", viewer), 403)
    assert await counts(database) == before
