"""Acceptance of the ledger (issue #3), through the HTTP API only, on both databases.

Two years of a household's books: a salary, the rent, a credit card with its purchases and its
monthly payments, euros bought at a price, shares bought at a cost and partly sold later with
the realized gain booked, and balance assertions. Every balance, roll-up, per-type total,
assertion, register and yearly net income the API answers is compared with sums this test
keeps itself, in `Decimal`. A viewer reads everything and is refused every write (403); a
stranger sees nothing (404 everywhere, and the ledger is not in their list).
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI

from tests.books import API, Books, open_books
from tests.conftest import AuthedUser, UserFactory, assert_problem

BANK = "Assets:Bank"
CHECKING = "Assets:Bank:Checking"
SAVINGS = "Assets:Bank:Savings"
EURO = "Assets:Bank:Euro"
BROKER = "Assets:Broker"
CARD = "Liabilities:Card"
OPENING = "Equity:Opening"
SALARY = "Income:Salary"
GAINS = "Income:Gains"
RENT = "Expenses:Home:Rent"
FOOD = "Expenses:Food"
FEES = "Expenses:Bank:Fees"
ACCOUNTS = (BANK, CHECKING, SAVINGS, EURO, BROKER, CARD, OPENING, SALARY, GAINS, RENT, FOOD, FEES)
TYPES = {
    "Assets": "asset",
    "Liabilities": "liability",
    "Equity": "equity",
    "Income": "income",
    "Expenses": "expense",
}

Leg = tuple[str, Decimal, str, dict[str, Any]]  # account, units, commodity, cost or price


def leg(account: str, amount: str, commodity: str = "USD", **rate: Any) -> Leg:
    return account, Decimal(amount), commodity, rate


@dataclass
class Model:
    """What the books must say, kept independently: every posting's units, by day."""

    postings: list[tuple[dt.date, str, str, Decimal]] = field(default_factory=list)
    transactions: int = 0

    def own(self, as_of: dt.date, *, before: bool = False) -> dict[str, dict[str, Decimal]]:
        sums: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        for day, account, commodity, amount in self.postings:
            if day < as_of or (day == as_of and not before):
                sums[account][commodity] += amount
        return sums

    def subtree(self, account: str, as_of: dt.date, *, before: bool = False) -> dict[str, Decimal]:
        total: dict[str, Decimal] = defaultdict(Decimal)
        for name, sums in self.own(as_of, before=before).items():
            if name == account or name.startswith(account + ":"):
                for commodity, amount in sums.items():
                    total[commodity] += amount
        return nonzero(total)


def nonzero(sums: dict[str, Decimal]) -> dict[str, Decimal]:
    return {commodity: amount for commodity, amount in sums.items() if amount}


def amounts(items: Iterable[dict[str, str]]) -> dict[str, Decimal]:
    """An API list of `{amount, commodity}` as exact numbers."""
    return {item["commodity"]: Decimal(item["amount"]) for item in items}


def parents(name: str) -> list[str]:
    parts = name.split(":")
    return [":".join(parts[:depth]) for depth in range(1, len(parts) + 1)]


async def book(books: Books, model: Model, day: dt.date, *legs: Leg, **fields: Any) -> str:
    """Post through the API and into the model; the API must balance it without a residual."""
    body = {
        "date": day.isoformat(),
        **fields,
        "postings": [
            {"account_id": books.id(account), "amount": str(units), "commodity": code, **rate}
            for account, units, code, rate in legs
        ],
    }
    response = await books.client.post(
        f"{books.url}/transactions", json=body, headers=books.owner.headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["residual"] == {}
    model.postings.extend((day, account, code, units) for account, units, code, _ in legs)
    model.transactions += 1
    created: str = response.json()["id"]
    return created


async def two_years(books: Books, model: Model) -> None:
    """About 300 transactions from January 2023 to December 2024."""
    draw = random.Random(3)
    await book(
        books, model, dt.date(2023, 1, 1), leg(CHECKING, "2500.00"), leg(OPENING, "-2500.00")
    )
    for year in (2023, 2024):
        for month in range(1, 13):
            salary = Decimal("4100.00") + Decimal(month * 7) + Decimal("0.35")
            await book(
                books,
                model,
                dt.date(year, month, 1),
                leg(CHECKING, f"{salary}"),
                leg(SALARY, f"{-salary}"),
                payee="Employer",
            )
            rent = "1450.00" if year == 2023 else "1495.50"
            await book(
                books, model, dt.date(year, month, 3), leg(RENT, rent), leg(CHECKING, f"-{rent}")
            )
            spent = Decimal(0)
            for day_of_month in range(3, 28, 3):
                price = Decimal(draw.randint(199, 15999)) / 100
                spent += price
                await book(
                    books,
                    model,
                    dt.date(year, month, day_of_month),
                    leg(FOOD, f"{price}"),
                    leg(CARD, f"{-price}"),
                    payee=draw.choice(["Grocer", "Bakery", "Market"]),
                    tags=["food"],
                )
            # The card is paid on the 28th, everything but the last purchase of the month.
            paid = spent - price
            await book(
                books,
                model,
                dt.date(year, month, 28),
                leg(CARD, f"{paid}"),
                leg(CHECKING, f"{-paid}"),
            )
            if month % 3 == 0:
                await book(
                    books,
                    model,
                    dt.date(year, month, 15),
                    leg(SAVINGS, "300.00"),
                    leg(CHECKING, "-300.50"),
                    leg(FEES, "0.50"),
                )
    # Euros bought at a price: 500 EUR @ 1.0850 USD weighs 542.50 USD.
    for day, rate, cost in (
        (dt.date(2023, 5, 10), "1.0850", "542.50"),
        (dt.date(2024, 7, 9), "1.0725", "536.25"),
    ):
        await book(
            books,
            model,
            day,
            leg(EURO, "500.00", "EUR", price={"amount": rate, "commodity": "USD"}),
            leg(CHECKING, f"-{cost}"),
        )
    # 10 ITOT at a cost of 98.38, then 4 of them sold at 105.00: a realized gain of 26.48.
    itot = {"amount": "98.38", "commodity": "USD"}
    await book(
        books, model, dt.date(2023, 8, 14), leg(BROKER, "10", "ITOT", cost=itot),
        leg(CHECKING, "-983.80"),
    )  # fmt: skip
    await book(
        books,
        model,
        dt.date(2024, 9, 16),
        leg(BROKER, "-4", "ITOT", cost=itot, price={"amount": "105.00", "commodity": "USD"}),
        leg(CHECKING, "420.00"),
        leg(GAINS, "-26.48"),
    )


async def check_balances(books: Books, model: Model, as_of: dt.date) -> None:
    sheet = await books.get("/balances", as_of=as_of.isoformat())
    own = model.own(as_of)
    assert {line["name"]: amounts(line["balances"]) for line in sheet["accounts"]} == {
        name: nonzero(own.get(name, {})) for name in ACCOUNTS
    }
    paths = {path for name in ACCOUNTS for path in parents(name)}
    assert {line["path"]: amounts(line["balances"]) for line in sheet["totals"]} == {
        path: model.subtree(path, as_of) for path in paths
    }
    by_type = {kind: model.subtree(root, as_of) for root, kind in TYPES.items()}
    assert {kind: amounts(items) for kind, items in sheet["by_type"].items()} == by_type


async def check_account_balances(books: Books, model: Model, as_of: dt.date) -> None:
    own = model.own(as_of)
    for name in ACCOUNTS:
        for descendants in (True, False):
            answer = await books.get(
                f"/accounts/{books.id(name)}/balance",
                as_of=as_of.isoformat(),
                include_descendants=str(descendants).lower(),
            )
            expected = model.subtree(name, as_of) if descendants else nonzero(own.get(name, {}))
            assert amounts(answer["balances"]) == expected, name


async def check_register(books: Books, model: Model, name: str) -> None:
    """Every posting, newest first, each with the exact running balance after it."""
    entries: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        page = await books.get(f"/accounts/{books.id(name)}/register", **params)
        entries.extend(page["items"])
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    mine = [posting for posting in model.postings if posting[1] == name]
    assert len(entries) == len(mine)
    running: dict[str, Decimal] = defaultdict(Decimal)
    for entry in reversed(entries):
        running[entry["commodity"]] += Decimal(entry["amount"])
        assert Decimal(entry["balance"]) == running[entry["commodity"]]
    assert nonzero(running) == model.subtree(name, dt.date(2099, 1, 1))


async def test_two_years_of_household_books_add_up_exactly(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    owner, viewer, stranger = await make_user(), await make_user(), await make_user()
    books = await open_books(client, owner, *ACCOUNTS)
    await books.commodity("ITOT", 0)
    response = await client.post(
        f"{books.url}/members",
        json={"email": viewer.email, "role": "viewer"},
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text
    model = Model()
    await two_years(books, model)

    for as_of in (dt.date(2023, 6, 30), dt.date(2023, 12, 31), dt.date(2024, 12, 31)):
        await check_balances(books, model, as_of)
    await check_account_balances(books, model, dt.date(2024, 6, 30))
    for name in (CHECKING, CARD, BROKER):
        await check_register(books, model, name)
    for name, held in ((BROKER, {"ITOT": Decimal(6)}), (GAINS, {"USD": Decimal("-26.48")})):
        answer = await books.get(f"/accounts/{books.id(name)}/balance", as_of="2024-12-31")
        assert amounts(answer["balances"]) == held

    assertions = await check_assertions(books, model)
    await check_reports(books, model)
    listed = await count_transactions(books)
    assert listed == model.transactions

    ids = await object_ids(books, assertions)
    await viewer_reads_everything_and_writes_nothing(app, books, viewer, ids)
    assert await count_transactions(books) == listed
    await check_balances(books, model, dt.date(2024, 12, 31))
    await stranger_sees_nothing(app, books, stranger, ids)


async def check_assertions(books: Books, model: Model) -> dict[str, str]:
    """Assertions at the start of a day, passing ones and one that is off by exactly 0.01."""
    wanted = [
        (CHECKING, dt.date(2024, 1, 1)),
        (CARD, dt.date(2023, 11, 1)),
        (BANK, dt.date(2024, 7, 10)),
        (EURO, dt.date(2024, 7, 9)),
        (BROKER, dt.date(2024, 9, 17)),
    ]
    ids: dict[str, str] = {}
    for name, day in wanted:
        for code, amount in model.subtree(name, day, before=True).items():
            if code == "USD" and name == CARD:
                amount -= Decimal("0.01")  # the one that fails
            response = await books.client.post(
                f"{books.url}/assertions",
                json={
                    "account_id": books.id(name),
                    "date": day.isoformat(),
                    "amount": str(amount),
                    "commodity": code,
                },
                headers=books.owner.headers,
            )
            assert response.status_code == 201, response.text
            ids[f"{name} {code}"] = response.json()["id"]
    for item in await books.get("/assertions"):
        account = next(name for name in books.accounts if books.id(name) == item["account_id"])
        actual = model.subtree(account, dt.date.fromisoformat(item["date"]), before=True)
        expected = actual.get(item["commodity"], Decimal(0))
        assert Decimal(item["actual"]) == expected
        assert Decimal(item["difference"]) == expected - Decimal(item["amount"])
        assert item["passing"] is (account != CARD)
    return ids


async def check_reports(books: Books, model: Model) -> None:
    """Yearly net income = income earned - expenses, and a trial balance that balances."""
    statement = await books.get(
        "/reports/income-statement", **{"from": "2023-01-01", "to": "2024-12-31"}, interval="year"
    )
    for index, year in enumerate((2023, 2024)):
        earned = Decimal(0)
        for day, account, _, amount in model.postings:
            if day.year == year and account.split(":")[0] in ("Income", "Expenses"):
                earned -= amount
        net = {code: Decimal(value) for code, value in statement["net_income"][index].items()}
        assert net == {"USD": earned}
    trial = await books.get("/reports/trial-balance", as_of="2024-12-31")
    assert trial["balanced"] is True
    assert all(Decimal(value) == 0 for value in trial["weight_total"].values())


async def count_transactions(books: Books) -> int:
    count, params = 0, {"limit": 500}
    while True:
        page = await books.get("/transactions", **params)
        count += len(page["items"])
        if page["next_cursor"] is None:
            return count
        params["cursor"] = page["next_cursor"]


# What a GET needs besides the ids to answer 200.
READ_PARAMS = {f"{API}/ledgers/{{ledger_id}}/export": {"format": "json"}}


def ledger_operations(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template) of every operation on a ledger or on something in one."""
    return [
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith(f"{API}/ledgers/{{ledger_id}}")
        for method in operations
    ]


def filled(path: str, values: dict[str, str]) -> str:
    return path.format(**{name: values.get(name, str(uuid.uuid4())) for name in _names(path)})


def _names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


async def object_ids(books: Books, assertions: dict[str, str]) -> dict[str, str]:
    transactions = await books.get("/transactions", limit=1)
    commodities = await books.get("/commodities")
    price = await books.client.post(
        f"{books.url}/prices",
        json={"date": "2024-01-02", "commodity": "ITOT", "quote_commodity": "USD", "amount": "99"},
        headers=books.owner.headers,
    )
    assert price.status_code == 201, price.text
    return {
        "ledger_id": books.ledger_id,
        "account_id": books.id(CHECKING),
        "transaction_id": transactions["items"][0]["id"],
        "commodity_id": commodities[0]["id"],
        "assertion_id": next(iter(assertions.values())),
        "price_id": price.json()["id"],
        "user_id": books.owner.id,
    }


async def viewer_reads_everything_and_writes_nothing(
    app: FastAPI, books: Books, viewer: AuthedUser, ids: dict[str, str]
) -> None:
    listed = await books.client.get(f"{API}/ledgers", headers=viewer.headers)
    assert [(item["id"], item["role"]) for item in listed.json()] == [(books.ledger_id, "viewer")]
    for method, path in ledger_operations(app):
        url = filled(path, ids)
        if method == "GET":
            if not set(_names(path)) <= set(ids):
                continue  # an import batch or a CSV profile: there is none to read
            response = await books.client.get(
                url, params=READ_PARAMS.get(path), headers=viewer.headers
            )
            assert response.status_code == 200, f"{method} {path}: {response.text}"
        else:
            # A valid body where it matters: the refusal is the role's, not the input's.
            response = await books.client.request(
                method, url, json=_write_body(path, ids), headers=viewer.headers
            )
            assert_problem(response, 403)


def _write_body(path: str, ids: dict[str, str]) -> dict[str, Any]:
    if path.endswith("/transactions") or path.endswith("{transaction_id}"):
        return {
            "date": "2024-05-05",
            "postings": [
                {"account_id": ids["account_id"], "amount": "1.00", "commodity": "USD"},
                {"account_id": ids["account_id"], "amount": "-1.00", "commodity": "USD"},
            ],
        }
    if path.endswith("/members"):
        return {"email": "someone@example.com", "role": "owner"}
    if path.endswith("/accounts"):
        return {"name": "Assets:Viewer"}
    return {}


async def stranger_sees_nothing(
    app: FastAPI, books: Books, stranger: AuthedUser, ids: dict[str, str]
) -> None:
    """Not a member: 404 for the ledger and for every object in it, as for what does not
    exist; from their own ledger, the owner's objects are as unknown as random ids."""
    listed = await books.client.get(f"{API}/ledgers", headers=stranger.headers)
    assert listed.json() == []
    for method, path in ledger_operations(app):
        url = filled(path, ids)
        response = await books.client.request(
            method, url, json=_write_body(path, ids), headers=stranger.headers
        )
        assert assert_problem(response, 404)["detail"] == "No such ledger", f"{method} {path}"
    own = await open_books(books.client, stranger, CHECKING)
    for method, path in ledger_operations(app):
        if method != "GET" or len(_names(path)) != 2:
            continue
        theirs = await books.client.get(
            filled(path, {**ids, "ledger_id": own.ledger_id}), headers=stranger.headers
        )
        unknown = await books.client.get(
            filled(path, {"ledger_id": own.ledger_id}), headers=stranger.headers
        )
        assert theirs.status_code == unknown.status_code == 404, path
        assert theirs.json()["detail"] == unknown.json()["detail"], path
    body = _write_body("/transactions", {"account_id": ids["account_id"]})
    refused = await books.client.post(
        f"{own.url}/transactions", json=body, headers=stranger.headers
    )
    assert assert_problem(refused, 422)["errors"][0]["msg"] == "no such account in this ledger"
