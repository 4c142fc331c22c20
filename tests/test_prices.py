"""Prices: exact rates per commodity, quote commodity and date; one each; filtered pages."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from finance.db import Database
from finance.models import AuditEntry
from tests.books import Books, add_member, counts, open_books
from tests.conftest import AuthedUser, UserFactory, assert_problem


@pytest.fixture
async def books(client: httpx.AsyncClient, user: AuthedUser) -> Books:
    books = await open_books(client, user)
    await books.commodity("ITOT", 0)
    return books


async def _price(
    books: Books, date: str, commodity: str, quote: str, amount: Any, user: AuthedUser | None = None
) -> httpx.Response:
    return await books.client.post(
        f"{books.url}/prices",
        json={"date": date, "commodity": commodity, "quote_commodity": quote, "amount": amount},
        headers=(user or books.owner).headers,
    )


async def test_a_price_is_kept_exactly_and_read_back(books: Books) -> None:
    response = await _price(books, "2024-03-01", "ITOT", "USD", "98.3800000001")
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["Location"] == f"{books.url}/prices/{created['id']}"
    assert (created["amount"], created["commodity"], created["quote_commodity"]) == (
        "98.3800000001",
        "ITOT",
        "USD",
    )
    assert await books.get(f"/prices/{created['id']}") == created
    rate = await _price(books, "2024-03-01", "EUR", "USD", "1.08765432109876543210")
    assert rate.json()["amount"] == "1.08765432109876543210"


async def test_a_second_price_for_the_same_day_is_a_conflict(
    books: Books, database: Database
) -> None:
    first = (await _price(books, "2024-03-01", "ITOT", "USD", "98.38")).json()
    before = await counts(database)
    body = assert_problem(await _price(books, "2024-03-01", "ITOT", "USD", "99"), 409)
    assert body["existing_id"] == first["id"]
    assert await counts(database) == before
    # Another day, or another quote commodity, is another price.
    for date, quote in (("2024-03-02", "USD"), ("2024-03-01", "EUR")):
        assert (await _price(books, date, "ITOT", quote, "90")).status_code == 201


async def test_listing_filters_and_pages_newest_first(books: Books) -> None:
    for day in range(1, 8):
        await _price(books, f"2024-03-0{day}", "ITOT", "USD", f"9{day}")
        await _price(books, f"2024-03-0{day}", "EUR", "USD", f"1.0{day}")
    seen: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 3, "commodity": "ITOT"}
    while True:
        page = await books.get("/prices", **params)
        seen += page["items"]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert [p["amount"] for p in seen] == ["97", "96", "95", "94", "93", "92", "91"]
    ranged = await books.get("/prices", quote="USD", **{"from": "2024-03-02", "to": "2024-03-03"})
    assert sorted(p["amount"] for p in ranged["items"]) == ["1.02", "1.03", "92", "93"]
    assert (await books.get("/prices", commodity="BTC"))["items"] == []
    assert len((await books.get("/prices"))["items"]) == 14


async def test_delete_is_audited_and_other_ledgers_see_404(
    books: Books, database: Database, make_user: UserFactory
) -> None:
    created = (await _price(books, "2024-03-01", "ITOT", "USD", "98.38")).json()
    other = await make_user()
    theirs = await open_books(books.client, other)
    for method in ("GET", "DELETE"):
        response = await books.client.request(
            method, f"{theirs.url}/prices/{created['id']}", headers=other.headers
        )
        assert_problem(response, 404)
    url = f"{books.url}/prices/{created['id']}"
    assert (await books.client.delete(url, headers=books.owner.headers)).status_code == 204
    assert_problem(await books.client.get(url, headers=books.owner.headers), 404)
    async with database.sessions() as session:
        entries = (
            await session.scalars(select(AuditEntry).where(AuditEntry.object_type == "price"))
        ).all()
    assert sorted((e.action, e.before, e.after) for e in entries) == [
        ("create", None, created),
        ("delete", created, None),
    ]


async def test_bad_prices_write_nothing(
    books: Books, database: Database, make_user: UserFactory
) -> None:
    viewer = await make_user()
    await add_member(books, viewer, "viewer")
    before = await counts(database)
    for args, status in (
        (("2024-03-01", "ITOT", "USD", 98.38), 422),
        (("2024-03-01", "ITOT", "USD", "0"), 422),
        (("2024-03-01", "ITOT", "USD", "-1"), 422),
        (("2024-03-01", "ITOT", "ITOT", "1"), 422),
        (("2024-03-01", "NOPE", "USD", "1"), 422),
        (("2024-03-01", "ITOT", "NOPE", "1"), 422),
        (("2201-01-01", "ITOT", "USD", "1"), 422),
    ):
        assert_problem(await _price(books, *args), status)
    assert_problem(await _price(books, "2024-03-01", "ITOT", "USD", "1", viewer), 403)
    response = await books.client.post(
        f"{books.url}/prices",
        json={
            "date": "2024-03-01",
            "commodity": "ITOT",
            "quote_commodity": "USD",
            "amount": "1",
            "ledger_id": books.ledger_id,
        },
        headers=books.owner.headers,
    )
    assert_problem(response, 422)
    assert await counts(database) == before
