"""Reports checked against sums computed here, independently, over the books the test wrote.

The books are written straight through the ORM (balanced transactions, postings with their
weights, prices), so the reports are tested on their own; every expected figure is a plain
Python sum over the postings the test created, or a hand-computed constant.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import httpx
import pytest

from finance.db import Database
from finance.models import (
    Account,
    Commodity,
    Ledger,
    LedgerMember,
    Posting,
    Price,
    Role,
    Transaction,
)
from tests.conftest import AuthedUser

PRECISION = {"USD": 2, "EUR": 2, "JPY": 0, "AAPL": 3, "GBP": 2}
CREDIT = {"liability", "equity", "income"}
Minor = dict[str, int]


@dataclass(frozen=True)
class Leg:
    account: str
    amount: str | None  # None: whatever balances the transaction in `commodity`
    commodity: str
    cost: tuple[str, str] | None = None  # per unit, in commodity
    price: tuple[str, str] | None = None


@dataclass(frozen=True)
class Post:
    """A stored posting, as the test knows it."""

    tx: int
    date: dt.date
    account: str
    type: str
    commodity: str
    units: int
    weight: int
    weight_commodity: str
    cost: tuple[str, str] | None
    price: tuple[str, str] | None
    payee: str | None
    tags: tuple[str, ...]


def minor(text: str, code: str) -> int:
    value = Decimal(text).scaleb(PRECISION[code])
    assert value == value.to_integral_value(), f"{text} {code} is not exact"
    return int(value)


@dataclass
class Books:
    accounts: dict[str, str]  # name -> type
    closed: dict[str, dt.date] = field(default_factory=dict)
    posts: list[Post] = field(default_factory=list)
    prices: list[tuple[dt.date, str, str, str]] = field(default_factory=list)
    transactions: list[tuple[dt.date, str | None, tuple[str, ...]]] = field(default_factory=list)
    legs: list[tuple[Leg, ...]] = field(default_factory=list)
    ledger_id: str = ""

    def tx(self, date: dt.date, payee: str | None, *legs: Leg, tags: Sequence[str] = ()) -> None:
        index = len(self.transactions)
        self.transactions.append((date, payee, tuple(tags)))
        self.legs.append(legs)
        known: list[tuple[Leg, int, int, str]] = []
        for leg in legs:
            if leg.amount is None:
                continue
            units = minor(leg.amount, leg.commodity)
            rate = leg.cost or leg.price
            if rate is None:
                weight, weight_code = units, leg.commodity
            else:
                exact = Decimal(leg.amount) * Decimal(rate[0])
                weight, weight_code = minor(str(exact), rate[1]), rate[1]
            known.append((leg, units, weight, weight_code))
        sums: dict[str, int] = defaultdict(int)
        for _, _, weight, code in known:
            sums[code] += weight
        for leg in legs:
            if leg.amount is None:
                known.append((leg, -sums[leg.commodity], -sums[leg.commodity], leg.commodity))
                sums[leg.commodity] = 0
        assert all(value == 0 for value in sums.values()), f"unbalanced: {legs}"
        for leg, units, weight, code in known:
            self.posts.append(
                Post(
                    tx=index,
                    date=date,
                    account=leg.account,
                    type=self.accounts[leg.account],
                    commodity=leg.commodity,
                    units=units,
                    weight=weight,
                    weight_commodity=code,
                    cost=leg.cost,
                    price=leg.price,
                    payee=payee,
                    tags=tuple(tags),
                )
            )

    def price(self, date: dt.date, commodity: str, quote: str, rate: str) -> None:
        self.prices.append((date, commodity, quote, rate))

    async def store(self, database: Database, owner: AuthedUser) -> str:
        """Writes the books as one ledger owned by `owner`; returns the ledger id."""
        ledger_id = uuid.uuid4()
        user_id = uuid.UUID(owner.id)
        async with database.sessions() as session:
            session.add(Ledger(id=ledger_id, name="Reports", base_currency="USD"))
            await session.flush()
            session.add(LedgerMember(ledger_id=ledger_id, user_id=user_id, role=Role.OWNER))
            codes = {code: uuid.uuid4() for code in PRECISION}
            session.add_all(
                Commodity(ledger_id=ledger_id, id=cid, code=code, precision=PRECISION[code])
                for code, cid in codes.items()
            )
            account_ids = {name: uuid.uuid4() for name in self.accounts}
            session.add_all(
                Account(
                    ledger_id=ledger_id,
                    id=account_ids[name],
                    name=name,
                    type=kind,
                    closed_on=self.closed.get(name),
                )
                for name, kind in self.accounts.items()
            )
            tx_ids = [uuid.uuid4() for _ in self.transactions]
            session.add_all(
                Transaction(
                    ledger_id=ledger_id, id=tx_ids[i], date=date, payee=payee, tags=list(tags)
                )
                for i, (date, payee, tags) in enumerate(self.transactions)
            )
            await session.flush()
            positions: dict[int, int] = defaultdict(int)
            rows = []
            for post in self.posts:
                positions[post.tx] += 1
                cost, price = post.cost, post.price
                rows.append(
                    Posting(
                        ledger_id=ledger_id,
                        transaction_id=tx_ids[post.tx],
                        position=positions[post.tx],
                        date=post.date,
                        account_id=account_ids[post.account],
                        commodity_id=codes[post.commodity],
                        amount=post.units,
                        cost=Decimal(cost[0]) if cost else None,
                        cost_commodity_id=codes[cost[1]] if cost else None,
                        price=Decimal(price[0]) if price else None,
                        price_commodity_id=codes[price[1]] if price else None,
                        weight=post.weight,
                        weight_commodity_id=codes[post.weight_commodity],
                    )
                )
            session.add_all(rows)
            session.add_all(
                Price(
                    ledger_id=ledger_id,
                    date=date,
                    commodity_id=codes[base],
                    quote_commodity_id=codes[quote],
                    rate=Decimal(rate),
                )
                for date, base, quote, rate in self.prices
            )
            await session.commit()
        self.ledger_id = str(ledger_id)
        return self.ledger_id

    async def post(self, client: httpx.AsyncClient, owner: AuthedUser) -> str:
        """Writes the same books through the ledger's API; returns the ledger id."""
        headers = owner.headers

        async def created(path: str, body: dict[str, Any]) -> dict[str, Any]:
            response = await client.post(f"/api/v1{path}", json=body, headers=headers)
            assert response.status_code == 201, response.text
            answer: dict[str, Any] = response.json()
            return answer

        ledger = (await created("/ledgers", {"name": "Reports", "base_currency": "USD"}))["id"]
        base = f"/ledgers/{ledger}"
        await created(f"{base}/commodities", {"code": "AAPL", "precision": PRECISION["AAPL"]})
        ids = {}
        for name, kind in self.accounts.items():
            body: dict[str, Any] = {"name": name, "type": kind}
            if name in self.closed:
                body["closed_on"] = self.closed[name].isoformat()
            ids[name] = (await created(f"{base}/accounts", body))["id"]
        for (date, payee, tags), legs in zip(self.transactions, self.legs, strict=True):
            postings = []
            for leg in legs:
                posting: dict[str, Any] = {
                    "account_id": ids[leg.account],
                    "commodity": leg.commodity,
                }
                if leg.amount is not None:
                    posting["amount"] = leg.amount
                for key, per_unit in (("cost", leg.cost), ("price", leg.price)):
                    if per_unit is not None:
                        posting[key] = {"amount": per_unit[0], "commodity": per_unit[1]}
                postings.append(posting)
            await created(
                f"{base}/transactions",
                {
                    "date": date.isoformat(),
                    "payee": payee,
                    "tags": list(tags),
                    "postings": postings,
                },
            )
        for date, commodity, quote, rate in self.prices:
            await created(
                f"{base}/prices",
                {
                    "date": date.isoformat(),
                    "commodity": commodity,
                    "quote_commodity": quote,
                    "amount": rate,
                },
            )
        self.ledger_id = ledger
        return self.ledger_id


ACCOUNTS = {
    "Assets:Bank:Checking": "asset",
    "Assets:Bank:Savings": "asset",
    "Assets:Bank:Euro": "asset",
    "Assets:Broker:Cash": "asset",
    "Assets:Broker:Stocks": "asset",
    "Assets:Broker:Gifted": "asset",
    "Assets:House": "asset",
    "Assets:Old:Piggy": "asset",
    "Assets:Wallet:Yen": "asset",
    "Liabilities:Mortgage": "liability",
    "Liabilities:CreditCard": "liability",
    "Equity:Opening": "equity",
    "Income:Salary": "income",
    "Income:Interest": "income",
    "Income:Gains": "income",
    "Income:Gifts": "income",
    "Expenses:Food:Groceries": "expense",
    "Expenses:Food:Restaurants": "expense",
    "Expenses:Home:Rent": "expense",
    "Expenses:Interest:Mortgage": "expense",
    "Expenses:Taxes": "expense",
    "Expenses:Travel": "expense",
}
EMPTY_MONTH = (2024, 3)  # nothing at all happens in March 2024
PAYEES = ["Corner Shop", "Market", "Bakery", "SuperMart"]


def household() -> Books:
    """Two years of a household: salary, rent then a house and its mortgage, a credit card,
    euros and yen bought at a price, shares bought at cost and partly sold, a closed account."""
    rng = random.Random(5)
    books = Books(dict(ACCOUNTS), closed={"Assets:Old:Piggy": dt.date(2023, 6, 30)})
    day = dt.date
    books.tx(
        day(2023, 1, 1),
        "Opening",
        Leg("Assets:Bank:Checking", "5000.00", "USD"),
        Leg("Assets:Bank:Savings", "30000.00", "USD"),
        Leg("Assets:Old:Piggy", "300.00", "USD"),
        Leg("Equity:Opening", None, "USD"),
    )
    for year in (2023, 2024):
        for month in range(1, 13):
            if (year, month) == EMPTY_MONTH:
                continue
            books.tx(
                day(year, month, 25),
                "ACME Corp",
                Leg("Assets:Bank:Checking", "4000.00", "USD"),
                Leg("Expenses:Taxes", "1000.00", "USD"),
                Leg("Income:Salary", "-5000.00", "USD"),
                tags=["work"],
            )
            books.tx(
                day(year, month, 28),
                "Bank",
                Leg(
                    "Assets:Bank:Savings",
                    f"{rng.randint(100, 999)}.{rng.randint(0, 99):02d}",
                    "USD",
                ),
                Leg("Income:Interest", None, "USD"),
            )
            if year == 2023:
                books.tx(
                    day(year, month, 1),
                    "Landlord",
                    Leg("Expenses:Home:Rent", "1500.00", "USD"),
                    Leg("Assets:Bank:Checking", None, "USD"),
                )
            else:
                books.tx(
                    day(year, month, 2),
                    "Mortgage Bank",
                    Leg("Liabilities:Mortgage", "400.00", "USD"),
                    Leg("Expenses:Interest:Mortgage", "375.50", "USD"),
                    Leg("Assets:Bank:Checking", None, "USD"),
                )
            for _ in range(rng.randint(2, 4)):
                tags = ["vacation"] if rng.random() < 0.2 else []
                if rng.random() < 0.1:
                    tags.append("family")
                books.tx(
                    day(year, month, rng.randint(3, 22)),
                    rng.choice([*PAYEES, None]),
                    Leg(
                        rng.choice(["Expenses:Food:Groceries", "Expenses:Food:Restaurants"]),
                        f"{rng.randint(5, 180)}.{rng.randint(0, 99):02d}",
                        "USD",
                    ),
                    Leg("Liabilities:CreditCard", None, "USD"),
                    tags=tags,
                )
            books.tx(
                day(year, month, 23),
                "Card Co",
                Leg("Liabilities:CreditCard", "300.00", "USD"),
                Leg("Assets:Bank:Checking", None, "USD"),
            )
    books.tx(  # a refund
        day(2023, 4, 9),
        "Market",
        Leg("Expenses:Food:Groceries", "-12.30", "USD"),
        Leg("Liabilities:CreditCard", None, "USD"),
    )
    books.tx(
        day(2023, 6, 30),
        "Closing the piggy bank",
        Leg("Assets:Old:Piggy", "-300.00", "USD"),
        Leg("Assets:Bank:Checking", None, "USD"),
    )
    # Shares: bought at cost, a second lot, partly sold at a price with a gain, one gifted.
    books.tx(
        day(2023, 3, 15),
        None,
        Leg("Assets:Broker:Cash", "10000.00", "USD"),
        Leg("Assets:Bank:Savings", None, "USD"),
    )
    books.tx(
        day(2023, 3, 16),
        "Broker",
        Leg("Assets:Broker:Stocks", "20", "AAPL", cost=("150.25", "USD")),
        Leg("Assets:Broker:Cash", None, "USD"),
    )
    books.tx(
        day(2023, 9, 1),
        "Broker",
        Leg("Assets:Broker:Stocks", "12.5", "AAPL", cost=("180.10", "USD")),
        Leg("Assets:Broker:Cash", None, "USD"),
    )
    books.tx(
        day(2024, 5, 10),
        "Broker",
        Leg("Assets:Broker:Stocks", "-15", "AAPL", cost=("150.25", "USD"), price=("190", "USD")),
        Leg("Assets:Broker:Cash", "2850.00", "USD"),
        Leg("Income:Gains", None, "USD"),
    )
    books.tx(
        day(2024, 6, 1),
        "Grandma",
        Leg("Assets:Broker:Gifted", "1", "AAPL"),
        Leg("Income:Gifts", None, "AAPL"),
        tags=["family"],
    )
    # Currencies: euros bought at a price and spent, a card charge abroad, yen.
    books.tx(
        day(2023, 7, 10),
        "Exchange",
        Leg("Assets:Bank:Euro", "1000.00", "EUR", price=("1.085", "USD")),
        Leg("Assets:Bank:Checking", None, "USD"),
        tags=["vacation"],
    )
    books.tx(
        day(2023, 7, 20),
        "Hotel Lisboa",
        Leg("Expenses:Travel", "420.00", "EUR"),
        Leg("Assets:Bank:Euro", None, "EUR"),
        tags=["vacation"],
    )
    books.tx(
        day(2023, 7, 21),
        "Taxi",
        Leg("Expenses:Travel", "50.00", "EUR", price=("1.10", "USD")),
        Leg("Liabilities:CreditCard", None, "USD"),
        tags=["vacation", "family"],
    )
    books.tx(
        day(2023, 11, 1),
        "Exchange",
        Leg("Assets:Wallet:Yen", "30000", "JPY"),
        Leg("Assets:Bank:Checking", "-200.00", "USD", price=("150", "JPY")),
    )
    books.tx(
        day(2023, 11, 5),
        "Ramen",
        Leg("Expenses:Travel", "12000", "JPY"),
        Leg("Assets:Wallet:Yen", None, "JPY"),
    )
    # A house with a mortgage.
    books.tx(
        day(2024, 1, 15),
        "Notary",
        Leg("Assets:House", "100000.00", "USD"),
        Leg("Liabilities:Mortgage", "-90000.00", "USD"),
        Leg("Assets:Bank:Savings", None, "USD"),
    )
    for month in range(1, 13):
        books.price(day(2023, month, 15), "EUR", "USD", f"1.{rng.randint(5, 12):02d}")
        books.price(
            day(2023, month, 20), "AAPL", "USD", f"{rng.randint(140, 200)}.{rng.randint(0, 99)}"
        )
        books.price(day(2024, month, 15), "EUR", "USD", f"1.{rng.randint(5, 12):02d}")
        books.price(day(2024, month, 20), "AAPL", "USD", f"{rng.randint(140, 200)}.5")
    books.price(day(2023, 10, 1), "USD", "JPY", "150")
    books.price(day(2024, 6, 1), "USD", "JPY", "155")
    return books


# -- independent sums ---------------------------------------------------------------------------


def sums(posts: Iterable[Post], key: Any, *, weights: bool = False) -> dict[Any, Minor]:
    """key(post) -> commodity -> sum of units (or weights), zeros dropped."""
    result: dict[Any, Minor] = defaultdict(lambda: defaultdict(int))
    for post in posts:
        if weights:
            result[key(post)][post.weight_commodity] += post.weight
        else:
            result[key(post)][post.commodity] += post.units
    return {k: clean(v) for k, v in result.items() if clean(v)}


def clean(amounts: Mapping[str, int]) -> Minor:
    return {code: value for code, value in amounts.items() if value != 0}


def plus(*items: Mapping[str, int], signs: Sequence[int] | None = None) -> Minor:
    result: dict[str, int] = defaultdict(int)
    for index, amounts in enumerate(items):
        sign = signs[index] if signs else 1
        for code, value in amounts.items():
            result[code] += sign * value
    return clean(result)


def natural(post: Post) -> int:
    return -post.units if post.type in CREDIT else post.units


def parse(amounts: Mapping[str, str]) -> Minor:
    """An API amounts object in minor units; each string must carry its commodity's decimals."""
    result = {}
    for code, text in amounts.items():
        places = len(text.partition(".")[2])
        assert places == PRECISION[code], f"{code} {text} should have {PRECISION[code]} decimals"
        result[code] = minor(text, code)
        assert result[code] != 0, "zero amounts are left out"
    return result


def flatten(nodes: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for node in nodes:
        found[node["account"]] = node
        found.update(flatten(node["children"]))
    return found


def subtree(name: str, account: str) -> bool:
    return account == name or account.startswith(name + ":")


def share(part: int, whole: int) -> str:
    return str((Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"), ROUND_HALF_EVEN))


async def report(
    client: httpx.AsyncClient, user: AuthedUser, ledger: str, name: str, **params: Any
) -> dict[str, Any]:
    response = await client.get(
        f"/api/v1/ledgers/{ledger}/reports/{name}", params=params, headers=user.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def months(start: dt.date, end: dt.date) -> list[tuple[dt.date, dt.date]]:
    """Calendar months clipped to the range, written out by hand for the checks."""
    periods = []
    begin = start
    while begin <= end:
        following = dt.date(begin.year + begin.month // 12, begin.month % 12 + 1, 1)
        periods.append((begin, min(following - dt.timedelta(days=1), end)))
        begin = following
    return periods


# -- the household's books ----------------------------------------------------------------------


async def test_trial_balance_weights_sum_to_zero(
    client: httpx.AsyncClient, database: Database, user: AuthedUser
) -> None:
    books = household()
    ledger = await books.store(database, user)
    for as_of in (dt.date(2023, 7, 15), dt.date(2024, 12, 31)):
        body = await report(client, user, ledger, "trial-balance", as_of=as_of.isoformat())
        upto = [post for post in books.posts if post.date <= as_of]
        units = sums(upto, lambda post: post.account)
        weights = sums(upto, lambda post: post.account, weights=True)
        lines = {line["account"]: line for line in body["accounts"]}
        assert sorted(lines) == sorted({post.account for post in upto})
        for account, line in lines.items():
            assert line["type"] == ACCOUNTS[account]
            assert parse(line["balance"]) == units.get(account, {})
            assert parse(line["weight"]) == weights.get(account, {})
        assert parse(body["weight_total"]) == {}
        assert body["balanced"] is True
        assert parse(body["total"]) == sums(upto, lambda post: 0).get(0, {})
    # The closed account is listed with its zero balance; units are not zero (conversions).
    assert lines["Assets:Old:Piggy"]["balance"] == {}
    assert body["total"] != {}


@pytest.mark.parametrize("written", ["orm", "api"])
async def test_balance_sheet_matches_the_postings_and_balances(
    client: httpx.AsyncClient, database: Database, user: AuthedUser, written: str
) -> None:
    books = household()
    ledger = await (books.store(database, user) if written == "orm" else books.post(client, user))
    as_of = dt.date(2024, 8, 31)
    body = await report(client, user, ledger, "balance-sheet", as_of=as_of.isoformat())
    upto = [post for post in books.posts if post.date <= as_of]
    by_account = sums(upto, lambda post: post.account)
    sections = {"assets": "asset", "liabilities": "liability", "equity": "equity"}
    for section, kind in sections.items():
        nodes = flatten(body[section]["accounts"])
        accounts = [name for name, typ in ACCOUNTS.items() if typ == kind]
        expected_section: Minor = {}
        for name in accounts:
            sign = -1 if kind in CREDIT else 1
            expected = plus(by_account.get(name, {}), signs=[sign])
            expected_section = plus(expected_section, expected)
            if expected:
                assert parse(nodes[name]["balance"]) == expected, name
                assert nodes[name]["implied"] is False
            else:
                assert name not in nodes  # closed: nothing to show
        # Every node's total is its subtree's sum, implied parents included.
        for name, node in nodes.items():
            if node["implied"] and not name.startswith("Equity:"):
                assert name not in ACCOUNTS
            members = [a for a in accounts if subtree(name, a)]
            expected_total = plus(
                *(by_account.get(a, {}) for a in members),
                signs=[-1 if kind in CREDIT else 1] * len(members),
            )
            if section != "equity" or name == "Equity:Opening":
                assert parse(node["total"]) == expected_total, name
        if section != "equity":
            assert parse(body[section]["total"]) == expected_section
    equity = flatten(body["equity"]["accounts"])
    earnings = plus(*({p.commodity: -p.units} for p in upto if p.type in ("income", "expense")))
    assert parse(equity["Equity:Earnings (current)"]["balance"]) == earnings
    assert equity["Equity:Earnings (current)"]["implied"] is True
    # The conversions line is what the units converted at cost or price leave over.
    conversions = sums(upto, lambda post: 0).get(0, {})
    assert parse(equity["Equity:Conversions (implied)"]["balance"]) == conversions
    assert set(conversions) == {"AAPL", "EUR", "JPY", "USD"}
    # Assets = liabilities + equity, in every commodity.
    assert (
        plus(
            parse(body["assets"]["total"]),
            parse(body["liabilities"]["total"]),
            parse(body["equity"]["total"]),
            signs=[1, -1, -1],
        )
        == {}
    )
    assert body["valuation"] is None
    assert body["holdings"] == []
    # Shares at market value beside their cost basis: 5 left of the lot at 150.25 and 12.5
    # at 180.10; the gifted share has no cost, so no basis (and no gain) is claimed for it.
    valued = await report(
        client, user, ledger, "balance-sheet", as_of=as_of.isoformat(), currency="USD"
    )
    holdings = {(h["account"], h["commodity"]): h for h in valued["holdings"]}
    aapl = max((p for p in books.prices if p[1] == "AAPL" and p[0] <= as_of), key=lambda p: p[0])
    value = (Decimal("17.5") * Decimal(aapl[3])).quantize(Decimal("0.01"), ROUND_HALF_EVEN)
    assert holdings[("Assets:Broker:Stocks", "AAPL")] == {
        "account": "Assets:Broker:Stocks",
        "commodity": "AAPL",
        "units": "17.500",
        "value": {"amount": str(value), "commodity": "USD"},
        "cost_basis": {"amount": "3002.50", "commodity": "USD"},
        "unrealized_gain": {"amount": str(value - Decimal("3002.50")), "commodity": "USD"},
    }
    gifted = holdings[("Assets:Broker:Gifted", "AAPL")]
    assert gifted["cost_basis"] is None
    assert gifted["unrealized_gain"] is None
    assert {key[1] for key in holdings} == {"AAPL", "EUR", "JPY"}
    # Weights, as the ledger stored them, are what the test computed; they sum to zero.
    trial = await report(client, user, ledger, "trial-balance", as_of=as_of.isoformat())
    weights = sums(upto, lambda post: post.account, weights=True)
    assert {line["account"]: parse(line["weight"]) for line in trial["accounts"]} == {
        account: weights.get(account, {}) for account in {post.account for post in upto}
    }
    assert trial["balanced"] is True


async def test_income_statement_per_month_with_an_empty_month(
    client: httpx.AsyncClient, database: Database, user: AuthedUser
) -> None:
    books = household()
    ledger = await books.store(database, user)
    start, end = dt.date(2023, 11, 10), dt.date(2024, 5, 20)
    body = await report(
        client, user, ledger, "income-statement", **{"from": start.isoformat()}, to=end.isoformat()
    )
    periods = months(start, end)
    assert [(p["start"], p["end"]) for p in body["periods"]] == [
        (a.isoformat(), b.isoformat()) for a, b in periods
    ]
    income = flatten(body["income"]["accounts"])
    expenses = flatten(body["expenses"]["accounts"])
    for index, (first, last) in enumerate(periods):
        inside = [p for p in books.posts if first <= p.date <= last]
        by_account = sums(inside, lambda post: post.account)
        for nodes, kind in ((income, "income"), (expenses, "expense")):
            sign = -1 if kind == "income" else 1
            assert {a for a in by_account if ACCOUNTS[a] == kind} <= set(nodes)
            for name, node in nodes.items():
                members = [a for a, t in ACCOUNTS.items() if t == kind and subtree(name, a)]
                expected = plus(
                    *(by_account.get(a, {}) for a in members), signs=[sign] * len(members)
                )
                assert parse(node["total"][index]) == expected, (name, first)
                own = plus(by_account.get(name, {}), signs=[sign])
                assert parse(node["balance"][index]) == own
        income_total = plus(
            *(plus({p.commodity: natural(p)}) for p in inside if p.type == "income")
        )
        expense_total = plus(*(plus({p.commodity: p.units}) for p in inside if p.type == "expense"))
        assert parse(body["income"]["total"][index]) == income_total
        assert parse(body["expenses"]["total"][index]) == expense_total
        assert parse(body["net_income"][index]) == plus(income_total, expense_total, signs=[1, -1])
        if (first.year, first.month) == EMPTY_MONTH:
            assert body["income"]["total"][index] == {}
            assert body["net_income"][index] == {}
    assert expenses["Expenses:Food"]["implied"] is True
    assert "Expenses:Home:Rent" in expenses  # rent was paid in the 2023 months of the range

    # depth=1 folds everything into the roots; quarters clip to the range.
    folded = await report(
        client,
        user,
        ledger,
        "income-statement",
        **{"from": start.isoformat()},
        to=end.isoformat(),
        interval="quarter",
        depth=1,
    )
    assert [(p["start"], p["end"]) for p in folded["periods"]] == [
        ("2023-11-10", "2023-12-31"),
        ("2024-01-01", "2024-03-31"),
        ("2024-04-01", "2024-05-20"),
    ]
    roots = folded["expenses"]["accounts"]
    assert [node["account"] for node in roots] == ["Expenses"]
    assert roots[0]["children"] == []
    quarter = [p for p in books.posts if dt.date(2024, 1, 1) <= p.date <= dt.date(2024, 3, 31)]
    assert parse(roots[0]["balance"][1]) == plus(
        *(plus({p.commodity: p.units}) for p in quarter if p.type == "expense")
    )


async def test_net_income_is_the_change_in_earnings(
    client: httpx.AsyncClient, database: Database, user: AuthedUser
) -> None:
    books = household()
    ledger = await books.store(database, user)
    start, end = dt.date(2023, 4, 1), dt.date(2024, 9, 30)
    statement = await report(
        client, user, ledger, "income-statement", **{"from": start.isoformat()}, to=end.isoformat()
    )
    net = plus(*(parse(amounts) for amounts in statement["net_income"]))
    before = await report(
        client, user, ledger, "balance-sheet", as_of=(start - dt.timedelta(days=1)).isoformat()
    )
    after = await report(client, user, ledger, "balance-sheet", as_of=end.isoformat())

    def earnings(sheet: dict[str, Any]) -> Minor:
        return parse(flatten(sheet["equity"]["accounts"])["Equity:Earnings (current)"]["balance"])

    assert net == plus(earnings(after), earnings(before), signs=[1, -1])
    inside = [p for p in books.posts if start <= p.date <= end and p.type in ("income", "expense")]
    assert net == plus(*({p.commodity: -p.units} for p in inside))
    assert net != {}


async def test_net_worth_equals_the_balance_sheet_at_each_point(
    client: httpx.AsyncClient, database: Database, user: AuthedUser
) -> None:
    books = household()
    ledger = await books.store(database, user)
    start, end = dt.date(2023, 1, 10), dt.date(2024, 12, 31)
    for currency in (None, "USD", "EUR"):
        extra = {"currency": currency} if currency else {}
        series = await report(
            client,
            user,
            ledger,
            "net-worth",
            **{"from": start.isoformat()},
            to=end.isoformat(),
            interval="quarter",
            **extra,
        )
        assert [point["date"] for point in series["points"]] == [
            "2023-03-31", "2023-06-30", "2023-09-30", "2023-12-31",
            "2024-03-31", "2024-06-30", "2024-09-30", "2024-12-31",
        ]  # fmt: skip
        for point in series["points"]:
            day = dt.date.fromisoformat(point["date"])
            sheet = await report(
                client, user, ledger, "balance-sheet", as_of=point["date"], **extra
            )
            assert point["assets"] == sheet["assets"]["total"]
            assert point["liabilities"] == sheet["liabilities"]["total"]
            assert parse(point["net_worth"]) == plus(
                parse(sheet["assets"]["total"]), parse(sheet["liabilities"]["total"]), signs=[1, -1]
            )
            if currency is None:
                upto = [
                    p for p in books.posts if p.date <= day and p.type in ("asset", "liability")
                ]
                assert parse(point["net_worth"]) == plus(*({p.commodity: p.units} for p in upto))
            else:
                assert set(point["net_worth"]) == {currency}  # every commodity had a price
                assert series["valuation"]["missing"] == []


async def test_cash_flow_by_kind_of_counter_account(
    client: httpx.AsyncClient, database: Database, user: AuthedUser
) -> None:
    books = household()
    ledger = await books.store(database, user)
    start, end = dt.date(2023, 2, 1), dt.date(2024, 7, 31)
    for prefix in (None, "Assets:Bank"):
        extra = {"account": prefix} if prefix else {}
        body = await report(
            client,
            user,
            ledger,
            "cash-flow",
            **{"from": start.isoformat()},
            to=end.isoformat(),
            interval="quarter",
            **extra,
        )
        cash = {a for a, t in ACCOUNTS.items() if t == "asset" and subtree(prefix or a, a)}
        assert body["accounts"] == sorted(cash)
        touching = {p.tx for p in books.posts if p.account in cash}
        flows = {line["kind"]: line for line in body["flows"]}
        for index, period in enumerate(body["periods"]):
            first = dt.date.fromisoformat(period["start"])
            last = dt.date.fromisoformat(period["end"])
            opening = sums(
                [p for p in books.posts if p.account in cash and p.date < first], lambda p: 0
            )
            closing = sums(
                [p for p in books.posts if p.account in cash and p.date <= last], lambda p: 0
            )
            assert parse(body["opening"][index]) == opening.get(0, {})
            assert parse(body["closing"][index]) == closing.get(0, {})
            counters = [
                p
                for p in books.posts
                if p.tx in touching and p.account not in cash and first <= p.date <= last
            ]
            explained: Minor = {}
            for kind in ("income", "expense", "liability", "equity", "asset"):
                of_kind = [p for p in counters if p.type == kind]
                money_in = plus(*({p.weight_commodity: -p.weight} for p in of_kind if p.weight < 0))
                money_out = plus(*({p.weight_commodity: p.weight} for p in of_kind if p.weight > 0))
                assert parse(flows[kind]["inflow"][index]) == money_in, (kind, first)
                assert parse(flows[kind]["outflow"][index]) == money_out, (kind, first)
                net = plus(money_in, money_out, signs=[1, -1])
                assert parse(flows[kind]["net"][index]) == net
                explained = plus(explained, net)
            change = plus(closing.get(0, {}), opening.get(0, {}), signs=[1, -1])
            assert parse(body["net_change"][index]) == change
            assert parse(body["conversions"][index]) == plus(change, explained, signs=[1, -1])
        if prefix:  # the broker's cash is outside: buying into it is a transfer
            assert flows["asset"]["outflow"][0] == {"USD": "10000.00"}
        else:  # shares bought at cost inside the cash accounts are a conversion
            assert parse(body["conversions"][0]) == {"AAPL": 20000, "USD": -300500}


async def test_spending_by_account_payee_and_tag(
    client: httpx.AsyncClient, database: Database, user: AuthedUser
) -> None:
    books = household()
    ledger = await books.store(database, user)
    start, end = dt.date(2023, 1, 1), dt.date(2023, 12, 31)
    expenses = [p for p in books.posts if p.type == "expense" and start <= p.date <= end]
    total = sums(expenses, lambda p: 0)[0]
    keys = {
        "account": lambda p: ":".join(p.account.split(":")[:2]),
        "payee": lambda p: p.payee,
    }
    for group_by in ("account", "payee", "tag"):
        body = await report(
            client,
            user,
            ledger,
            "spending",
            **{"from": start.isoformat()},
            to=end.isoformat(),
            group_by=group_by,
            depth=2,
        )
        assert parse(body["total"]) == total
        if group_by == "tag":
            exploded: dict[str | None, Minor] = defaultdict(dict)
            for post in expenses:
                for tag in post.tags or (None,):
                    exploded[tag] = plus(exploded[tag], {post.commodity: post.units})
            expected = {k: v for k, v in exploded.items() if v}
        else:
            expected = sums(expenses, keys[group_by])
        groups = {group["key"]: group for group in body["groups"]}
        assert {k: parse(g["amount"]) for k, g in groups.items()} == expected
        for key, group in groups.items():
            assert group["share"] == {
                code: share(value, total[code]) for code, value in expected[key].items()
            }
        usd = [parse(group["amount"]).get("USD", 0) for group in body["groups"]]
        assert usd == sorted(usd, reverse=True)  # the largest spending first


async def test_filters_by_account_tag_and_payee(
    client: httpx.AsyncClient, database: Database, user: AuthedUser
) -> None:
    books = household()
    ledger = await books.store(database, user)
    start, end = dt.date(2023, 1, 1), dt.date(2024, 12, 31)
    bounds = {"from": start.isoformat(), "to": end.isoformat(), "interval": "year"}
    cases: list[tuple[dict[str, str], Any]] = [
        ({"account": "Expenses:Food"}, lambda p: subtree("Expenses:Food", p.account)),
        ({"tag": "vacation"}, lambda p: "vacation" in books.transactions[p.tx][2]),
        ({"payee": "Market"}, lambda p: p.payee == "Market"),
        (
            {"tag": "family", "payee": "Grandma"},
            lambda p: "family" in p.tags and p.payee == "Grandma",
        ),
    ]
    for params, keep in cases:
        body = await report(client, user, ledger, "income-statement", **bounds, **params)
        assert body["filters"] == {"account": None, "tag": None, "payee": None, **params}
        for index, year in enumerate((2023, 2024)):
            kept = [p for p in books.posts if keep(p) and p.date.year == year]
            expected = plus(
                *({p.commodity: -p.units} for p in kept if p.type in ("income", "expense"))
            )
            assert parse(body["net_income"][index]) == expected, params
        sheet = await report(client, user, ledger, "trial-balance", as_of=end.isoformat(), **params)
        kept = [p for p in books.posts if keep(p)]
        assert {line["account"]: parse(line["balance"]) for line in sheet["accounts"]} == {
            name: amounts for name, amounts in sums(kept, lambda p: p.account).items()
        } | {p.account: {} for p in kept if p.account not in sums(kept, lambda p: p.account)}
        # Whole transactions (tag, payee) still balance; an account subtree does not.
        assert sheet["balanced"] is ("account" not in params)
    # A filtered balance sheet shows only the subtree, without the equity lines it cannot know.
    sheet = await report(
        client, user, ledger, "balance-sheet", as_of=end.isoformat(), account="Assets:Bank"
    )
    assert [node["account"] for node in sheet["assets"]["accounts"]] == ["Assets"]
    assert sheet["liabilities"]["accounts"] == []
    assert sheet["equity"]["accounts"] == []
    # A tagged balance sheet keeps them and still balances.
    tagged = await report(
        client, user, ledger, "balance-sheet", as_of=end.isoformat(), tag="vacation"
    )
    assert (
        plus(
            parse(tagged["assets"]["total"]),
            parse(tagged["liabilities"]["total"]),
            parse(tagged["equity"]["total"]),
            signs=[1, -1, -1],
        )
        == {}
    )
    assert "Equity:Earnings (current)" in flatten(tagged["equity"]["accounts"])


# -- valuation, checked by hand -----------------------------------------------------------------


def small_books() -> Books:
    day = dt.date
    books = Books(
        {
            "Assets:Checking": "asset",
            "Assets:Broker": "asset",
            "Assets:Euro": "asset",
            "Assets:Yen": "asset",
            "Assets:Pounds": "asset",
            "Equity:Opening": "equity",
            "Income:Salary": "income",
            "Income:Gifts": "income",
            "Expenses:Food": "expense",
        }
    )
    books.tx(
        day(2024, 1, 2),
        None,
        Leg("Assets:Checking", "10000.00", "USD"),
        Leg("Equity:Opening", None, "USD"),
    )
    books.tx(
        day(2024, 1, 10),
        None,
        Leg("Assets:Broker", "10", "AAPL", cost=("150.00", "USD")),
        Leg("Assets:Checking", None, "USD"),
    )
    books.tx(
        day(2024, 2, 1),
        None,
        Leg("Assets:Euro", "1000.00", "EUR", price=("1.10", "USD")),
        Leg("Assets:Checking", None, "USD"),
    )
    books.tx(
        day(2024, 2, 5),
        None,
        Leg("Assets:Yen", "15000", "JPY"),
        Leg("Assets:Checking", "-100.00", "USD", price=("150", "JPY")),
    )
    books.tx(
        day(2024, 2, 10),
        None,
        Leg("Assets:Pounds", "50.00", "GBP"),
        Leg("Income:Gifts", None, "GBP"),
    )
    books.tx(
        day(2024, 3, 1),
        None,
        Leg("Assets:Checking", "3000.00", "USD"),
        Leg("Income:Salary", None, "USD"),
    )
    books.tx(
        day(2024, 3, 5),
        None,
        Leg("Expenses:Food", "40.00", "EUR"),
        Leg("Assets:Euro", None, "EUR"),
    )
    books.price(day(2024, 1, 10), "AAPL", "USD", "150.00")
    books.price(day(2024, 3, 28), "AAPL", "USD", "172.50")
    books.price(day(2024, 2, 1), "EUR", "USD", "1.10")
    books.price(day(2024, 3, 20), "USD", "EUR", "0.90")  # quoted the other way, more recent
    books.price(day(2024, 2, 5), "USD", "JPY", "150")
    return books


@pytest.mark.parametrize("written", ["orm", "api"])
async def test_balance_sheet_in_a_currency_by_hand(
    client: httpx.AsyncClient, database: Database, user: AuthedUser, written: str
) -> None:
    """Also on books written through the ledger's own API: its weights and costs are what the
    reports assume."""
    books = small_books()
    ledger = await (books.store(database, user) if written == "orm" else books.post(client, user))
    body = await report(client, user, ledger, "balance-sheet", as_of="2024-03-31", currency="USD")
    assets = flatten(body["assets"]["accounts"])
    assert assets["Assets:Checking"]["balance"] == {"USD": "10300.00"}
    assert assets["Assets:Broker"]["balance"] == {"USD": "1725.00"}  # 10 x 172.50
    assert assets["Assets:Euro"]["balance"] == {"USD": "1066.67"}  # 960 / 0.90
    assert assets["Assets:Yen"]["balance"] == {"USD": "100.00"}  # 15000 / 150
    assert assets["Assets:Pounds"]["balance"] == {"GBP": "50.00"}  # no price: left as it is
    assert body["assets"]["total"] == {"GBP": "50.00", "USD": "13191.67"}
    equity = flatten(body["equity"]["accounts"])
    assert equity["Equity:Opening"]["balance"] == {"USD": "10000.00"}
    # 3000 salary - 40 EUR of food (44.44 USD) + 50 GBP of gifts
    assert equity["Equity:Earnings (current)"]["balance"] == {"GBP": "50.00", "USD": "2955.56"}
    # What the valued lines leave: gains on the shares and the euros, and rounding.
    assert equity["Equity:Conversions (implied)"]["balance"] == {"USD": "236.11"}
    assert body["equity"]["total"] == body["assets"]["total"]

    holdings = {h["account"]: h for h in body["holdings"]}
    assert holdings["Assets:Broker"] == {
        "account": "Assets:Broker",
        "commodity": "AAPL",
        "units": "10.000",
        "value": {"amount": "1725.00", "commodity": "USD"},
        "cost_basis": {"amount": "1500.00", "commodity": "USD"},
        "unrealized_gain": {"amount": "225.00", "commodity": "USD"},
    }
    assert holdings["Assets:Euro"]["cost_basis"] is None  # bought at a price, not at cost
    assert holdings["Assets:Pounds"]["value"] is None
    assert "Assets:Checking" not in holdings

    valuation = body["valuation"]
    assert [m["commodity"] for m in valuation["missing"]] == ["GBP"]
    rates = {r["commodity"]: r for r in valuation["rates"]}
    assert rates["AAPL"]["rate"] == "172.5"
    assert rates["EUR"]["steps"] == [
        {
            "commodity": "USD",
            "quote_commodity": "EUR",
            "date": "2024-03-20",
            "rate": "0.90",
            "inverted": True,
        }
    ]
    assert rates["EUR"]["rate"] == "1.111111111111111"
    assert rates["JPY"]["steps"][0]["inverted"] is True

    # In euros: AAPL and JPY go through the base currency, USD converts directly.
    euros = await report(client, user, ledger, "balance-sheet", as_of="2024-03-31", currency="EUR")
    assets = flatten(euros["assets"]["accounts"])
    assert assets["Assets:Checking"]["balance"] == {"EUR": "9270.00"}
    assert assets["Assets:Broker"]["balance"] == {"EUR": "1552.50"}  # 172.50 x 0.90 each
    assert assets["Assets:Yen"]["balance"] == {"EUR": "90.00"}  # 15000 / 150 x 0.90
    assert euros["assets"]["total"] == {"EUR": "11872.50", "GBP": "50.00"}
    broker = next(h for h in euros["holdings"] if h["account"] == "Assets:Broker")
    assert broker["cost_basis"] == {"amount": "1500.00", "commodity": "USD"}
    assert broker["unrealized_gain"] == {"amount": "202.50", "commodity": "EUR"}
    rates = {r["commodity"]: r for r in euros["valuation"]["rates"]}
    assert [step["commodity"] for step in rates["AAPL"]["steps"]] == ["AAPL", "USD"]
    assert rates["JPY"]["rate"] == "0.006"


async def test_reports_in_a_currency_by_hand(
    client: httpx.AsyncClient, database: Database, user: AuthedUser
) -> None:
    ledger = await small_books().store(database, user)
    bounds = {"from": "2024-01-01", "to": "2024-03-31", "currency": "USD"}
    series = await report(client, user, ledger, "net-worth", **bounds)
    assert [(p["date"], p["net_worth"]) for p in series["points"]] == [
        ("2024-01-31", {"USD": "10000.00"}),  # 8500 cash + 10 AAPL at 150
        ("2024-02-29", {"GBP": "50.00", "USD": "10000.00"}),  # 7300 + 1500 + 1100 + 100
        ("2024-03-31", {"GBP": "50.00", "USD": "13191.67"}),
    ]
    assert [(m["date"], m["commodity"]) for m in series["valuation"]["missing"]] == [
        ("2024-02-29", "GBP"),
        ("2024-03-31", "GBP"),
    ]
    statement = await report(client, user, ledger, "income-statement", **bounds)
    assert statement["income"]["total"] == [{}, {"GBP": "50.00"}, {"USD": "3000.00"}]
    assert statement["expenses"]["total"] == [{}, {}, {"USD": "44.44"}]
    assert statement["net_income"] == [{}, {"GBP": "50.00"}, {"USD": "2955.56"}]
    # Without a currency nothing is converted.
    unvalued = {key: value for key, value in bounds.items() if key != "currency"}
    plain = await report(client, user, ledger, "income-statement", **unvalued)
    assert plain["expenses"]["total"][2] == {"EUR": "40.00"}
    assert plain["valuation"] is None
    spent = await report(client, user, ledger, "spending", **{**bounds, "currency": "EUR"})
    assert spent["total"] == {"EUR": "40.00"}
    assert spent["groups"] == [
        {"key": "Expenses:Food", "amount": {"EUR": "40.00"}, "share": {"EUR": "1.0000"}}
    ]
    flow = await report(client, user, ledger, "cash-flow", **bounds)
    assert flow["opening"][0] == {}
    assert flow["closing"][2] == {"GBP": "50.00", "USD": "13191.67"}
    # Opening equity, salary in; the gift is in pounds, which have no price.
    kinds = {line["kind"]: line for line in flow["flows"]}
    assert kinds["equity"]["inflow"][0] == {"USD": "10000.00"}
    assert kinds["income"]["inflow"] == [{}, {"GBP": "50.00"}, {"USD": "3000.00"}]
    # January: shares bought at cost inside the cash accounts: no change, nothing converted.
    assert flow["conversions"][0] == {}
    # March: the food paid in euros (a 40 EUR weight, valued 44.44) and revaluation.
    assert kinds["expense"]["outflow"][2] == {"USD": "44.44"}
    trial = await report(client, user, ledger, "trial-balance", as_of="2024-03-31", currency="USD")
    assert trial["weight_total"] == {}
    assert trial["balanced"] is True
