"""An account's register: postings newest first with a running balance, right on every page."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from finance.balances.schemas import RegisterEntry
from finance.schemas import Page
from tests.books import Books, open_books
from tests.conftest import AuthedUser, assert_problem

BANK = "Assets:Bank"
CHECKING = "Assets:Bank:Checking"
EURO = "Assets:Bank:Euro"
FOOD = "Expenses:Food"
SALARY = "Income:Salary"


@pytest.fixture
async def books(client: httpx.AsyncClient, user: AuthedUser) -> Books:
    books = await open_books(client, user, BANK, CHECKING, EURO, FOOD, SALARY)
    await books.create("2024-01-31", (CHECKING, "3000.00", "USD"), (SALARY, None, None))
    for day in range(1, 6):
        await books.create(
            f"2024-02-0{day}",
            (FOOD, f"{day}0.00", "USD", {"memo": f"day {day}"}),
            (CHECKING, None, None),
            payee=f"Shop {day}",
        )
    await books.create("2024-02-03", (EURO, "50.00", "EUR"), (SALARY, None, None))
    await books.create("2024-02-03", (BANK, "1.00", "USD"), (SALARY, None, None))
    # One transaction with two postings on the same account.
    await books.create(
        "2024-02-04", (CHECKING, "-5.00", "USD"), (CHECKING, "-6.00", "USD"), (FOOD, None, None)
    )
    return books


async def _all(books: Books, account: str, **params: Any) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    params = {"limit": 2, **params}
    while True:
        page = await books.get_as(
            Page[RegisterEntry], f"/accounts/{books.id(account)}/register", **params
        )
        entries += page["items"]
        if page["next_cursor"] is None:
            return entries
        params["cursor"] = page["next_cursor"]


def _check_running(entries: list[dict[str, Any]]) -> None:
    """Oldest to newest, each balance is the previous one in its commodity plus the amount."""
    running: dict[str, Decimal] = {}
    for entry in reversed(entries):
        commodity = entry["commodity"]
        running[commodity] = running.get(commodity, Decimal(0)) + Decimal(entry["amount"])
        assert Decimal(entry["balance"]) == running[commodity], entry


async def test_newest_first_with_a_running_balance_across_pages(books: Books) -> None:
    entries = await _all(books, CHECKING)
    assert len(entries) == 8
    keys = [(e["date"], e["transaction_id"]) for e in entries]
    assert keys == sorted(keys, reverse=True)
    _check_running(entries)
    assert entries[0]["balance"] == "2839.00"
    assert entries[-1] == {
        **entries[-1],
        "date": "2024-01-31",
        "amount": "3000.00",
        "balance": "3000.00",
        "commodity": "USD",
        "status": "cleared",
    }
    shop = next(e for e in entries if e["payee"] == "Shop 2")
    assert (shop["amount"], shop["memo"]) == ("-20.00", None)
    split = [e for e in entries if e["amount"] in ("-5.00", "-6.00")]
    assert [e["amount"] for e in split] == ["-6.00", "-5.00"]  # later position first


async def test_descendants_each_commodity_runs_on_its_own(books: Books) -> None:
    entries = await _all(books, BANK)
    assert len(entries) == 10
    assert {e["account_id"] for e in entries} == {
        books.id(BANK),
        books.id(CHECKING),
        books.id(EURO),
    }
    _check_running(entries)
    euro = [e for e in entries if e["commodity"] == "EUR"]
    assert [(e["amount"], e["balance"]) for e in euro] == [("50.00", "50.00")]
    alone = await _all(books, BANK, include_descendants="false")
    assert [(e["amount"], e["balance"]) for e in alone] == [("1.00", "1.00")]


async def test_a_date_range_keeps_the_balance_of_what_came_before(books: Books) -> None:
    everything = await _all(books, CHECKING)
    ranged = await _all(books, CHECKING, **{"from": "2024-02-03", "to": "2024-02-04"})
    assert [e["date"] for e in ranged] == ["2024-02-04"] * 3 + ["2024-02-03"]
    expected = {e["posting_id"]: e["balance"] for e in everything}
    assert all(e["balance"] == expected[e["posting_id"]] for e in ranged)


async def test_an_unknown_account_or_cursor(books: Books) -> None:
    response = await books.client.get(
        f"{books.url}/accounts/00000000-0000-4000-8000-000000000000/register",
        headers=books.owner.headers,
    )
    assert_problem(response, 404)
    forged = "WyIyMDI0LTAxLTAxIiwgIngiLCAxXQ"  # ["2024-01-01", "x", 1]
    response = await books.client.get(
        f"{books.url}/accounts/{books.id(CHECKING)}/register",
        params={"cursor": forged},
        headers=books.owner.headers,
    )
    assert_problem(response, 422)
