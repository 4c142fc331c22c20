"""Beancount files into a ledger: the balances Beancount itself reports, and nothing twice."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from decimal import Decimal

import httpx
from beancount import loader
from beancount.core import data as bean
from sqlalchemy import select

from finance.db import Database
from finance.models import Account, Commodity
from tests.books import counts, open_books
from tests.conftest import AuthedUser
from tests.test_imports import DATA, balances, imported, transaction_count, upload

HOUSEHOLD = DATA / "household.beancount"


def beancount_balances(text: str) -> dict[tuple[str, str], Decimal]:
    """What Beancount reports: every account's units per commodity, pads included."""
    entries, errors, _options = loader.load_string(text)
    assert errors == []
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for entry in entries:
        if isinstance(entry, bean.Transaction):
            for posting in entry.postings:
                assert posting.units is not None
                assert posting.units.number is not None
                totals[(posting.account, posting.units.currency)] += posting.units.number
    return {key: value for key, value in totals.items() if value}


async def test_a_beancount_ledger_into_an_empty_ledger_gives_beancounts_balances(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await open_books(client, user)
    batch = await imported(books, "household.beancount")
    assert batch["format"] == "beancount"
    assert batch["account_id"] is None
    assert batch["counts"]["rejected"] == 0
    assert batch["counts"]["flagged"] == 0
    assert batch["counts"]["skipped"] == 2  # the pad (booked as its transaction) and the note
    assert await balances(database, books.ledger_id) == beancount_balances(HOUSEHOLD.read_text())

    sale = next(line for line in batch["lines"] if line["narration"] == "Sell ITOT")
    assert sale["position"] == "line 90"
    note = next(
        line
        for line in batch["lines"]
        if line["outcome"] == "skipped" and "Note" in (line["reason"] or "")
    )
    assert note["position"] == "line 116"

    assertions = await books.get("/assertions")
    assert len(assertions) == 4
    assert all(assertion["passing"] for assertion in assertions)
    prices = await books.get("/prices")
    assert sorted(
        (price["date"], price["commodity"], price["amount"]) for price in prices["items"]
    ) == [
        ("2021-06-30", "ITOT", "102.50"),
        ("2021-12-31", "EUR", "1.1370"),
        ("2021-12-31", "ITOT", "110.25"),
    ]

    async with database.sessions() as session:
        accounts = {
            account.name: account
            for account in await session.scalars(
                select(Account).where(Account.ledger_id == uuid.UUID(books.ledger_id))
            )
        }
        commodities = {
            commodity.code: commodity.precision
            for commodity in await session.scalars(
                select(Commodity).where(Commodity.ledger_id == uuid.UUID(books.ledger_id))
            )
        }
    assert accounts["Assets:Bank:Euro"].closed_on == dt.date(2022, 12, 31)
    assert accounts["Assets:Bank:Checking"].opened_on == dt.date(2021, 1, 1)
    assert accounts["Assets:Bank:Checking"].allowed_commodities == ["USD"]
    assert commodities == {"USD": 2, "EUR": 2, "ITOT": 0, "VACHR": 0}


async def test_the_same_beancount_file_twice_creates_nothing(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await open_books(client, user)
    first = await imported(books, "household.beancount")
    created = await transaction_count(database, books.ledger_id)
    again = await imported(books, "household.beancount")
    assert again["counts"]["new"] == 0
    assert again["counts"]["duplicate"] == first["counts"]["new"] + first["counts"]["duplicate"]
    assert await transaction_count(database, books.ledger_id) == created


async def test_into_an_existing_ledger_with_some_accounts_already_there(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await open_books(client, user, "Assets:Bank:Checking", "Expenses:Rent")
    await books.create(
        "2020-12-01",
        ("Assets:Bank:Checking", "100.00", "USD"),
        ("Expenses:Rent", "-100.00", "USD"),
    )
    batch = await imported(books, "household.beancount")
    opens = [line for line in batch["lines"] if (line["reason"] or "").startswith("open ")]
    existing = {line["reason"] for line in opens if line["outcome"] == "duplicate"}
    assert existing == {"open Assets:Bank:Checking", "open Expenses:Rent"}
    expected = beancount_balances(HOUSEHOLD.read_text())
    expected[("Assets:Bank:Checking", "USD")] += Decimal("100.00")
    expected[("Expenses:Rent", "USD")] -= Decimal("100.00")
    assert await balances(database, books.ledger_id) == expected


async def test_missing_accounts_and_commodities_are_created(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    text = """
2024-01-05 * "Coffee shop"
  Expenses:Coffee        4.25 USD
  Assets:Wallet

2024-01-06 * "Miles"
  Assets:Airline:Miles    1200 MILES
  Income:Airline         -1200 MILES
"""
    books = await open_books(client, user)
    batch = await imported(books, "loose.beancount", content=text.encode())
    assert batch["counts"]["new"] == 2
    assert batch["options"]["created_accounts"] == [
        "Expenses:Coffee",
        "Assets:Wallet",
        "Assets:Airline:Miles",
        "Income:Airline",
    ]
    assert batch["options"]["created_commodities"] == ["MILES"]  # USD came with the ledger
    assert await balances(database, books.ledger_id) == {
        ("Expenses:Coffee", "USD"): Decimal("4.25"),
        ("Assets:Wallet", "USD"): Decimal("-4.25"),
        ("Assets:Airline:Miles", "MILES"): Decimal("1200"),
        ("Income:Airline", "MILES"): Decimal("-1200"),
    }


async def test_custom_root_names_map_to_the_standard_ones(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    text = """option "name_assets" "Actifs"
option "name_expenses" "Depenses"

2024-01-01 open Actifs:Banque EUR
2024-01-05 * "Boulangerie"
  Depenses:Pain     3.20 EUR
  Actifs:Banque    -3.20 EUR
"""
    books = await open_books(client, user, base="EUR")
    await imported(books, "fr.beancount", content=text.encode())
    assert await balances(database, books.ledger_id) == {
        ("Expenses:Pain", "EUR"): Decimal("3.20"),
        ("Assets:Banque", "EUR"): Decimal("-3.20"),
    }


async def test_a_beancount_file_with_errors_writes_nothing(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await open_books(client, user)
    before = await counts(database)
    syntax = HOUSEHOLD.read_text().replace("2021-02-03 * ", "2021-02-03 ** ", 1)
    response = await upload(books, "broken.beancount", content=syntax.encode())
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["position"] == "line 50"
    assert problem["errors"][0]["line"] == 50
    include = 'include "/etc/passwd"\n' + HOUSEHOLD.read_text()
    response = await upload(books, "include.beancount", content=include.encode())
    assert response.status_code == 422
    assert "include" in response.json()["detail"]
    oversold = HOUSEHOLD.read_text().replace(
        "Assets:Brokerage:ITOT          -10 ITOT {98.38 USD}",
        "Assets:Brokerage:ITOT          -30 ITOT {98.38 USD}",
    )
    response = await upload(books, "oversold.beancount", content=oversold.encode())
    assert response.status_code == 422
    assert response.json()["position"] == "line 90"
    assert await counts(database) == before


async def test_an_unbalanced_transaction_is_rejected_with_its_reason(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await open_books(client, user)
    unbalanced = HOUSEHOLD.read_text().replace(
        "Income:Salary              -4200.00", "Income:Salary              -4100.00", 1
    )
    batch = await imported(books, "unbalanced.beancount", content=unbalanced.encode())
    (rejected,) = [line for line in batch["lines"] if line["outcome"] == "rejected"]
    assert rejected["position"] == "line 37"
    assert "USD" in rejected["reason"]


async def test_plugins_are_listed_not_run(client: httpx.AsyncClient, user: AuthedUser) -> None:
    text = 'plugin "beancount.plugins.auto_accounts"\n' + HOUSEHOLD.read_text()
    books = await open_books(client, user)
    batch = await imported(books, "plugin.beancount", content=text.encode())
    assert batch["options"]["plugins_not_run"] == ["beancount.plugins.auto_accounts"]
