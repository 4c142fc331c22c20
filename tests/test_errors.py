"""Every failure the API can answer is RFC 9457 problem+json, with nothing internal in it."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI, status
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from finance.db import SessionDep
from finance.errors import Conflict
from finance.models import User
from tests.conftest import AppFactory, asgi_client, assert_problem

TEN_MEGABYTES = 10 * 1024 * 1024


class NewUser(BaseModel):
    email: str


def _user(email: str) -> User:
    return User(email=email, display_name="test", password_hash="not a hash")


def busy() -> OperationalError:
    """What SQLAlchemy raises when SQLite's lock could not be had in time."""
    return OperationalError("INSERT INTO users ...", {}, Exception("database is locked"))


def add_test_routes(app: FastAPI) -> dict[str, int]:
    """Routes that fail on purpose; returns the counter of the calls of the flaky one."""
    calls = {"flaky": 0}

    @app.get("/test/boom")
    async def boom() -> None:
        raise RuntimeError("SELECT password_hash FROM users WHERE secret = 'hunter2'")

    @app.post("/test/duplicate", status_code=status.HTTP_201_CREATED)
    async def duplicate(session: SessionDep) -> None:
        session.add_all([_user("twin@example.com"), _user("twin@example.com")])
        await session.flush()

    @app.post("/test/write-then-fail")
    async def write_then_fail(body: NewUser, session: SessionDep) -> None:
        session.add(_user(body.email))
        await session.flush()
        raise Conflict("Refused after writing")

    @app.post("/test/flaky", status_code=status.HTTP_201_CREATED)
    async def flaky(body: NewUser, session: SessionDep) -> NewUser:
        calls["flaky"] += 1
        session.add(_user(f"{calls['flaky']}-{body.email}"))
        await session.flush()
        if calls["flaky"] == 1:
            raise busy()
        return body

    @app.post("/test/always-busy")
    async def always_busy(session: SessionDep) -> None:
        raise busy()

    return calls


async def test_unknown_route_and_method(client: httpx.AsyncClient) -> None:
    missing = assert_problem(await client.get("/api/v1/nothing-here"), 404)
    assert missing["instance"] == "/api/v1/nothing-here"
    assert missing["type"] == "urn:finance:problem:not-found"
    wrong_method = await client.delete("/api/v1/auth/register")
    assert_problem(wrong_method, 405)
    assert wrong_method.headers["allow"] == "POST"


async def test_malformed_json(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        content=b'{"email": "ada@example.com", "password": ',
        headers={"content-type": "application/json"},
    )
    body = assert_problem(response, 422)
    assert body["errors"][0]["type"] == "json_invalid"


async def test_validation_errors_say_where_and_what_but_echo_nothing(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": "ada@example.com", "password": ["my secret passphrase"], "extra": 1},
    )
    body = assert_problem(response, 422)
    assert body["type"] == "urn:finance:problem:validation"
    assert body["title"] == "Invalid request"
    locations = {tuple(error["loc"]) for error in body["errors"]}
    assert locations == {("body", "password"), ("body", "display_name"), ("body", "extra")}
    for error in body["errors"]:
        assert set(error) == {"loc", "msg", "type"}
    assert body["detail"].startswith("body.")
    assert "my secret passphrase" not in response.text


async def test_a_body_over_the_limit_gets_413(client: httpx.AsyncClient) -> None:
    declared = await client.post(
        "/api/v1/auth/register",
        content=b"x" * TEN_MEGABYTES,
        headers={"content-type": "application/json"},
    )
    assert "1048576 bytes" in assert_problem(declared, 413)["detail"]

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(TEN_MEGABYTES // 65536):
            yield b"x" * 65536

    streamed = await client.post(
        "/api/v1/auth/register", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in streamed.request.headers
    assert streamed.request.headers["transfer-encoding"] == "chunked"
    assert_problem(streamed, 413)
    # Just under the limit is read (and refused for what it says, not for its size).
    near = await client.post(
        "/api/v1/auth/register",
        content=b" " * (1024 * 1024 - 2) + b"{}",
        headers={"content-type": "application/json"},
    )
    assert_problem(near, 422)


async def test_an_unexpected_exception_is_a_bare_500(make_app: AppFactory) -> None:
    app = await make_app()
    add_test_routes(app)
    async with asgi_client(app) as client:
        response = await client.get("/test/boom", headers={"X-Request-ID": "trace-me-42"})
    body = assert_problem(response, 500)
    assert response.headers["x-request-id"] == "trace-me-42"
    assert body["detail"].startswith("Something went wrong on our side")
    for leak in ("Traceback", "RuntimeError", "SELECT", "hunter2", "password_hash", ".py"):
        assert leak not in response.text


async def test_an_integrity_error_is_a_409_without_sql(make_app: AppFactory) -> None:
    app = await make_app()
    add_test_routes(app)
    async with asgi_client(app) as client:
        response = await client.post("/test/duplicate")
    body = assert_problem(response, 409)
    assert "already exists" in body["detail"]
    for leak in ("INSERT", "users", "UNIQUE", "duplicate key", "twin@example.com"):
        assert leak not in response.text


async def test_a_transient_conflict_is_retried_from_a_clean_slate(make_app: AppFactory) -> None:
    app = await make_app()
    calls = add_test_routes(app)
    async with asgi_client(app) as client:
        response = await client.post("/test/flaky", json={"email": "ada@example.com"})
        assert response.status_code == 201, response.text
        # The retry saw the same body; the first attempt's write was rolled back.
        assert response.json() == {"email": "ada@example.com"}
        assert calls["flaky"] == 2
        async with app.state.database.read_sessions() as session:
            emails = list(await session.scalars(select(User.email)))
        assert emails == ["2-ada@example.com"]

        exhausted = await client.post("/test/always-busy")
    body = assert_problem(exhausted, 503)
    assert exhausted.headers["retry-after"] == "1"
    assert "busy" in body["detail"]


async def test_a_failing_request_leaves_no_partial_write(make_app: AppFactory) -> None:
    app = await make_app()
    add_test_routes(app)
    async with asgi_client(app) as client:
        refused = await client.post("/test/write-then-fail", json={"email": "ada@example.com"})
    assert_problem(refused, 409)
    async with app.state.database.read_sessions() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 0


def test_problem_types_are_distinct() -> None:
    from finance import errors

    kinds = [
        cls
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.AppError) and cls is not errors.AppError
    ]
    for first, second in itertools.combinations(kinds, 2):
        assert (first.status, first.type) != (second.status, second.type)


async def test_the_document_says_every_error_is_a_problem(client: httpx.AsyncClient) -> None:
    """Not FastAPI's defaults: an error model filed under application/json, and a 422 of
    its own `HTTPValidationError` shape; and a body that cannot be decoded is a 400."""
    document = (await client.get("/openapi.json")).json()
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    errors = 0
    for operations in document["paths"].values():
        for operation in operations.values():
            for code, answer in operation["responses"].items():
                if code.startswith(("4", "5")):
                    assert answer["content"] == problem
                    errors += 1
            if "requestBody" in operation:
                assert "400" in operation["responses"]
    assert errors > 100
    assert "HTTPValidationError" not in document["components"]["schemas"]
    undecodable = await client.post(
        "/api/v1/auth/register",
        content=b'{"email": "\xff"}',
        headers={"content-type": "application/json"},
    )
    assert_problem(undecodable, 400)
