"""A hypothesis state machine against the API: random creates, updates, deletes and retries.

After every step the books are read back through the API and checked against each other and
against a model kept here: every transaction balances, every account's balance is the sum of
its postings (added up here, from the transaction list), every path's total is the sum of its
own balance and its children's.

Hypothesis drives the machine synchronously, so it runs in a worker thread and each API call
is sent back to the test's event loop (`anyio.from_thread.run`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.books import Books, open_books
from tests.conftest import AuthedUser

T = TypeVar("T")

ACCOUNTS = [
    "Assets:Bank:Checking",
    "Assets:Bank:Savings",
    "Assets:Cash",
    "Liabilities:Card",
    "Income:Salary",
    "Expenses:Food",
    "Expenses:Food:Restaurants",
    "Expenses:Home:Rent",
]
COMMODITIES = ["USD", "EUR", "JPY"]
PRECISION = {"USD": 2, "EUR": 2, "JPY": 0}

# What a transaction is in the model: (account name, units, commodity) per posting.
Legs = list[tuple[str, Decimal, str]]

amounts = st.integers(min_value=1, max_value=10**7)
dates = st.dates(min_value=dt.date(2023, 1, 1), max_value=dt.date(2025, 12, 31))


@st.composite
def transactions(draw: st.DrawFn) -> tuple[str, Legs, bool]:
    """A balanced transaction: per commodity, minor units split over 2 or 3 accounts; the
    last posting may leave out its amount (single commodity only)."""
    commodities = draw(st.lists(st.sampled_from(COMMODITIES), min_size=1, max_size=2, unique=True))
    legs: Legs = []
    for commodity in commodities:
        places = PRECISION[commodity]
        total = draw(amounts)
        parts = draw(st.integers(min_value=1, max_value=2))
        accounts = draw(st.lists(st.sampled_from(ACCOUNTS), min_size=parts + 1, max_size=parts + 1))
        shares = [total] if parts == 1 else [total // 3, total - total // 3]
        for account, share in zip(accounts, shares, strict=False):
            legs.append((account, Decimal(share).scaleb(-places), commodity))
        legs.append((accounts[-1], Decimal(-total).scaleb(-places), commodity))
    elide = len(commodities) == 1 and draw(st.booleans())
    return draw(dates).isoformat(), legs, elide


def _body(
    books: Books, date: str, legs: Legs, elide: bool, payee: str | None = None
) -> dict[str, Any]:
    postings: list[dict[str, Any]] = []
    for index, (account, units, commodity) in enumerate(legs):
        posting: dict[str, Any] = {"account_id": books.id(account)}
        if not (elide and index == len(legs) - 1):
            posting |= {"amount": f"{units:f}", "commodity": commodity}
        postings.append(posting)
    return {"date": date, "payee": payee, "postings": postings}


def _children(path: str, paths: set[str]) -> list[str]:
    return [p for p in paths if p.startswith(path + ":") and ":" not in p[len(path) + 1 :]]


def machine(client: httpx.AsyncClient, user: AuthedUser) -> type[RuleBasedStateMachine]:
    """The state machine class, bound to the test's client and user."""

    def call(fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        return anyio.from_thread.run(fn, *args)

    def request(method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {**user.headers, **kwargs.pop("headers", {})}
        return call(lambda: client.request(method, url, headers=headers, **kwargs))

    class LedgerMachine(RuleBasedStateMachine):
        books: Books
        model: dict[str, tuple[int, str, Legs]]  # id -> (version, date, legs)

        @initialize()
        def open_ledger(self) -> None:
            self.books = call(open_books, client, user, *ACCOUNTS)
            self.model = {}

        @property
        def url(self) -> str:
            return f"{self.books.url}/transactions"

        def _remember(self, response: httpx.Response, legs: Legs) -> None:
            body = response.json()
            self.model[body["id"]] = (body["version"], body["date"], legs)

        @rule(tx=transactions())
        def create(self, tx: tuple[str, Legs, bool]) -> None:
            date, legs, elide = tx
            response = request("POST", self.url, json=_body(self.books, date, legs, elide))
            assert response.status_code == 201, response.text
            self._remember(response, legs)

        @rule(tx=transactions(), off=st.integers(min_value=1, max_value=99))
        def create_unbalanced(self, tx: tuple[str, Legs, bool], off: int) -> None:
            date, legs, _ = tx
            account, units, commodity = legs[0]
            legs = [
                (account, units + Decimal(off).scaleb(-PRECISION[commodity]), commodity),
                *legs[1:],
            ]
            response = request("POST", self.url, json=_body(self.books, date, legs, False))
            assert response.status_code == 422, response.text

        @rule(tx=transactions())
        def retry_with_idempotency_key(self, tx: tuple[str, Legs, bool]) -> None:
            date, legs, elide = tx
            body = _body(self.books, date, legs, elide)
            # Keys are the user's across examples: a fresh one each time, not a drawn one.
            headers = {"Idempotency-Key": str(uuid.uuid4())}
            first = request("POST", self.url, json=body, headers=headers)
            again = request("POST", self.url, json=body, headers=headers)
            assert first.status_code == again.status_code == 201, again.text
            assert again.headers.get("Idempotent-Replayed") == "true"
            assert again.json() == first.json()
            self._remember(first, legs)
            other = request("POST", self.url, json={**body, "payee": "other"}, headers=headers)
            assert other.status_code == 422, other.text

        @precondition(lambda self: bool(self.model))
        @rule(data=st.data(), tx=transactions(), stale=st.booleans())
        def replace(self, data: st.DataObject, tx: tuple[str, Legs, bool], stale: bool) -> None:
            target = data.draw(st.sampled_from(sorted(self.model)))
            version = self.model[target][0]
            date, legs, elide = tx
            response = request(
                "PUT",
                f"{self.url}/{target}",
                json=_body(self.books, date, legs, elide),
                headers={"If-Match": f'"{version - 1 if stale else version}"'},
            )
            if stale:
                assert response.status_code == 412, response.text
                return
            assert response.status_code == 200, response.text
            assert response.headers["ETag"] == f'"{version + 1}"'
            self._remember(response, legs)

        @precondition(lambda self: bool(self.model))
        @rule(
            data=st.data(),
            date=dates,
            # What a client can send: text with a UTF-8 form (no lone surrogates).
            payee=st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20),
        )
        def patch(self, data: st.DataObject, date: dt.date, payee: str) -> None:
            target = data.draw(st.sampled_from(sorted(self.model)))
            version, _, legs = self.model[target]
            response = request(
                "PATCH",
                f"{self.url}/{target}",
                json={"date": date.isoformat(), "payee": payee},
                headers={"If-Match": f'"{version}"'},
            )
            assert response.status_code == 200, response.text
            assert response.json()["payee"] == payee
            self._remember(response, legs)

        @precondition(lambda self: bool(self.model))
        @rule(data=st.data())
        def delete(self, data: st.DataObject) -> None:
            target = data.draw(st.sampled_from(sorted(self.model)))
            response = request(
                "DELETE", f"{self.url}/{target}", headers={"If-Match": f'"{self.model[target][0]}"'}
            )
            assert response.status_code == 204, response.text
            del self.model[target]

        @invariant()
        def books_agree(self) -> None:
            listed: list[dict[str, Any]] = []
            params: dict[str, Any] = {"limit": 500}
            while True:
                page = request("GET", self.url, params=params).json()
                listed += page["items"]
                if page["next_cursor"] is None:
                    break
                params["cursor"] = page["next_cursor"]
            names = {account_id: name for name, account_id in self.books.accounts.items()}

            # The API's transactions are the model's, and each of them balances.
            assert {t["id"]: (t["version"], t["date"]) for t in listed} == {
                i: (version, date) for i, (version, date, _) in self.model.items()
            }
            expected: dict[str, dict[str, Decimal]] = {}
            for transaction in listed:
                legs = [
                    (names[p["account_id"]], Decimal(p["amount"]), p["commodity"])
                    for p in transaction["postings"]
                ]
                assert legs == self.model[transaction["id"]][2]
                sums: dict[str, Decimal] = {}
                for account, units, commodity in legs:
                    sums[commodity] = sums.get(commodity, Decimal(0)) + units
                    own = expected.setdefault(account, {})
                    own[commodity] = own.get(commodity, Decimal(0)) + units
                assert set(sums.values()) == {Decimal(0)}
                assert transaction["residual"] == {}

            # Every account's balance is the sum of its postings.
            sheet = request("GET", f"{self.books.url}/balances", params={"as_of": "2099-12-31"})
            sheet = sheet.json()
            actual = {
                row["name"]: {a["commodity"]: Decimal(a["amount"]) for a in row["balances"]}
                for row in sheet["accounts"]
            }
            assert actual == {
                name: {c: v for c, v in expected.get(name, {}).items() if v} for name in ACCOUNTS
            }

            # Every path's total is its own balance plus its children's totals.
            totals = {
                row["path"]: {a["commodity"]: Decimal(a["amount"]) for a in row["balances"]}
                for row in sheet["totals"]
            }
            for path, total in totals.items():
                summed = dict(actual.get(path, {}))
                for child in _children(path, set(totals)):
                    for commodity, value in totals[child].items():
                        summed[commodity] = summed.get(commodity, Decimal(0)) + value
                assert total == {c: v for c, v in summed.items() if v}, path

    return LedgerMachine


async def test_the_books_stay_consistent_under_random_changes(
    client: httpx.AsyncClient, user: AuthedUser
) -> None:
    state_machine = machine(client, user)
    checked = settings(
        max_examples=10,
        stateful_step_count=10,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    await anyio.to_thread.run_sync(
        lambda: run_state_machine_as_test(state_machine, settings=checked)
    )
