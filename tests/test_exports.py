"""Exports: Beancount that bean-check accepts and imports back to the same balances, a journal
that hledger and ledger-cli balance the same way, and complete CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from finance.db import Database
from finance.exports import service as exports
from tests.books import Books, add_member, open_books
from tests.conftest import AuthedUser, UserFactory
from tests.test_imports import balances, imported, transaction_count

pytestmark = [
    pytest.mark.filterwarnings("ignore::ofxtools.Types.OFXTypeWarning"),
    pytest.mark.filterwarnings("ignore::ofxtools.models.base.OFXAggregateWarning"),
]

Balances = dict[tuple[str, str], Decimal]


def tool(name: str) -> str:
    """The path of a command-line tool; outside CI a missing one skips the test."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        message = f"{name} is not installed (apt-get install {name}); this check is skipped"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true requires {name}: {message}")
        pytest.skip(message)
    return found


async def household(client: httpx.AsyncClient, user: AuthedUser) -> Books:
    books = await open_books(client, user)
    await imported(books, "household.beancount")
    return books


async def exported(books: Books, export_format: str, **params: str) -> str:
    response = await books.client.get(
        f"{books.url}/export",
        params={"format": export_format, **params},
        headers=books.owner.headers,
    )
    assert response.status_code == 200, response.text
    return response.text


def run(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)  # noqa: S603
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def hledger_balances(path: Path) -> Balances:
    """`hledger bal` per account and commodity (CSV output, every account, no elision)."""
    out = run(tool("hledger"), "-f", str(path), "bal", "--flat", "--empty", "-N", "-O", "csv")
    totals: Balances = {}
    for row in list(csv.reader(io.StringIO(out)))[1:]:
        account, amounts = row[0], row[1]
        for amount in amounts.split(", "):
            number, _, code = amount.strip().partition(" ")
            if number and Decimal(number):
                totals[(account, code.strip('"'))] = Decimal(number)
    return totals


def ledger_cli_balances(path: Path) -> Balances:
    """ledger-cli's per-account totals, one commodity per line."""
    out = run(
        tool("ledger"),
        "-f",
        str(path),
        "bal",
        "--flat",
        "--no-total",
        "--balance-format",
        "%(account)\\t%(quantity(scrub(display_total)))\\t%(commodity(scrub(display_total)))\\n",
    )
    totals: Balances = {}
    for line in out.splitlines():
        account, number, code = line.split("\t")
        if Decimal(number):
            totals[(account, code.strip('"'))] = Decimal(number)
    return totals


def subtotal(totals: Balances, prefix: str) -> Balances:
    found: Balances = defaultdict(Decimal)
    for (account, code), amount in totals.items():
        if account == prefix or account.startswith(prefix + ":"):
            found[(prefix, code)] += amount
    return dict(found)


async def test_beancount_export_passes_bean_check_and_imports_back_to_the_same_balances(
    client: httpx.AsyncClient, user: AuthedUser, database: Database, tmp_path: Path
) -> None:
    books = await household(client, user)
    text = await exported(books, "beancount")
    path = tmp_path / "export.beancount"
    path.write_text(text)
    run(tool("bean-check"), str(path))
    assert '2022-03-01 * "Sell ITOT" ^trade-3' in text
    assert "  Assets:Brokerage:ITOT  -10 ITOT {98.38 USD} @ 112.00 USD" in text
    assert '  employer-id: "E-1042"' in text
    assert "2022-12-31 close Assets:Bank:Euro" in text

    again = await open_books(client, user)
    batch = await imported(again, "export.beancount", content=text.encode())
    assert batch["counts"]["rejected"] == 0
    assert await balances(database, again.ledger_id) == await balances(database, books.ledger_id)
    assert await transaction_count(database, again.ledger_id) == await transaction_count(
        database, books.ledger_id
    )
    assertions = await again.get("/assertions")
    assert all(assertion["passing"] for assertion in assertions)


async def test_ledger_export_gives_hledger_and_ledger_cli_the_same_balances(
    client: httpx.AsyncClient, user: AuthedUser, database: Database, tmp_path: Path
) -> None:
    books = await household(client, user)
    path = tmp_path / "export.journal"
    path.write_text(await exported(books, "ledger"))
    expected = await balances(database, books.ledger_id)
    assert hledger_balances(path) == expected
    if shutil.which("ledger") is not None:
        assert ledger_cli_balances(path) == expected


async def test_statement_imports_export_too(
    client: httpx.AsyncClient, user: AuthedUser, database: Database, tmp_path: Path
) -> None:
    books = await open_books(client, user, "Assets:Bank:Checking", "Assets:Bank:Giro")
    await imported(books, "checking-2024-01.ofx", account_id=books.id("Assets:Bank:Checking"))
    await imported(books, "checking.qif", account_id=books.id("Assets:Bank:Checking"))
    await imported(
        books, "statement-camt053.xml", account_id=books.id("Assets:Bank:Giro"), currency="EUR"
    )
    expected = await balances(database, books.ledger_id)
    beancount = tmp_path / "statements.beancount"
    beancount.write_text(await exported(books, "beancount"))
    run(tool("bean-check"), str(beancount))
    journal = tmp_path / "statements.journal"
    journal.write_text(await exported(books, "ledger"))
    assert hledger_balances(journal) == expected


async def test_a_date_range_opens_with_the_balances_before_it(
    client: httpx.AsyncClient, user: AuthedUser, database: Database, tmp_path: Path
) -> None:
    books = await household(client, user)
    text = await exported(books, "beancount", **{"from": "2022-01-01"})
    path = tmp_path / "since-2022.beancount"
    path.write_text(text)
    run(tool("bean-check"), str(path))
    assert "2021-03-16" not in text.split("\n\n", 3)[-1]  # no 2021 transaction, only openings
    assert "Opening balance of Assets:Brokerage:ITOT" in text
    again = await open_books(client, user)
    await imported(again, "since-2022.beancount", content=text.encode())
    full = await balances(database, books.ledger_id)
    since = await balances(database, again.ledger_id)
    journal = tmp_path / "since-2022.journal"
    journal.write_text(await exported(books, "ledger", **{"from": "2022-01-01"}))
    from_hledger = hledger_balances(journal)
    for key, value in full.items():
        if key[0].startswith(("Assets:", "Liabilities:")):
            assert since.get(key) == value, key
            assert from_hledger.get(key) == value, key

    up_to = await exported(books, "beancount", to="2021-12-31")
    assert "2022-01-28" not in up_to
    assert "close Assets:Bank:Euro" not in up_to


async def test_an_account_filter_keeps_whole_transactions(
    client: httpx.AsyncClient, user: AuthedUser, tmp_path: Path
) -> None:
    books = await household(client, user)
    text = await exported(books, "csv", account="Assets:Brokerage")
    rows = list(csv.DictReader(io.StringIO(text)))
    by_transaction: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_transaction[row["transaction_id"]].append(row)
    assert len(by_transaction) == 4  # the transfer in, two purchases, the sale
    for postings in by_transaction.values():
        assert any(p["account"].startswith("Assets:Brokerage") for p in postings)
    path = tmp_path / "brokerage.beancount"
    accounts = {account["name"]: account["id"] for account in await books.get("/accounts")}
    path.write_text(
        await exported(books, "beancount", account_id=accounts["Assets:Brokerage:ITOT"])
    )
    run(tool("bean-check"), str(path))
    response = await client.get(
        f"{books.url}/export",
        params={"format": "csv", "account": "Assets:Nothing"},
        headers=user.headers,
    )
    assert response.status_code == 404


async def test_csv_and_json_are_complete(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await household(client, user)
    rows = list(csv.DictReader(io.StringIO(await exported(books, "csv"))))
    assert list(rows[0]) == exports.CSV_COLUMNS
    totals: Balances = defaultdict(Decimal)
    for row in rows:
        totals[(row["account"], row["commodity"])] += Decimal(row["amount"])
    expected = await balances(database, books.ledger_id)
    assert {key: value for key, value in totals.items() if value} == expected
    sale = [row for row in rows if row["narration"] == "Sell ITOT"]
    assert (sale[0]["cost"], sale[0]["cost_commodity"], sale[0]["price"]) == (
        "98.38",
        "USD",
        "112.00",
    )
    salary = next(row for row in rows if row["narration"] == "Salary January")
    assert json.loads(salary["meta"]) == {"employer-id": "E-1042"}
    assert salary["tags"] == "payroll"

    document = json.loads(await exported(books, "json"))
    assert document["format"] == "finance-export"
    assert {c["code"]: c["precision"] for c in document["commodities"]} == {
        "EUR": 2,
        "ITOT": 0,
        "USD": 2,
        "VACHR": 0,
    }
    assert len(document["transactions"]) == await transaction_count(database, books.ledger_id)
    assert len(document["prices"]) == 3
    assert len(document["assertions"]) == 4
    euro = next(a for a in document["accounts"] if a["name"] == "Assets:Bank:Euro")
    assert euro["closed_on"] == "2022-12-31"
    json_totals: Balances = defaultdict(Decimal)
    for transaction in document["transactions"]:
        for posting in transaction["postings"]:
            json_totals[(posting["account"], posting["commodity"])] += Decimal(posting["amount"])
    assert {key: value for key, value in json_totals.items() if value} == expected


async def test_the_export_streams_in_chunks(
    client: httpx.AsyncClient,
    user: AuthedUser,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    books = await household(client, user)
    monkeypatch.setattr(exports, "CHUNK", 3)
    chunks = []
    async with client.stream(
        "GET", f"{books.url}/export", params={"format": "json"}, headers=user.headers
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-disposition"] == 'attachment; filename="Home.json"'
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
    document = json.loads(b"".join(chunks))
    dates = [transaction["date"] for transaction in document["transactions"]]
    assert dates == sorted(dates)
    assert len(dates) == await transaction_count(database, books.ledger_id)
    assert len({t["id"] for t in document["transactions"]}) == len(dates)


async def test_an_empty_ledger_exports_valid_files(
    client: httpx.AsyncClient, user: AuthedUser, tmp_path: Path
) -> None:
    books = await open_books(client, user)
    for export_format in ("beancount", "ledger", "csv", "json"):
        text = await exported(books, export_format)
        if export_format == "json":
            assert json.loads(text)["transactions"] == []
    path = tmp_path / "empty.beancount"
    path.write_text(await exported(books, "beancount"))
    run(tool("bean-check"), str(path))


async def test_who_may_export_and_bad_filters(
    client: httpx.AsyncClient, user: AuthedUser, make_user: UserFactory
) -> None:
    books = await open_books(client, user, "Assets:Cash")
    viewer = await make_user()
    await add_member(books, viewer, "viewer")
    url = f"{books.url}/export"
    assert (
        await client.get(url, params={"format": "csv"}, headers=viewer.headers)
    ).status_code == 200
    stranger = await make_user()
    assert (
        await client.get(url, params={"format": "csv"}, headers=stranger.headers)
    ).status_code == 404
    for params, status in (
        ({"format": "xlsx"}, 422),
        ({"format": "csv", "from": "2024-02-01", "to": "2024-01-01"}, 422),
        ({"format": "csv", "account_id": str(uuid.uuid4())}, 404),
    ):
        response = await client.get(url, params=params, headers=user.headers)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
