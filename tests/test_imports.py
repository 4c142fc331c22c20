"""Statement imports through the API: every format, duplicates, look-alikes, review, undo."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import and_, func, select

from finance.db import Database
from finance.models import Account, Commodity, ImportLine, Posting, Transaction
from finance.money import from_minor
from tests.books import Books, add_member, counts, open_books
from tests.conftest import AuthedUser, UserFactory

# Bank files break OFX's length rules and carry private tags; the parser ignores both (its
# warning filters are set at import, which pytest resets for each test).
pytestmark = [
    pytest.mark.filterwarnings("ignore::ofxtools.Types.OFXTypeWarning"),
    pytest.mark.filterwarnings("ignore::ofxtools.models.base.OFXAggregateWarning"),
]
DATA = Path(__file__).parent / "data" / "imports"
CHECKING = "Assets:Bank:Checking"
US_MAPPING = {
    "date": "Posting Date",
    "date_format": "%m/%d/%Y",
    "debit": "Debit",
    "credit": "Credit",
    "payee": "Description",
    "reference": "Check Number",
    "thousands_separator": ",",
}
DE_MAPPING = {
    "date": "Buchungstag",
    "date_format": "%d.%m.%Y",
    "amount": "Betrag",
    "payee": "Auftraggeber/Empfänger",
    "narration": "Verwendungszweck",
    "currency_column": "Währung",
    "decimal_separator": ",",
    "thousands_separator": ".",
}


async def upload(
    books: Books,
    name: str,
    *,
    content: bytes | None = None,
    user: AuthedUser | None = None,
    path: str = "/imports",
    **form: Any,
) -> httpx.Response:
    """POST a file from tests/data/imports (or `content` under that name) with form fields."""
    body = content if content is not None else (DATA / name).read_bytes()
    fields = {
        key: json.dumps(value) if isinstance(value, dict) else str(value)
        for key, value in form.items()
        if value is not None
    }
    return await books.client.post(
        f"{books.url}{path}",
        files={"file": (name, body, "application/octet-stream")},
        data=fields,
        headers=(user or books.owner).headers,
    )


async def imported(books: Books, name: str, status: int = 201, **form: Any) -> dict[str, Any]:
    response = await upload(books, name, **form)
    assert response.status_code == status, response.text
    result: dict[str, Any] = response.json()
    return result


async def balances(database: Database, ledger_id: str) -> dict[tuple[str, str], Decimal]:
    """Every account's balance per commodity, summed in the database."""
    async with database.sessions() as session:
        rows = await session.execute(
            select(Account.name, Commodity.code, Commodity.precision, func.sum(Posting.amount))
            .join(
                Account,
                and_(Account.ledger_id == Posting.ledger_id, Account.id == Posting.account_id),
            )
            .join(
                Commodity,
                and_(
                    Commodity.ledger_id == Posting.ledger_id,
                    Commodity.id == Posting.commodity_id,
                ),
            )
            .where(Posting.ledger_id == uuid.UUID(ledger_id))
            .group_by(Account.name, Commodity.code, Commodity.precision)
        )
        return {
            (name, code): from_minor(int(total), precision)
            for name, code, precision, total in rows
            if total
        }


async def transaction_count(database: Database, ledger_id: str) -> int:
    async with database.sessions() as session:
        found = await session.scalar(
            select(func.count())
            .select_from(Transaction)
            .where(Transaction.ledger_id == uuid.UUID(ledger_id))
        )
        return found or 0


def outcomes(batch: dict[str, Any]) -> list[str]:
    return [line["outcome"] for line in batch["lines"]]


async def checking(client: httpx.AsyncClient, user: AuthedUser) -> Books:
    books = await open_books(client, user, CHECKING)
    return books


async def test_ofx_import_books_each_line_once_balanced(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await checking(client, user)
    batch = await imported(books, "checking-2024-01.ofx", account_id=books.id(CHECKING))
    assert batch["format"] == "ofx"
    assert batch["counts"] == {
        "lines": 7,
        "new": 7,
        "duplicate": 0,
        "flagged": 0,
        "rejected": 0,
        "skipped": 0,
    }
    first = batch["lines"][0]
    assert first["position"].startswith("STMTTRN 1 (line ")
    assert (first["date"], first["amount"], first["payee"]) == (
        "2024-01-03",
        "-54.20",
        "SHELL OIL 57442",
    )
    salary = next(line for line in batch["lines"] if line["payee"] == "ACME CORP PAYROLL")
    assert salary["date"] == "2024-01-15"
    totals = await balances(database, books.ledger_id)
    assert totals == {
        (CHECKING, "USD"): Decimal("521.63"),
        ("Expenses:Uncategorized", "USD"): Decimal("1978.37"),
        ("Income:Uncategorized", "USD"): Decimal("-2500.00"),
    }
    assert sum(totals.values()) == 0

    again = await imported(books, "checking-2024-01.ofx", account_id=books.id(CHECKING))
    assert again["counts"]["duplicate"] == 7
    assert again["counts"]["new"] == 0
    assert all("already imported" in line["reason"] for line in again["lines"])
    assert await transaction_count(database, books.ledger_id) == 7


async def test_overlapping_statement_adds_only_its_new_lines(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await checking(client, user)
    await imported(books, "checking-2024-01.ofx", account_id=books.id(CHECKING))
    batch = await imported(
        books, "checking-2024-01-15_2024-02-15.ofx", account_id=books.id(CHECKING)
    )
    assert outcomes(batch) == ["duplicate", "duplicate", "duplicate", "new", "new"]
    february = batch["lines"][4]
    # 23:00 in California is the next day in UTC; the statement's own date is kept.
    assert february["date"] == "2024-02-14"
    assert await transaction_count(database, books.ledger_id) == 9


async def test_identical_lines_in_one_statement_both_stay(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await open_books(client, user, "Assets:Bank:Giro")
    account = books.id("Assets:Bank:Giro")
    first = await imported(books, "bank-de-2024-01.csv", account_id=account, mapping=DE_MAPPING)
    assert first["counts"]["new"] == 4
    bakery = [line for line in first["lines"] if line["payee"] == "Bäckerei Müller"]
    assert [line["outcome"] for line in bakery] == ["new", "new"]
    assert first["options"]["encoding"]
    assert first["options"]["delimiter"] == ";"

    overlap = await imported(
        books, "bank-de-2024-01-15_2024-02-10.csv", account_id=account, mapping=DE_MAPPING
    )
    assert outcomes(overlap) == ["duplicate", "duplicate", "duplicate", "new", "new"]
    totals = await balances(database, books.ledger_id)
    assert totals[("Assets:Bank:Giro", "EUR")] == Decimal("1462.50")
    assert await transaction_count(database, books.ledger_id) == 6


async def test_csv_with_debit_and_credit_columns_and_a_saved_profile(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await checking(client, user)
    response = await client.post(
        f"{books.url}/csv-profiles",
        json={"name": "First Example Bank", "mapping": US_MAPPING},
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    profile = response.json()
    batch = await imported(
        books, "bank-us.csv", account_id=books.id(CHECKING), profile_id=profile["id"]
    )
    assert batch["counts"]["new"] == 6
    assert batch["options"]["profile_id"] == profile["id"]
    assert [line["amount"] for line in batch["lines"]] == [
        "-54.20",
        "-42.17",
        "-3.50",
        "-3.50",
        "2500.00",
        "-75.00",
    ]
    assert batch["lines"][1]["payee"] == "WHOLE FOODS MARKET #10234, AUSTIN"
    assert batch["lines"][5]["reference"] == "1042"
    totals = await balances(database, books.ledger_id)
    assert totals[(CHECKING, "USD")] == Decimal("2321.63")
    again = await imported(
        books, "bank-us.csv", account_id=books.id(CHECKING), profile_id=profile["id"]
    )
    assert again["counts"]["duplicate"] == 6


async def test_counter_account_is_the_payees_last_one(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await open_books(client, user, CHECKING, "Expenses:Car:Fuel", "Expenses:Rent")
    await books.create(
        "2023-11-20",
        (CHECKING, "-48.00", "USD"),
        ("Expenses:Car:Fuel", "48.00", "USD"),
        payee="SHELL OIL 57442",
    )
    await books.create(
        "2023-12-16",
        (CHECKING, "-1800.00", "USD"),
        ("Expenses:Rent", "1800.00", "USD"),
        payee="OAKWOOD PROPERTY MGMT",
    )
    batch = await imported(books, "checking-2024-01.ofx", account_id=books.id(CHECKING))
    by_payee = {line["payee"]: line["counter_account_id"] for line in batch["lines"]}
    assert by_payee["SHELL OIL 57442"] == books.id("Expenses:Car:Fuel")
    assert by_payee["OAKWOOD PROPERTY MGMT"] == books.id("Expenses:Rent")
    later = await imported(
        books, "checking-2024-01-15_2024-02-15.ofx", account_id=books.id(CHECKING)
    )
    shell = next(line for line in later["lines"] if line["payee"] == "SHELL OIL 57442")
    assert shell["outcome"] == "new"
    assert shell["counter_account_id"] == books.id("Expenses:Car:Fuel")
    totals = await balances(database, books.ledger_id)
    assert totals[("Expenses:Car:Fuel", "USD")] == Decimal("163.25")


async def test_configured_default_counter_accounts(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await checking(client, user)
    await imported(
        books,
        "checking-2024-01.ofx",
        account_id=books.id(CHECKING),
        expense_account="Expenses:To-Sort",
        income_account="Income:To-Sort",
    )
    totals = await balances(database, books.ledger_id)
    assert totals[("Expenses:To-Sort", "USD")] == Decimal("1978.37")
    assert totals[("Income:To-Sort", "USD")] == Decimal("-2500.00")
    response = await upload(
        books, "checking-2024-01.ofx", account_id=books.id(CHECKING), expense_account="Spending"
    )
    assert response.status_code == 422
    assert "Spending" in response.json()["detail"]


async def test_a_look_alike_of_a_hand_entered_transaction_is_flagged_for_review(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await open_books(client, user, CHECKING, "Expenses:Food:Groceries", "Expenses:Cafe")
    by_hand = await books.create(
        "2024-01-04",
        (CHECKING, "-42.17", "USD"),
        ("Expenses:Food:Groceries", "42.17", "USD"),
        payee="Whole Foods",
    )
    coffee = await books.create(
        "2024-01-06",
        (CHECKING, "-3.50", "USD"),
        ("Expenses:Cafe", "3.50", "USD"),
        payee="Blue Bottle",
    )
    batch = await imported(books, "checking-2024-01.ofx", account_id=books.id(CHECKING))
    assert batch["counts"]["flagged"] == 2
    assert batch["counts"]["new"] == 5
    assert batch["pending_review"] == 2
    flagged = [line for line in batch["lines"] if line["outcome"] == "flagged"]
    assert [line["candidate_id"] for line in flagged] == [by_hand["id"], coffee["id"]]
    assert "entered by hand" in flagged[0]["reason"]
    # One hand-entered coffee, two coffees on the statement: only one of them looks like it.
    coffees = [line for line in batch["lines"] if line["payee"] == "BLUE BOTTLE COFFEE"]
    assert sorted(line["outcome"] for line in coffees) == ["flagged", "new"]
    assert await transaction_count(database, books.ledger_id) == 7

    review = f"{books.url}/imports/{batch['id']}/lines"
    response = await client.post(
        f"{review}/{flagged[0]['seq']}/review", json={"action": "reject"}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "matched"
    assert response.json()["transaction_id"] == by_hand["id"]
    response = await client.post(
        f"{review}/{flagged[1]['seq']}/review", json={"action": "accept"}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "accepted"
    assert await transaction_count(database, books.ledger_id) == 8
    response = await client.post(
        f"{review}/{flagged[1]['seq']}/review", json={"action": "accept"}, headers=user.headers
    )
    assert response.status_code == 409

    again = await imported(books, "checking-2024-01.ofx", account_id=books.id(CHECKING))
    assert again["counts"]["duplicate"] == 7
    assert await transaction_count(database, books.ledger_id) == 8
    read = (await client.get(f"{books.url}/imports/{batch['id']}", headers=user.headers)).json()
    assert read["pending_review"] == 0


async def test_a_flagged_line_reimported_before_review_is_a_duplicate(
    client: httpx.AsyncClient, user: AuthedUser
) -> None:
    books = await open_books(client, user, CHECKING, "Expenses:Food:Groceries")
    await books.create(
        "2024-01-06",
        (CHECKING, "-42.17", "USD"),
        ("Expenses:Food:Groceries", "42.17", "USD"),
        payee="WHOLE FOODS MARKET",
    )
    first = await imported(books, "checking-2024-01.ofx", account_id=books.id(CHECKING))
    assert first["counts"]["flagged"] == 1
    second = await imported(books, "checking-2024-01.ofx", account_id=books.id(CHECKING))
    assert second["counts"] == {
        "lines": 7,
        "new": 0,
        "duplicate": 7,
        "flagged": 0,
        "rejected": 0,
        "skipped": 0,
    }


async def test_dry_run_answers_the_outcome_and_stores_nothing(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await checking(client, user)
    before = await counts(database)
    response = await upload(
        books, "checking-2024-01.ofx", account_id=books.id(CHECKING), dry_run="true"
    )
    assert response.status_code == 200, response.text
    batch = response.json()
    assert batch["id"] is None
    assert batch["dry_run"] is True
    assert batch["counts"]["new"] == 7
    assert await counts(database) == before
    listed = (await client.get(f"{books.url}/imports", headers=user.headers)).json()
    assert listed["items"] == []
    stored = await imported(books, "checking-2024-01.ofx", account_id=books.id(CHECKING))
    assert stored["counts"]["new"] == 7


async def test_undo_removes_the_batch_transactions_and_keeps_its_record(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await checking(client, user)
    batch = await imported(books, "checking-2024-01.ofx", account_id=books.id(CHECKING))
    url = f"{books.url}/imports/{batch['id']}"
    response = await client.delete(url, headers=user.headers)
    assert response.status_code == 200, response.text
    undone = response.json()
    assert undone["status"] == "undone"
    assert undone["undone_at"]
    assert await transaction_count(database, books.ledger_id) == 0
    assert (await client.delete(url, headers=user.headers)).status_code == 409
    read = (await client.get(url, headers=user.headers)).json()
    assert read["status"] == "undone"
    assert read["counts"]["new"] == 7
    again = await imported(books, "checking-2024-01.ofx", account_id=books.id(CHECKING))
    assert again["counts"]["new"] == 7
    assert await transaction_count(database, books.ledger_id) == 7


async def test_a_line_the_books_refuse_is_rejected_with_its_reason(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await open_books(client, user)
    await books.account(CHECKING, closed_on="2024-01-10")
    batch = await imported(books, "checking-2024-01.ofx", account_id=books.id(CHECKING))
    assert batch["counts"]["new"] == 4
    assert batch["counts"]["rejected"] == 3
    rejected = [line for line in batch["lines"] if line["outcome"] == "rejected"]
    assert all("closed on 2024-01-10" in line["reason"] for line in rejected)
    # A rejected line claims nothing: once the account is open again, it comes in.
    response = await client.patch(
        f"{books.url}/accounts/{books.id(CHECKING)}",
        json={"closed_on": None},
        headers=user.headers,
    )
    assert response.status_code == 200, response.text
    again = await imported(books, "checking-2024-01.ofx", account_id=books.id(CHECKING))
    assert (again["counts"]["new"], again["counts"]["duplicate"]) == (3, 4)
    assert await transaction_count(database, books.ledger_id) == 7


async def test_qif_bank_register_with_categories_splits_and_transfers(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await checking(client, user)
    batch = await imported(books, "checking.qif", account_id=books.id(CHECKING))
    assert batch["format"] == "qif"
    assert batch["counts"]["new"] == 6
    assert batch["lines"][0]["position"] == "record 1 (line 2)"
    totals = await balances(database, books.ledger_id)
    assert totals == {
        (CHECKING, "USD"): Decimal("458.44"),
        ("Expenses:Housing:Mortgage", "USD"): Decimal("1234.56"),
        ("Expenses:Food:Coffee", "USD"): Decimal("7.00"),
        ("Income:Salary", "USD"): Decimal("-2500.00"),
        ("Expenses:Utilities:Electric", "USD"): Decimal("200.00"),
        ("Expenses:Utilities:Water", "USD"): Decimal("100.00"),
        ("Assets:Savings", "USD"): Decimal("500.00"),
    }
    again = await imported(books, "checking.qif", account_id=books.id(CHECKING))
    assert again["counts"]["duplicate"] == 6


async def test_qif_credit_card_and_cash_registers(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await open_books(client, user, CHECKING, "Liabilities:Card", "Assets:Cash")
    card = await imported(books, "card.qif", account_id=books.id("Liabilities:Card"))
    assert card["counts"]["new"] == 2
    cash = await imported(
        books, "cash-dmy.qif", account_id=books.id("Assets:Cash"), date_order="dmy", currency="EUR"
    )
    assert [(line["date"], line["amount"]) for line in cash["lines"]] == [
        ("2024-02-03", "-12.50"),
        ("2024-02-04", "-1234.00"),
    ]
    assert cash["lines"][0]["payee"] == "Bäckerei Müller"
    totals = await balances(database, books.ledger_id)
    assert totals[("Liabilities:Card", "USD")] == Decimal("35.80")
    assert totals[(CHECKING, "USD")] == Decimal("-100.00")  # the card payment's transfer
    assert totals[("Expenses:Dining", "USD")] == Decimal("64.20")
    assert totals[("Expenses:Transport:Bike", "EUR")] == Decimal("1234.00")


async def test_camt053_statement(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await open_books(client, user, "Assets:Bank:Giro", base="EUR")
    batch = await imported(books, "statement-camt053.xml", account_id=books.id("Assets:Bank:Giro"))
    assert batch["format"] == "camt053"
    assert outcomes(batch) == ["new", "new", "new", "skipped"]
    assert batch["lines"][0]["position"] == "Stmt[1]/Ntry[1]"
    assert batch["lines"][0]["payee"] == "Hausverwaltung Schmidt GmbH"
    assert batch["lines"][3]["reason"] == "entry status PDNG"
    totals = await balances(database, books.ledger_id)
    assert totals[("Assets:Bank:Giro", "EUR")] == Decimal("2326.10")


async def test_mt940_statement(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await open_books(client, user, "Assets:Bank:Giro", base="EUR")
    batch = await imported(books, "statement.sta", account_id=books.id("Assets:Bank:Giro"))
    assert batch["format"] == "mt940"
    assert batch["counts"]["new"] == 3
    assert batch["lines"][0]["position"] == ":61: 1 (line 5)"
    assert batch["lines"][0]["reference"] == "2024010200012345"
    totals = await balances(database, books.ledger_id)
    assert totals[("Assets:Bank:Giro", "EUR")] == Decimal("2326.10")
    again = await imported(books, "statement.sta", account_id=books.id("Assets:Bank:Giro"))
    assert again["counts"]["duplicate"] == 3


async def test_qfx_credit_card_statement(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await open_books(client, user, "Liabilities:Visa")
    batch = await imported(books, "card-2024-02.qfx", account_id=books.id("Liabilities:Visa"))
    assert batch["counts"]["new"] == 3
    assert batch["lines"][0]["date"] == "2024-02-03"
    totals = await balances(database, books.ledger_id)
    assert totals[("Liabilities:Visa", "USD")] == Decimal("-2.39")


async def test_statements_go_into_asset_or_liability_accounts(
    client: httpx.AsyncClient, user: AuthedUser
) -> None:
    books = await open_books(client, user, "Expenses:Food")
    response = await upload(books, "checking-2024-01.ofx", account_id=books.id("Expenses:Food"))
    assert response.status_code == 422
    response = await upload(books, "checking-2024-01.ofx")
    assert response.status_code == 422
    assert "account_id" in response.json()["detail"]
    response = await upload(books, "checking-2024-01.ofx", account_id=str(uuid.uuid4()))
    assert response.status_code == 404


async def test_a_csv_file_needs_a_mapping(client: httpx.AsyncClient, user: AuthedUser) -> None:
    books = await checking(client, user)
    response = await upload(books, "bank-us.csv", account_id=books.id(CHECKING))
    assert response.status_code == 422
    assert "profile_id" in response.json()["detail"]
    response = await upload(
        books, "bank-us.csv", account_id=books.id(CHECKING), mapping={"date": "Posting Date"}
    )
    assert response.status_code == 422
    assert "amount" in response.json()["detail"]
    response = await upload(
        books, "bank-us.csv", account_id=books.id(CHECKING), profile_id=str(uuid.uuid4())
    )
    assert response.status_code == 404


async def test_roles_and_other_ledgers(
    client: httpx.AsyncClient, user: AuthedUser, make_user: UserFactory
) -> None:
    books = await checking(client, user)
    batch = await imported(books, "checking-2024-01.ofx", account_id=books.id(CHECKING))
    viewer = await make_user()
    await add_member(books, viewer, "viewer")
    response = await upload(books, "checking.qif", account_id=books.id(CHECKING), user=viewer)
    assert response.status_code == 403
    url = f"{books.url}/imports/{batch['id']}"
    assert (await client.get(url, headers=viewer.headers)).status_code == 200
    assert (await client.delete(url, headers=viewer.headers)).status_code == 403
    stranger = await make_user()
    for response in (
        await client.get(url, headers=stranger.headers),
        await client.delete(url, headers=stranger.headers),
        await client.get(f"{books.url}/imports", headers=stranger.headers),
        await upload(books, "checking.qif", account_id=books.id(CHECKING), user=stranger),
    ):
        assert response.status_code == 404
    # Another ledger's batch id answers 404 in this one.
    other = await open_books(client, stranger, CHECKING)
    other_batch = await imported(other, "checking-2024-01.ofx", account_id=other.id(CHECKING))
    response = await client.get(f"{books.url}/imports/{other_batch['id']}", headers=user.headers)
    assert response.status_code == 404
    response = await upload(books, "checking-2024-01.ofx", account_id=other.id(CHECKING))
    assert response.status_code == 404


async def test_listing_batches_and_their_lines(client: httpx.AsyncClient, user: AuthedUser) -> None:
    books = await checking(client, user)
    first = await imported(books, "checking-2024-01.ofx", account_id=books.id(CHECKING))
    second = await imported(
        books, "checking-2024-01-15_2024-02-15.ofx", account_id=books.id(CHECKING)
    )
    page = (await client.get(f"{books.url}/imports?limit=1", headers=user.headers)).json()
    assert [item["id"] for item in page["items"]] == [second["id"]]
    page = (
        await client.get(
            f"{books.url}/imports",
            params={"limit": 1, "cursor": page["next_cursor"]},
            headers=user.headers,
        )
    ).json()
    assert [item["id"] for item in page["items"]] == [first["id"]]
    assert page["next_cursor"] is None

    lines_url = f"{books.url}/imports/{second['id']}/lines"
    page = (await client.get(lines_url, params={"limit": 2}, headers=user.headers)).json()
    assert [line["seq"] for line in page["items"]] == [1, 2]
    page = (
        await client.get(
            lines_url, params={"limit": 10, "cursor": page["next_cursor"]}, headers=user.headers
        )
    ).json()
    assert [line["seq"] for line in page["items"]] == [3, 4, 5]
    new = (await client.get(lines_url, params={"outcome": "new"}, headers=user.headers)).json()
    assert [line["seq"] for line in new["items"]] == [4, 5]


async def test_csv_profiles_crud_and_preview(client: httpx.AsyncClient, user: AuthedUser) -> None:
    books = await checking(client, user)
    url = f"{books.url}/csv-profiles"
    created = await client.post(
        url, json={"name": "Sparkasse", "mapping": DE_MAPPING}, headers=user.headers
    )
    assert created.status_code == 201, created.text
    profile = created.json()
    duplicate = await client.post(
        url, json={"name": "Sparkasse", "mapping": DE_MAPPING}, headers=user.headers
    )
    assert duplicate.status_code == 409
    bad = await client.post(
        url,
        json={"name": "Bad", "mapping": {**DE_MAPPING, "thousands_separator": ","}},
        headers=user.headers,
    )
    assert bad.status_code == 422
    renamed = await client.put(
        f"{url}/{profile['id']}",
        json={"name": "Sparkasse Giro", "mapping": DE_MAPPING},
        headers=user.headers,
    )
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Sparkasse Giro"
    listed = (await client.get(url, headers=user.headers)).json()
    assert [item["name"] for item in listed] == ["Sparkasse Giro"]

    response = await upload(books, "bank-de-2024-01.csv", path="/imports/csv-preview")
    assert response.status_code == 200, response.text
    preview = response.json()
    assert preview["delimiter"] == ";"
    assert preview["has_header"] is True
    assert preview["header"][:3] == ["Buchungstag", "Valuta", "Auftraggeber/Empfänger"]
    assert preview["rows"][0][2] == "Hausverwaltung Schmidt GmbH"
    assert preview["suggested_mapping"]["date"] == "Buchungstag"
    assert preview["lines"] == []
    response = await upload(
        books, "bank-de-2024-01.csv", path="/imports/csv-preview", profile_id=profile["id"]
    )
    preview = response.json()
    assert preview["error"] is None
    assert [line["amount"] for line in preview["lines"]] == [
        "-850.00",
        "-12.50",
        "-12.50",
        "3200.00",
    ]
    response = await upload(
        books,
        "bank-de-2024-01.csv",
        path="/imports/csv-preview",
        mapping={**DE_MAPPING, "date_format": "%Y-%m-%d"},
    )
    assert "does not match the format" in response.json()["error"]

    deleted = await client.delete(f"{url}/{profile['id']}", headers=user.headers)
    assert deleted.status_code == 204
    assert (await client.get(f"{url}/{profile['id']}", headers=user.headers)).status_code == 404


async def test_formats_are_detected(client: httpx.AsyncClient, user: AuthedUser) -> None:
    books = await checking(client, user)
    expected = {
        "checking-2024-01.ofx": "ofx",
        "card-2024-02.qfx": "ofx",
        "checking.qif": "qif",
        "statement-camt053.xml": "camt053",
        "statement.sta": "mt940",
    }
    for name, found in expected.items():
        response = await upload(
            books, name, account_id=books.id(CHECKING), dry_run="true", currency="USD"
        )
        assert response.status_code == 200, response.text
        assert response.json()["format"] == found


async def test_identities_are_scoped_to_the_account(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await open_books(client, user, CHECKING, "Assets:Bank:Other")
    await imported(books, "checking-2024-01.ofx", account_id=books.id(CHECKING))
    other = await imported(books, "checking-2024-01.ofx", account_id=books.id("Assets:Bank:Other"))
    assert other["counts"]["new"] == 7
    async with database.sessions() as session:
        claims = await session.scalar(
            select(func.count()).where(
                ImportLine.ledger_id == uuid.UUID(books.ledger_id),
                ImportLine.identity.is_not(None),
            )
        )
    assert claims == 14
