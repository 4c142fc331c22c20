"""Listing transactions: every filter, newest first, keyset pages, postings in one query."""

from __future__ import annotations

import uuid
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from finance.db import Database
from finance.money import from_minor
from finance.schemas import Page, encode_cursor
from finance.transactions.balancing import show, sum_by_commodity, weigh
from finance.transactions.schemas import TransactionOut
from finance.transactions.service import _residual, _Stored
from tests.books import Books, open_books
from tests.conftest import AuthedUser, assert_problem, statements

CHECKING = "Assets:Bank:Checking"
SAVINGS = "Assets:Bank:Savings"
BANK = "Assets:Bank"
ODD = "Assets:Bank_%"
LOOKALIKE = "Assets:BankX"
FOOD = "Expenses:Food"
SALARY = "Income:Salary"
PRECISIONS = {"USD": 2, "JPY": 0, "FUND": 3, "EUR": 2}


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


async def _ids_page_by_page(books: Books, **params: Any) -> list[str]:
    """The ids of every page of a listing, following its cursors to the end."""
    seen: list[str] = []
    while True:
        page = await books.get("/transactions", **params)
        seen += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            return seen
        params["cursor"] = page["next_cursor"]


async def test_keyset_pages_cover_everything_once(books: Books) -> None:
    everything = [item["id"] for item in (await books.get("/transactions"))["items"]]
    seen = await _ids_page_by_page(books, limit=2)
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


async def test_a_page_costs_the_same_few_queries_whatever_its_size(
    books: Books, database: Database
) -> None:
    """And its amounts and their commodities come from one statement: one snapshot, so a
    precision change can never be applied to amounts read before it."""
    with statements(database) as small:
        await books.get("/transactions", limit=1)
    for n in range(30):
        await books.create("2024-04-01", (FOOD, f"{n + 1}.00", "USD"), (CHECKING, None, None))
    with statements(database) as large:
        page = await books.get("/transactions", limit=30)
    assert len(page["items"]) == 30
    assert len(large) == len(small)
    reads = [s for s in large if "FROM" in s and "postings" in s]
    assert len(reads) == 1
    assert "commodities" in reads[0]


async def test_items_are_exactly_the_documented_model_and_match_reading_one(
    books: Books,
) -> None:
    """The listing and GET one build their JSON themselves: it must be what `TransactionOut`
    documents (no field missing or extra, the same formats) and what a create answered."""
    await books.commodity("FUND", 3)
    await books.account("Assets:Broker:Fund")
    created = [
        await books.create(
            "2024-05-02",
            (
                "Assets:Broker:Fund",
                "2.100",
                "FUND",
                {"cost": {"amount": "10.050", "commodity": "USD"}, "memo": "lot 1"},
            ),
            (CHECKING, "-21.10", "USD"),
            payee="Broker",
            narration="Buy",
            tags=["invest"],
            links=["order-7"],
            meta={"source": "manual", "count": 2, "ok": True, "none": None},
            status="pending",
            external_id="broker-1",
        ),
        await books.create(
            "2024-05-01",
            (
                "Assets:Broker:Fund",
                "10.125",
                "FUND",
                {"price": {"amount": "12.345", "commodity": "USD"}},
            ),
            (CHECKING, "-124.99", "USD"),
        ),
    ]
    assert [item["residual"] for item in created] == [{"USD": "0.005"}, {"USD": "0.003125"}]
    response = await books.client.get(
        f"{books.url}/transactions",
        params={"from": "2024-05-01", "limit": 1},
        headers=books.owner.headers,
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    first = response.json()
    assert (
        Page[TransactionOut].model_validate_json(response.content).model_dump(mode="json") == first
    )
    rest = await books.get(
        "/transactions", **{"from": "2024-05-01", "cursor": first["next_cursor"]}
    )
    assert first["items"] + rest["items"] == created
    for item in created:
        one = await books.client.get(
            f"{books.url}/transactions/{item['id']}", headers=books.owner.headers
        )
        assert one.headers["ETag"] == '"1"'
        assert TransactionOut.model_validate_json(one.content).model_dump(mode="json") == item
        assert one.json() == item


async def test_pages_of_an_account_filter_cover_everything_once(books: Books) -> None:
    everything = [
        item["id"]
        for item in (await books.get("/transactions", account_id=books.id(BANK)))["items"]
    ]
    seen = await _ids_page_by_page(books, account_id=books.id(BANK), limit=1)
    assert seen == everything
    assert len(seen) == 4


async def test_an_unknown_account_is_404_before_any_other_problem(books: Books) -> None:
    """The account is looked up only when the answer would otherwise be empty or a 422: the
    answer is the same as if it were looked up first."""
    unknown = "00000000-0000-4000-8000-000000000000"
    for params in (
        {},
        {"min_amount": "1"},  # 422 for a known account: needs commodity
        {"commodity": "JPY"},  # an unused commodity: nothing can match
        {"commodity": "USD", "min_amount": "0.001"},  # 422: too many decimals
        {"cursor": encode_cursor([7])},  # 422: a cursor of another listing
        {"include_descendants": "false"},
    ):
        response = await books.client.get(
            f"{books.url}/transactions",
            params={"account_id": unknown, **params},
            headers=books.owner.headers,
        )
        assert_problem(response, 404)
    # Another ledger's account is unknown here too.
    other = await open_books(books.client, books.owner, CHECKING)
    response = await books.client.get(
        f"{books.url}/transactions",
        params={"account_id": other.id(CHECKING)},
        headers=books.owner.headers,
    )
    assert_problem(response, 404)
    known = await books.client.get(
        f"{books.url}/transactions",
        params={"account_id": books.id(SAVINGS), "min_amount": "1"},
        headers=books.owner.headers,
    )
    assert_problem(known, 422)
    assert await _payees(books, account_id=books.id(SALARY), payee="nobody") == []


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=-(10**12), max_value=10**12),
            st.sampled_from(["USD", "JPY", "FUND"]),  # a rate weighs them in EUR
            st.none() | st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(1000), places=5),
            st.booleans(),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_the_residual_is_the_exact_sum_of_the_weights(
    legs: list[tuple[int, str, Decimal | None, bool]],
) -> None:
    """Summed as integers where a posting weighs its own units, it is the same as summing
    every weight (units x rate) as an exact decimal."""
    commodities = {code: SimpleNamespace(code=code, precision=p) for code, p in PRECISIONS.items()}
    postings = []
    expected: list[tuple[str, Decimal]] = []
    for amount, code, rate, is_cost in legs:
        weight_code = code if rate is None else "EUR"
        postings.append(
            _Stored(
                id=uuid.uuid4(),
                account_id=uuid.uuid4(),
                commodity_id=code,
                amount=amount,
                cost=rate if is_cost else None,
                cost_commodity_id=weight_code if rate is not None and is_cost else None,
                price=None if is_cost else rate,
                price_commodity_id=weight_code if rate is not None and not is_cost else None,
                weight=0,  # not read: the residual is recomputed from the units
                weight_commodity_id=weight_code,
                memo=None,
            )
        )
        expected.append((weight_code, weigh(from_minor(amount, PRECISIONS[code]), rate)))
    sums = sum_by_commodity(expected)
    assert _residual(postings, commodities) == {
        code: show(total, PRECISIONS[code]) for code, total in sorted(sums.items()) if total != 0
    }
