"""The whole API fuzzed from its OpenAPI document: whatever comes in, never a 5xx.

Schemathesis generates requests for every operation, some that fit the schema and some that
break it (wrong types, out-of-range numbers, odd characters, missing fields). The cases are
generated first, reproducibly, then sent in the test's event loop (the app's database
connections live there), signed in as a ledger's owner and, three times in four, with real
ids in the paths and bodies so that they get past the 404s to the rules behind them. Each
answer is checked by Schemathesis against the document: no server error, a documented status
and content type, a body that matches its schema (every error a problem+json `Problem`).
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import httpx
import requests
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode

from tests.books import open_books
from tests.conftest import AuthedUser, UserFactory

EXAMPLES = 4  # per operation and generation mode: about 500 requests
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
# Operations that end the session or the ledger: sent last, so that they hide nothing.
LAST = ("POST /api/v1/auth/logout", "DELETE /api/v1/ledgers/{ledger_id}")
_SENT = ("method", "url", "headers", "params", "cookies", "data", "json", "files")


def generate(openapi: dict[str, Any], examples: int) -> list[Case[Any]]:
    """Cases for every operation, positive then negative, in a reproducible order."""
    config = schemathesis.Config.from_dict(
        {"checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}}}
    )
    schema = schemathesis.openapi.from_dict(openapi, config=config)
    cases: list[Case[Any]] = []
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            found: list[Case[Any]] = []

            @settings(
                max_examples=examples,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(operation.as_strategy(generation_mode=mode))
            def collect(case: Case[Any]) -> None:
                found.append(case)  # noqa: B023 - called at once, in this iteration

            # Unsatisfiable: nothing of this operation can break its schema (GET /health).
            with contextlib.suppress(Unsatisfiable):
                collect()
            cases.extend(found)
    return sorted(cases, key=lambda case: _label(case) in LAST)


def _label(case: Case[Any]) -> str:
    return f"{case.method.upper()} {case.path}"


def _is_uuid(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _with_real_ids(value: Any, ids: dict[str, str]) -> Any:
    """The body with every well-formed `account_id` replaced by a real one."""
    if isinstance(value, dict):
        return {
            key: ids["account_id"]
            if key == "account_id" and _is_uuid(item)
            else _with_real_ids(item, ids)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_with_real_ids(item, ids) for item in value]
    return value


def request_of(
    case: Case[Any], index: int, ids: dict[str, str], token: str
) -> httpx.Request | None:
    """The case as an httpx request, signed in; three in four get the real ids.

    The body is encoded as Schemathesis sends it (through requests); None for the few negative
    cases that no client can send (a file part that is a number).
    """
    if index % 4:
        for name in case.path_parameters or {}:
            if name in ids:
                case.path_parameters[name] = ids[name]
        if isinstance(case.body, dict | list):
            case.body = _with_real_ids(case.body, ids)
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    kwargs["headers"] = {"Authorization": f"Bearer {token}", **(kwargs.get("headers") or {})}
    try:
        prepared = requests.Request(
            **{key: kwargs[key] for key in _SENT if key in kwargs}
        ).prepare()
    except (TypeError, ValueError, requests.RequestException):
        return None
    body = prepared.body
    assert body is None or isinstance(body, bytes | str)
    return httpx.Request(
        prepared.method or "GET",
        prepared.url or "",
        headers=[(name, str(value)) for name, value in prepared.headers.items()],
        content=body,
    )


async def real_ids(
    client: httpx.AsyncClient, owner: AuthedUser, other: AuthedUser
) -> dict[str, str]:
    """A ledger with an account, a transaction, a price and an assertion; their ids by name."""
    books = await open_books(client, owner, "Assets:Bank", "Expenses:Food")
    created = await books.create(
        "2024-03-01", ("Expenses:Food", "12.50", "USD"), ("Assets:Bank", None, None)
    )
    price = await client.post(
        f"{books.url}/prices",
        json={"date": "2024-03-01", "commodity": "EUR", "quote_commodity": "USD", "amount": "1.1"},
        headers=owner.headers,
    )
    assertion = await client.post(
        f"{books.url}/assertions",
        json={
            "account_id": books.id("Assets:Bank"),
            "date": "2024-04-01",
            "amount": "-12.50",
            "commodity": "USD",
        },
        headers=owner.headers,
    )
    member = await client.post(
        f"{books.url}/members", json={"email": other.email, "role": "viewer"}, headers=owner.headers
    )
    for response in (price, assertion, member):
        assert response.status_code == 201, response.text
    commodities = await books.get("/commodities")
    return {
        "ledger_id": books.ledger_id,
        "account_id": books.id("Assets:Bank"),
        "transaction_id": created["id"],
        "price_id": price.json()["id"],
        "assertion_id": assertion.json()["id"],
        "commodity_id": commodities[0]["id"],
        "user_id": other.id,
    }


async def test_no_request_gets_a_server_error_or_an_undocumented_answer(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    owner = await make_user()
    ids = await real_ids(client, owner, await make_user())
    cases = generate(app.openapi(), EXAMPLES)
    found = []
    for index, case in enumerate(cases):
        request = request_of(case, index, ids, owner.token)
        if request is None:
            continue
        response = await client.send(request)
        try:
            case.validate_response(response)
        except AssertionError as failure:
            found.append(f"{_label(case)} -> {response.status_code}: {failure}")
    assert not found, "\n\n".join(found)
