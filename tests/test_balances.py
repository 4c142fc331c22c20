"""Balances as of a date: per account, rolled up every path, per type; one account's balance."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from finance.balances.schemas import AccountBalanceOut, BalanceSheet
from finance.models import AccountType
from tests.books import Books, add_member, open_books
from tests.conftest import AuthedUser, UserFactory, assert_problem

CHECKING = "Assets:Bank:Checking"
SAVINGS = "Assets:Bank:Savings"
EURO = "Assets:Bank:Euro"
BROKER = "Assets:Broker"
SHARES = "Assets:Broker:ITOT"
CARD = "Liabilities:Card"
OPENING = "Equity:Opening"
SALARY = "Income:Salary"
RENT = "Expenses:Home:Rent"
FOOD = "Expenses:Food"
UNUSED = "Expenses:Unused"


@pytest.fixture
async def books(client: httpx.AsyncClient, user: AuthedUser) -> Books:
    books = await open_books(
        client,
        user,
        CHECKING,
        SAVINGS,
        EURO,
        BROKER,
        SHARES,
        CARD,
        OPENING,
        SALARY,
        RENT,
        FOOD,
        UNUSED,
    )
    await books.commodity("ITOT", 0)
    await books.create("2024-01-01", (CHECKING, "1000.00", "USD"), (OPENING, None, None))
    await books.create("2024-01-31", (CHECKING, "3000.00", "USD"), (SALARY, None, None))
    await books.create("2024-02-01", (RENT, "1200.00", "USD"), (CHECKING, None, None))
    await books.create("2024-02-05", (FOOD, "80.25", "USD"), (CARD, None, None))
    await books.create("2024-02-06", (FOOD, "3000", "JPY"), (CARD, None, None))
    await books.create("2024-02-20", (CARD, "80.25", "USD"), (CHECKING, None, None))
    await books.create("2024-02-21", (SAVINGS, "500.00", "USD"), (CHECKING, None, None))
    await books.create(
        "2024-03-01",
        (EURO, "200.00", "EUR", {"price": {"amount": "1.0850", "commodity": "USD"}}),
        (CHECKING, None, None),
    )
    await books.create(
        "2024-03-02",
        (SHARES, "5", "ITOT", {"cost": {"amount": "98.38", "commodity": "USD"}}),
        (BROKER, "-491.90", "USD"),
    )
    await books.create("2024-03-03", (BROKER, "491.90", "USD"), (SAVINGS, None, None))
    return books


def _by(rows: list[dict[str, Any]], key: str) -> dict[str, list[tuple[str, str]]]:
    return {
        row[key]: [(amount["amount"], amount["commodity"]) for amount in row["balances"]]
        for row in rows
    }


async def test_every_account_every_path_and_every_type_at_the_end_of_a_day(books: Books) -> None:
    sheet = await books.get_as(BalanceSheet, "/balances", as_of="2024-03-02")
    assert sheet["as_of"] == "2024-03-02"
    accounts = _by(sheet["accounts"], "name")
    assert accounts == {
        "Assets:Bank:Checking": [("2002.75", "USD")],
        "Assets:Bank:Euro": [("200.00", "EUR")],
        "Assets:Bank:Savings": [("500.00", "USD")],
        "Assets:Broker": [("-491.90", "USD")],
        "Assets:Broker:ITOT": [("5", "ITOT")],
        "Equity:Opening": [("-1000.00", "USD")],
        "Expenses:Food": [("3000", "JPY"), ("80.25", "USD")],
        "Expenses:Home:Rent": [("1200.00", "USD")],
        "Expenses:Unused": [],
        "Income:Salary": [("-3000.00", "USD")],
        "Liabilities:Card": [("-3000", "JPY")],  # the USD was paid back: zero is left out
    }
    assert list(accounts) == sorted(accounts)
    totals = _by(sheet["totals"], "path")
    assert totals["Assets"] == [("200.00", "EUR"), ("5", "ITOT"), ("2010.85", "USD")]
    assert totals["Assets:Bank"] == [("200.00", "EUR"), ("2502.75", "USD")]
    assert totals["Assets:Broker"] == [("5", "ITOT"), ("-491.90", "USD")]
    assert totals["Expenses"] == [("3000", "JPY"), ("1280.25", "USD")]
    assert totals["Expenses:Home"] == totals["Expenses:Home:Rent"] == [("1200.00", "USD")]
    implied = {row["path"] for row in sheet["totals"] if row["account_id"] is None}
    assert implied == {
        "Assets",
        "Assets:Bank",
        "Equity",
        "Expenses",
        "Expenses:Home",
        "Income",
        "Liabilities",
    }
    paths = [row["path"] for row in sheet["totals"]]
    assert paths == sorted(paths)
    assert list(sheet["by_type"]) == list(AccountType)
    assert {k: [(a["amount"], a["commodity"]) for a in v] for k, v in sheet["by_type"].items()} == {
        "asset": totals["Assets"],
        "liability": [("-3000", "JPY")],
        "equity": [("-1000.00", "USD")],
        "income": [("-3000.00", "USD")],
        "expense": totals["Expenses"],
    }


async def test_as_of_includes_the_whole_day_and_nothing_after(books: Books) -> None:
    early = _by((await books.get("/balances", as_of="2024-01-31"))["accounts"], "name")
    assert early[CHECKING] == [("4000.00", "USD")]
    assert early[RENT] == []
    before_any = await books.get_as(BalanceSheet, "/balances", as_of="2023-12-31")
    assert all(row["balances"] == [] for row in before_any["totals"])


async def test_as_of_defaults_to_today(books: Books) -> None:
    today = dt.datetime.now(dt.UTC).date()
    await books.create(today.isoformat(), (FOOD, "1.00", "USD"), (CHECKING, None, None))
    later = (today + dt.timedelta(days=2)).isoformat()
    await books.create(later, (FOOD, "1000.00", "USD"), (CHECKING, None, None))
    sheet = await books.get("/balances")
    assert sheet["as_of"] == today.isoformat()
    assert _by(sheet["accounts"], "name")[FOOD] == [("3000", "JPY"), ("81.25", "USD")]


async def test_sums_of_every_type_net_to_zero_per_commodity_without_costs(books: Books) -> None:
    sheet = await books.get("/balances", as_of="2024-02-28")
    per_commodity: dict[str, int] = {}
    for amounts in sheet["by_type"].values():
        for amount in amounts:
            cents = int(amount["amount"].replace(".", ""))
            per_commodity[amount["commodity"]] = per_commodity.get(amount["commodity"], 0) + cents
    assert set(per_commodity.values()) == {0}


async def test_one_accounts_balance_with_and_without_descendants(books: Books) -> None:
    url = f"/accounts/{books.id(BROKER)}/balance"
    rolled = await books.get_as(AccountBalanceOut, url, as_of="2024-03-02")
    assert rolled["include_descendants"] is True
    assert rolled["balances"] == [
        {"amount": "5", "commodity": "ITOT"},
        {"amount": "-491.90", "commodity": "USD"},
    ]
    alone = await books.get_as(
        AccountBalanceOut, url, as_of="2024-03-03", include_descendants="false"
    )
    assert alone["balances"] == []
    assert alone["name"] == BROKER


async def test_balances_are_readable_by_a_viewer_and_hidden_from_others(
    books: Books, make_user: UserFactory
) -> None:
    viewer, outsider = await make_user(), await make_user()
    await add_member(books, viewer, "viewer")
    for who, status in ((viewer, 200), (outsider, 404)):
        for path in ("/balances", f"/accounts/{books.id(CHECKING)}/balance"):
            response = await books.client.get(books.url + path, headers=who.headers)
            assert response.status_code == status
    theirs = await open_books(books.client, outsider, "Assets:Theirs")
    response = await books.client.get(
        f"{books.url}/accounts/{theirs.id('Assets:Theirs')}/balance", headers=books.owner.headers
    )
    assert_problem(response, 404)
    bad = await books.client.get(
        f"{books.url}/balances", params={"as_of": "yesterday"}, headers=books.owner.headers
    )
    assert_problem(bad, 422)
