"""Bad input to transactions: each gets a clear 4xx problem and writes nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from finance.db import Database
from tests.books import Books, counts, open_books
from tests.conftest import AuthedUser, UserFactory, assert_problem

CHECKING = "Assets:Bank:Checking"
FOOD = "Expenses:Food"


@pytest.fixture
async def books(client: httpx.AsyncClient, user: AuthedUser) -> Books:
    books = await open_books(client, user, CHECKING, FOOD)
    await books.account("Assets:Old", opened_on="2020-01-01", closed_on="2023-12-31")
    await books.account("Assets:Dollars", allowed_commodities=["USD"])
    # USD exists already, so a refused request that names it creates nothing.
    await books.create("2024-01-01", (FOOD, "1.00", "USD"), (CHECKING, "-1.00", "USD"))
    return books


@pytest.fixture
async def unchanged(database: Database, books: Books) -> AsyncIterator[None]:
    before = await counts(database)
    yield
    assert await counts(database) == before


def _leg(
    books: Books, name: str, amount: Any, commodity: str = "USD", **extra: Any
) -> dict[str, Any]:
    return {"account_id": books.id(name), "amount": amount, "commodity": commodity, **extra}


async def _refused(books: Books, body: dict[str, Any], status: int = 422) -> dict[str, Any]:
    response = await books.client.post(
        f"{books.url}/transactions", json=body, headers=books.owner.headers
    )
    return assert_problem(response, status)


@pytest.mark.usefixtures("unchanged")
async def test_an_unbalanced_transaction(books: Books) -> None:
    body = await _refused(
        books, books.body("2024-02-01", (FOOD, "10.00", "USD"), (CHECKING, "-9.99", "USD"))
    )
    assert body["imbalance"] == [
        {"commodity": "USD", "amount": "0.01", "tolerance": "0.00", "postings": [0, 1]}
    ]


async def test_an_unknown_account_and_another_ledgers_account_read_the_same(
    books: Books, make_user: UserFactory, database: Database
) -> None:
    other = await open_books(books.client, await make_user(), "Assets:Theirs")
    before = await counts(database)
    unknown = "00000000-0000-4000-8000-000000000000"
    answers = []
    for account_id in (unknown, other.id("Assets:Theirs")):
        body = books.body("2024-02-01", (FOOD, "10.00", "USD"), (CHECKING, None, None))
        body["postings"][1]["account_id"] = account_id
        answers.append(await _refused(books, body))
    assert (
        answers[0]["detail"]
        == answers[1]["detail"]
        == ("postings[1].account_id: no such account in this ledger")
    )
    assert answers[0]["errors"][0]["loc"] == ["body", "postings", "1", "account_id"]
    assert await counts(database) == before


@pytest.mark.usefixtures("unchanged")
async def test_an_unknown_commodity_even_in_a_cost_or_price(books: Books) -> None:
    body = await _refused(
        books, books.body("2024-02-01", (FOOD, "10", "NOPE"), (CHECKING, "-10", "NOPE"))
    )
    assert body["detail"].startswith("postings[0].commodity: unknown commodity 'NOPE'")
    for kind in ("cost", "price"):
        body = await _refused(
            books,
            books.body(
                "2024-02-01",
                (FOOD, "1.00", "USD", {kind: {"amount": "2", "commodity": "NOPE"}}),
                (CHECKING, None, None),
            ),
        )
        assert body["detail"].startswith(f"postings[0].{kind}: unknown commodity 'NOPE'")


@pytest.mark.usefixtures("unchanged")
async def test_too_many_decimals(books: Books) -> None:
    for amount, commodity in (("1.234", "USD"), ("1.5", "JPY"), ("0.0001", "BHD")):
        body = await _refused(
            books, books.body("2024-02-01", (FOOD, amount, commodity), (CHECKING, None, None))
        )
        assert body["detail"].startswith("postings[0].amount: amount")
        assert "decimal places" in body["detail"]
        assert commodity in body["detail"]


@pytest.mark.usefixtures("unchanged")
async def test_a_posting_on_a_closed_or_not_yet_open_account_or_in_a_refused_commodity(
    books: Books,
) -> None:
    for date, name, commodity, reason in (
        ("2024-01-01", "Assets:Old", "USD", "was closed on 2023-12-31"),
        ("2019-12-31", "Assets:Old", "USD", "opens on 2020-01-01"),
        ("2024-01-01", "Assets:Dollars", "EUR", "takes only USD, not EUR"),
    ):
        body = await _refused(
            books, books.body(date, (name, "5.00", commodity), (FOOD, None, None))
        )
        assert body["detail"].startswith("postings[0].account_id: Account")
        assert reason in body["detail"]


async def test_the_closing_day_itself_is_still_open(books: Books) -> None:
    await books.create("2023-12-31", ("Assets:Old", "5.00", "USD"), (FOOD, None, None))


@pytest.mark.usefixtures("unchanged")
async def test_a_json_number_as_an_amount(books: Books) -> None:
    for amount in (12.5, 12, 1e3, True):
        body = books.body("2024-02-01", (FOOD, "1.00", "USD"), (CHECKING, None, None))
        body["postings"][0]["amount"] = amount
        problem = await _refused(books, body)
        assert problem["errors"][0]["loc"] == ["body", "postings", "0", "amount"]
        assert "must be a decimal string" in problem["errors"][0]["msg"]


@pytest.mark.usefixtures("unchanged")
async def test_a_lone_surrogate_escaped_in_the_json(books: Books) -> None:
    """Text that has no UTF-8 form (`"\\ud800"` is valid JSON) is refused before the driver
    could fail to encode it."""
    body = books.body("2024-02-01", (FOOD, "1.00", "USD"), (CHECKING, None, None))
    content = json.dumps({**body, "payee": "\ud800"}, ensure_ascii=True)
    assert "\\ud800" in content
    response = await books.client.post(
        f"{books.url}/transactions",
        content=content,
        headers={**books.owner.headers, "content-type": "application/json"},
    )
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["loc"] == ["body", "payee"]


@pytest.mark.usefixtures("unchanged")
async def test_a_date_out_of_range(books: Books) -> None:
    for date in ("1899-12-31", "2201-01-01", "0001-01-01", "2024-02-30"):
        body = books.body(date, (FOOD, "1.00", "USD"), (CHECKING, None, None))
        assert (await _refused(books, body))["errors"][0]["loc"] == ["body", "date"]


@pytest.mark.usefixtures("unchanged")
async def test_ten_thousand_postings_and_a_single_one(books: Books) -> None:
    legs = [_leg(books, FOOD, "0.01"), _leg(books, CHECKING, "-0.01")] * 5000
    problem = await _refused(books, {"date": "2024-02-01", "postings": legs})
    assert problem["errors"][0]["loc"] == ["body", "postings"]
    assert "at most 1000" in problem["errors"][0]["msg"]
    problem = await _refused(books, {"date": "2024-02-01", "postings": legs[:1]})
    assert "at least 2" in problem["errors"][0]["msg"]


@pytest.mark.usefixtures("unchanged")
async def test_unknown_or_read_only_fields(books: Books) -> None:
    for field in ("id", "ledger_id", "created_by", "version", "created_at", "residual", "what"):
        body = books.body("2024-02-01", (FOOD, "1.00", "USD"), (CHECKING, None, None))
        body[field] = books.ledger_id
        problem = await _refused(books, body)
        assert problem["errors"][0]["loc"] == ["body", field]
        assert problem["errors"][0]["type"] == "extra_forbidden"
    for field in ("id", "weight", "transaction_id"):
        extra = {field: books.ledger_id}
        body = books.body("2024-02-01", (FOOD, "1.00", "USD", extra), (CHECKING, None, None))
        problem = await _refused(books, body)
        assert problem["errors"][0]["loc"] == ["body", "postings", "0", field]


@pytest.mark.usefixtures("unchanged")
async def test_bad_costs_and_prices(books: Books) -> None:
    for extra, message in (
        ({"cost": {"amount": "0", "commodity": "EUR"}}, "greater than zero"),
        ({"price": {"amount": "-1.5", "commodity": "EUR"}}, "greater than zero"),
        ({"price": {"amount": "1." + "1" * 21, "commodity": "EUR"}}, "at most 20 decimal"),
        ({"price": {"amount": 1.5, "commodity": "EUR"}}, "must be a decimal string"),
        ({"price": {"amount": "2", "commodity": "USD"}}, "another commodity than the units"),
        ({"cost": {"amount": "2", "commodity": "USD"}}, "another commodity than the units"),
    ):
        body = books.body("2024-02-01", (FOOD, "1.00", "USD", extra), (CHECKING, None, None))
        assert message in (await _refused(books, body))["detail"]


@pytest.mark.usefixtures("unchanged")
async def test_bad_transaction_fields(books: Books) -> None:
    for fields in (
        {"meta": {"rate": 1.5}},
        {"meta": {f"k{n}": n for n in range(33)}},
        {"meta": {"nested": {"a": 1}}},
        {"meta": {"k": "nul\x00"}},
        {"tags": ["two words"]},
        {"tags": [""]},
        {"tags": ["a\x00"]},
        {"status": "void"},
        {"payee": "x" * 501},
        {"payee": "nul\x00byte"},
        {"external_id": ""},
    ):
        body = books.body("2024-02-01", (FOOD, "1.00", "USD"), (CHECKING, None, None), **fields)
        problem = await _refused(books, body)
        assert problem["errors"][0]["loc"][:2] == ["body", next(iter(fields))], fields


@pytest.mark.usefixtures("unchanged")
async def test_an_amount_without_its_commodity(books: Books) -> None:
    body = books.body("2024-02-01", (FOOD, "1.00", None), (CHECKING, None, None))
    problem = await _refused(books, body)
    assert problem["detail"] == "postings[0].commodity: an amount needs its commodity"


@pytest.mark.usefixtures("unchanged")
async def test_a_page_size_of_a_million_and_other_bad_queries(books: Books) -> None:
    for path in ("/transactions", "/prices", f"/accounts/{books.id(CHECKING)}/register"):
        for params in ({"limit": 1_000_000}, {"limit": 0}, {"cursor": "not-a-cursor"}):
            response = await books.client.get(
                books.url + path, params=params, headers=books.owner.headers
            )
            assert_problem(response, 422)
    # PostgreSQL cannot compare text with a NUL in it: refused before it gets there.
    for path, name in (
        ("/transactions", "payee"),
        ("/transactions", "q"),
        ("/transactions", "tag"),
        ("/transactions", "commodity"),
        ("/prices", "commodity"),
        ("/prices", "quote"),
    ):
        response = await books.client.get(
            books.url + path, params={name: "a\x00b"}, headers=books.owner.headers
        )
        assert_problem(response, 422)
