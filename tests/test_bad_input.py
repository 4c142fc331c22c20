"""Bad input anywhere in the API is a 4xx problem, never a 5xx, the same on both databases.

Each endpoint's valid request is taken apart: every field of its body, every query and path
parameter is replaced in turn by each edge value (NUL characters, 100,000 characters, huge
and odd numbers, calendar extremes, malformed ids, wrong types). The answer must be a problem
or, where the value is legitimately valid, a success.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from finance.errors import PROBLEM_JSON
from tests.books import API, Books, open_books
from tests.conftest import PASSWORD, AuthedUser, Backend, UserFactory, assert_problem

ZERO_UUID = "00000000-0000-0000-0000-000000000000"
TEXT_EDGES: list[Any] = [
    "a\x00b",
    "x" * 100_000,
    " \u202e\U0001f642'; --%_\\",
    "99999999999999999999999",
    "1e5",
    "-0",
    "0.000000000000000000001",
    "0001-01-01",
    "9999-12-31",
    "not-a-uuid",
    ZERO_UUID,
]
# In a URL the long text is shorter: a client refuses a query of 100,000 characters itself.
QUERY_EDGES = [value if len(value) < 100 else "x" * 10_000 for value in TEXT_EDGES]
TYPE_EDGES: list[Any] = [2**64, 1.5, None, {}]
# What replaces a text field, any other field, and an object or a list.
EDGES_OF: dict[type, list[Any]] = {
    str: [*TEXT_EDGES, None, {}],
    dict: [None, [], "x", 1],
    list: [None, {}, "x", [None]],
}
OTHER_EDGES: list[Any] = [*TYPE_EDGES, "a\x00b", "x" * 100_000]


@dataclass
class Call:
    method: str
    path: str
    json: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    form: dict[str, str] | None = None
    vary: bool = True  # False: the same input as another call, sent once as it is


def _cursor(key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


async def _books(client: httpx.AsyncClient, owner: AuthedUser, other: AuthedUser) -> Books:
    books = await open_books(client, owner, "Assets:Bank", "Assets:Broker", "Expenses:Food")
    await books.commodity("ITOT", 4)
    await books.create("2024-03-01", ("Expenses:Food", "12.50", "USD"), ("Assets:Bank", None, None))
    response = await client.post(
        f"{books.url}/members", json={"email": other.email, "role": "viewer"}, headers=owner.headers
    )
    assert response.status_code == 201, response.text
    return books


def _calls(books: Books, ids: dict[str, str], other: AuthedUser) -> list[Call]:
    """A valid request to every endpoint that takes input (DELETE and sign-out left out)."""
    url, bank = books.url, books.id("Assets:Bank")
    transaction = {
        "date": "2024-03-02",
        "payee": "Shop",
        "narration": "weekly",
        "tags": ["food"],
        "links": ["receipt-1"],
        "meta": {"ref": "A1", "n": 3},
        "status": "pending",
        "external_id": "ext-1",
        "postings": [
            {
                "account_id": books.id("Assets:Broker"),
                "amount": "2",
                "commodity": "ITOT",
                "cost": {"amount": "100.25", "commodity": "USD"},
                "memo": "buy",
            },
            {"account_id": bank, "amount": "-200.50", "commodity": "USD"},
        ],
    }
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
    report = {"account": "Assets", "tag": "food", "payee": "Shop", "currency": "USD"}
    period = {"from": "2024-01-01", "to": "2024-12-31", "interval": "quarter"}
    return [
        Call("POST", f"{API}/auth/register", {
            "email": "new@example.com", "password": "a long enough password", "display_name": "N"
        }),
        Call("POST", f"{API}/auth/token", form={"username": other.email, "password": PASSWORD}),
        Call("POST", f"{API}/auth/tokens", {"name": "script", "expires_at": soon}),
        Call("PATCH", f"{API}/users/me", {"display_name": "Me"}),
        Call("GET", f"{API}/users", params={"limit": 10, "offset": 0}),
        Call("PATCH", f"{API}/users/{other.id}", {"is_active": True, "is_admin": False}),
        Call("POST", f"{API}/ledgers", {"name": "Second", "base_currency": "EUR"}),
        Call("PATCH", url, {"name": "Home", "base_currency": "USD"}),
        Call("POST", f"{url}/members", {"email": "new@example.com", "role": "editor"}),
        Call("PATCH", f"{url}/members/{other.id}", {"role": "viewer"}),
        Call("GET", f"{url}/audit", params={
            "object_type": "account", "object_id": bank, "user": other.id, "limit": 2,
            "cursor": _cursor(["2024-01-01T00:00:00+00:00", ZERO_UUID]),
        }),
        Call("POST", f"{url}/commodities", {"code": "VACHR", "name": "Vacation", "precision": 1}),
        Call("PATCH", f"{url}/commodities/{ids['commodity']}", {"name": "Dollar", "precision": 2}),
        Call("GET", f"{url}/accounts", params={"type": "asset", "prefix": "Assets"}),
        Call("POST", f"{url}/accounts", {
            "name": "Assets:Cash", "type": "asset", "allowed_commodities": ["USD"],
            "opened_on": "2020-01-01", "closed_on": "2030-12-31", "note": "wallet",
        }),
        Call("PATCH", f"{url}/accounts/{bank}", {"note": "main", "opened_on": "2000-01-01"}),
        Call("POST", f"{url}/transactions", transaction),
        Call("PUT", f"{url}/transactions/{ids['transaction']}", transaction, vary=False),
        Call("PATCH", f"{url}/transactions/{ids['transaction']}", {"payee": "Other shop"}),
        Call("GET", f"{url}/transactions", params={
            "from": "2024-01-01", "to": "2024-12-31", "account_id": bank,
            "include_descendants": "true", "payee": "Shop", "tag": "food", "status": "cleared",
            "q": "weekly", "min_amount": "1", "max_amount": "1000", "commodity": "USD",
            "limit": 5, "cursor": _cursor(["2025-01-01", ZERO_UUID]),
        }),
        Call("GET", f"{url}/balances", params={"as_of": "2024-12-31"}),
        Call("GET", f"{url}/accounts/{bank}/balance", params={
            "as_of": "2024-12-31", "include_descendants": "false"
        }),
        Call("GET", f"{url}/accounts/{bank}/register", params={
            "from": "2024-01-01", "to": "2024-12-31", "limit": 5,
            "cursor": _cursor(["2025-01-01", ZERO_UUID, 0]),
        }),
        Call("POST", f"{url}/assertions", {
            "account_id": bank, "date": "2024-06-01", "amount": "-12.50", "commodity": "USD"
        }),
        Call("POST", f"{url}/prices", {
            "date": "2024-03-01", "commodity": "ITOT", "quote_commodity": "USD", "amount": "98.38"
        }),
        Call("GET", f"{url}/prices", params={
            "commodity": "ITOT", "quote": "USD", "from": "2024-01-01", "to": "2024-12-31",
            "limit": 5, "cursor": _cursor(["2025-01-01", ZERO_UUID]),
        }),
        Call("GET", f"{url}/reports/balance-sheet", params={**report, "as_of": "2024-12-31"}),
        Call("GET", f"{url}/reports/income-statement", params={**period, "depth": 2}),
        Call("GET", f"{url}/reports/net-worth", params=period),
        Call("GET", f"{url}/reports/cash-flow", params={**period, "format": "csv"}),
        Call("GET", f"{url}/reports/spending", params={**report, **period, "group_by": "payee"}),
        Call("GET", f"{url}/reports/trial-balance", params={"as_of": "2024-12-31"}),
    ]  # fmt: skip


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Where a value can be replaced: every node of the body, the body itself included."""
    yield path
    if isinstance(value, dict | list):
        for key, item in value.items() if isinstance(value, dict) else enumerate(value):
            yield from _leaves(item, (*path, key))


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replaced(value[path[0]], path[1:], new)
    return copy


def _variants(call: Call) -> Iterator[tuple[str, Call]]:
    """The call with one input replaced by one edge value, for every input and value."""
    if not call.vary:
        return
    for path in _leaves(call.json) if call.json is not None else ():
        original = _at(call.json, path)
        for new in EDGES_OF.get(type(original), OTHER_EDGES):
            where = "body" + "".join(f"[{part!r}]" for part in path)
            yield where, Call(call.method, call.path, _replaced(call.json, path, new), call.params)
    for name in call.params:
        for new in [*QUERY_EDGES, "10" + "0" * 12, "-1"]:
            yield (
                f"query {name}",
                Call(call.method, call.path, call.json, {**call.params, name: new}),
            )
    for name in call.form or {}:
        for new in QUERY_EDGES:
            yield (
                f"form {name}",
                Call(call.method, call.path, form={**(call.form or {}), name: new}),
            )
    segments = call.path.split("/")
    for index, segment in enumerate(segments):
        if len(segment) == 36:
            for new in ("not-a-uuid", ZERO_UUID, "%00", "1" * 5000):
                changed = "/".join([*segments[:index], new, *segments[index + 1 :]])
                yield f"path {index}", Call(call.method, changed, call.json, call.params, call.form)


def _bad(response: httpx.Response) -> str | None:
    if response.status_code >= 500:
        return f"{response.status_code} {response.text[:200]}"
    if response.status_code >= 400 and response.headers["content-type"] != PROBLEM_JSON:
        return f"{response.status_code} as {response.headers['content-type']}"
    return None


async def test_an_edge_value_in_any_field_is_never_a_server_error(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    owner, other = await make_user(), await make_user()
    books = await _books(client, owner, other)
    commodities = await books.get("/commodities")
    transactions = await books.get("/transactions")
    usd = next(item["id"] for item in commodities if item["code"] == "USD")
    ids = {"commodity": usd, "transaction": transactions["items"][0]["id"]}
    calls = _calls(books, ids, other)
    found = []
    for call in calls:
        response = await client.request(
            call.method, call.path, json=call.json, params=call.params, data=call.form,
            headers=owner.headers,
        )  # fmt: skip
        assert response.status_code < 400, f"{call.method} {call.path}: {response.text}"
        for where, variant in _variants(call):
            response = await client.request(
                variant.method, variant.path, json=variant.json, params=variant.params,
                data=variant.form, headers=owner.headers,
            )  # fmt: skip
            if problem := _bad(response):
                found.append(f"{call.method} {call.path} {where}: {problem}")
    assert not found, "\n".join(found)


async def test_a_nul_character_is_refused_wherever_text_comes_in(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    """PostgreSQL cannot store U+0000 and SQLite can: both refuse it up front, alike."""
    owner, other = await make_user(), await make_user()
    books = await _books(client, owner, other)
    url, bank = books.url, books.id("Assets:Bank")
    nul = "a\x00b"
    for call, loc in (
        (Call("POST", f"{API}/ledgers", {"name": nul, "base_currency": "USD"}), ["body", "name"]),
        (Call("PATCH", f"{url}/accounts/{bank}", {"note": nul}), ["body", "note"]),
        (Call("POST", f"{url}/commodities", {"code": "GOLD", "name": nul, "precision": 3}),
         ["body", "name"]),
        (Call("POST", f"{url}/members", {"email": f"{nul}@example.com", "role": "viewer"}),
         ["body", "email"]),
        (Call("PATCH", f"{API}/users/me", {"display_name": nul}), ["body", "display_name"]),
        (Call("POST", f"{API}/auth/tokens", {"name": nul}), ["body", "name"]),
        (Call("POST", f"{url}/transactions", {"date": "2024-01-01", "meta": {nul: 1}}),
         ["body", "meta"]),
        (Call("GET", f"{url}/accounts", params={"prefix": nul}), ["query", "prefix"]),
        (Call("GET", f"{url}/audit", params={"object_type": nul}), ["query", "object_type"]),
        (Call("GET", f"{url}/transactions", params={"q": nul}), ["query", "q"]),
        (Call("GET", f"{url}/reports/spending", params={"payee": nul}), ["query", "payee"]),
        (Call("GET", f"{url}/accounts/%00"), ["path", "account_id"]),
        (Call("POST", f"{API}/auth/token", form={"username": nul, "password": "x"}),
         ["body", "username"]),
    ):  # fmt: skip
        response = await client.request(
            call.method, call.path, json=call.json, params=call.params, data=call.form,
            headers=owner.headers,
        )  # fmt: skip
        problem = assert_problem(response, 422)
        assert problem["errors"][0]["loc"] == loc, (call, problem)
        assert "U+0000" in problem["errors"][0]["msg"]


async def test_a_garbage_cursor_is_a_422_on_every_listing(
    client: httpx.AsyncClient, user: AuthedUser
) -> None:
    books = await open_books(client, user, "Assets:Bank", "Expenses:Food")
    await books.create("2024-03-01", ("Expenses:Food", "12.50", "USD"), ("Assets:Bank", None, None))
    paths = ("/transactions", "/prices", f"/accounts/{books.id('Assets:Bank')}/register", "/audit")
    for key in (
        [],
        [5, 5],
        ["2024-01-01", 5],
        ["2024-01-01", ZERO_UUID, 2**70],
        ["2024-01-01", ZERO_UUID, True],
        ["2024-01-01", {"a": 1}, 1],
        ["0001-01-01T00:00:00+01:00", ZERO_UUID],
        ["9999-12-31T23:59:59-01:00", ZERO_UUID],
        ["2024-01-01T00:00:00", ZERO_UUID],
        ["x" * 1000, ZERO_UUID],
        {"date": "2024-01-01"},
    ):
        for path in paths:
            response = await client.get(
                books.url + path, params={"cursor": _cursor(key)}, headers=user.headers
            )
            assert_problem(response, 422)
    for cursor in ("!!!", "bm90IGpzb24", "x" * 1001):
        response = await client.get(
            f"{books.url}/transactions", params={"cursor": cursor}, headers=user.headers
        )
        assert_problem(response, 422)


async def test_an_if_match_of_odd_digits_matches_nothing(
    client: httpx.AsyncClient, user: AuthedUser
) -> None:
    """Latin-1 superscripts pass `str.isdigit` and 5,000 digits pass it too; `int` takes
    neither. Such a tag is simply not a version of ours: 412, never a 500."""
    books = await open_books(client, user, "Assets:Bank", "Expenses:Food")
    created = await books.create(
        "2024-03-01", ("Expenses:Food", "12.50", "USD"), ("Assets:Bank", None, None)
    )
    for tag in (b'"\xb2"', b'W/"\xb9"', b'"' + b"9" * 5000 + b'"'):
        response = await client.patch(
            f"{books.url}/transactions/{created['id']}",
            json={"payee": "Other"},
            headers=[(b"Authorization", f"Bearer {user.token}".encode()), (b"If-Match", tag)],
        )
        assert assert_problem(response, 412)["current_version"] == 1


async def test_numbers_and_dates_at_the_edges_get_the_answer_they_deserve(
    client: httpx.AsyncClient, user: AuthedUser
) -> None:
    books = await open_books(client, user, "Assets:Bank", "Expenses:Food")
    bank = books.id("Assets:Bank")

    async def send(method: str, path: str, **kwargs: Any) -> int:
        response = await client.request(method, books.url + path, headers=user.headers, **kwargs)
        if response.status_code >= 400:
            assert_problem(response, response.status_code)
        return response.status_code

    for amount, status in (
        ("99999999999999999999999", 422),  # more than 2^63 - 1 cents
        ("1e5", 422),
        ("-0", 201),
        ("0.000000000000000000001", 422),  # more decimals than USD has
        ("12.340000000000000000000", 201),  # trailing zeros are not decimals
    ):
        body = books.body(
            "2024-03-01", ("Expenses:Food", amount, "USD"), ("Assets:Bank", None, None)
        )
        assert await send("POST", "/transactions", json=body) == status, amount
        assertion = {"account_id": bank, "date": "2024-03-01", "amount": amount, "commodity": "USD"}
        assert await send("POST", "/assertions", json=assertion) == status, amount
    for day, price, status in (
        ("2024-03-01", "99999999999999999999999", 201),  # a rate may be large
        ("2024-03-02", "1e5", 422),
        ("2024-03-03", "-0", 422),  # a rate is positive
        ("2024-03-04", "0.000000000000000000001", 422),  # 21 decimals, 20 at most
        ("0001-01-01", "1", 422),  # dates of the books: 1900 to 2200
        ("9999-12-31", "1", 422),
    ):
        price_body = {"date": day, "commodity": "EUR", "quote_commodity": "USD", "amount": price}
        assert await send("POST", "/prices", json=price_body) == status, (day, price)
    for day, status in (("0001-01-01", 200), ("9999-12-31", 200)):
        assert await send("GET", "/balances", params={"as_of": day}) == status
        assert await send("GET", f"/accounts/{bank}/balance", params={"as_of": day}) == status
    for day in ("0001-01-01", "9999-12-31"):
        assert await send("GET", "/reports/balance-sheet", params={"as_of": day}) == 422
        assert await send("GET", "/reports/net-worth", params={"from": day, "to": day}) == 422
    assert (
        await send("GET", "/reports/net-worth", params={"from": "0001-01-02", "to": "0001-01-02"})
        == 200
    )
    for params in ({"limit": 10**12}, {"limit": 0}, {"limit": "ten"}, {"cursor": "garbage"}):
        assert await send("GET", "/transactions", params=params) == 422
    assert await send("GET", "/accounts/not-a-uuid") == 422
    assert await send("GET", f"/accounts/{uuid.uuid4()}") == 404


async def test_a_total_beyond_64_bits_is_exact_on_postgresql_and_a_422_on_sqlite(
    client: httpx.AsyncClient, user: AuthedUser, backend: Backend
) -> None:
    """Each amount fits 64 bits (2^63 - 1 cents at most); two of them do not."""
    books = await open_books(client, user, "Assets:Bank", "Expenses:Food")
    largest = "92233720368547758.07"
    for _ in range(2):
        await books.create(
            "2024-03-01", ("Expenses:Food", largest, "USD"), ("Assets:Bank", None, None)
        )
    food = books.id("Expenses:Food")
    for path in ("/balances", f"/accounts/{food}/balance", "/reports/trial-balance"):
        response = await client.get(books.url + path, headers=user.headers)
        if backend.name == "postgresql":
            assert response.status_code == 200, response.text
            assert "184467440737095516.14" in response.text
        else:
            assert "beyond what SQLite can add" in assert_problem(response, 422)["detail"]
