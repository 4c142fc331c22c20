"""Operations: liveness, readiness, request ids and logs, the OpenAPI document and /docs."""

from __future__ import annotations

import logging
import re

import httpx
import pytest

from finance import migrations
from tests.conftest import PASSWORD, AppFactory, AuthedUser, Backend, asgi_client, assert_problem


async def test_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_at_head(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "revision": migrations.head_revision()}


async def test_ready_is_503_until_migrated_and_start_up_migrates(
    make_app: AppFactory, fresh_url: str
) -> None:
    behind = await make_app(DATABASE_URL=fresh_url)
    async with asgi_client(behind) as client:
        body = assert_problem(await client.get("/ready"), 503)
        assert "finance db upgrade" in body["detail"]
        assert (await client.get("/health")).status_code == 200
    # An app that migrates on start (the default of `finance serve`) makes it ready.
    migrating = await make_app(DATABASE_URL=fresh_url, FINANCE_MIGRATE_ON_START=True)
    async with asgi_client(migrating) as client:
        assert (await client.get("/ready")).json()["revision"] == migrations.head_revision()
    async with asgi_client(behind) as client:
        assert (await client.get("/ready")).status_code == 200


async def test_ready_is_503_when_the_database_does_not_answer(
    make_app: AppFactory, backend: Backend
) -> None:
    if backend.name == "sqlite":
        url = "sqlite+aiosqlite:////nonexistent-folder/finance.db"
    else:
        url = "postgresql://postgres@127.0.0.1:1/finance"
    unreachable = await make_app(DATABASE_URL=url)
    async with asgi_client(unreachable) as client:
        body = assert_problem(await client.get("/ready"), 503)
    assert body["detail"] == "The database does not answer"


async def test_request_ids_are_echoed_or_made(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="finance.requests"):
        given = await client.get("/health", headers={"X-Request-ID": "abc-123"})
        made = await client.get("/nowhere")
        refused = await client.get("/health", headers={"X-Request-ID": "x" * 65})
    assert given.headers["x-request-id"] == "abc-123"
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    assert made.headers["content-type"] == "application/problem+json"
    assert re.fullmatch(r"[0-9a-f]{32}", refused.headers["x-request-id"])
    lines = [record.getMessage() for record in caplog.records if record.name == "finance.requests"]
    assert any(line.startswith("GET /health 200 ") and "id=abc-123" in line for line in lines)
    assert any(
        "GET /nowhere 404 " in line and made.headers["x-request-id"] in line for line in lines
    )


async def test_the_openapi_document_and_the_docs_sign_in(
    client: httpx.AsyncClient, user: AuthedUser
) -> None:
    document = (await client.get("/openapi.json")).json()
    scheme = document["components"]["securitySchemes"]["OAuth2PasswordBearer"]
    assert scheme["flows"]["password"]["tokenUrl"] == "/api/v1/auth/token"
    token_operation = document["paths"]["/api/v1/auth/token"]["post"]
    assert "application/x-www-form-urlencoded" in token_operation["requestBody"]["content"]
    me = document["paths"]["/api/v1/users/me"]["get"]
    assert me["security"] == [{"OAuth2PasswordBearer": []}]
    assert "application/problem+json" in me["responses"]["401"]["content"]
    for path in ("/api/v1/auth/register", "/api/v1/users", "/ready"):
        for operation in document["paths"][path].values():
            assert any(code.startswith(("4", "5")) for code in operation["responses"])
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text
    # What Swagger UI's Authorize dialog posts for the password flow.
    form = {"grant_type": "password", "username": user.email, "password": PASSWORD, "scope": ""}
    signed_in = await client.post("/api/v1/auth/token", data=form)
    assert signed_in.status_code == 200, signed_in.text
    wrong_grant = await client.post("/api/v1/auth/token", data={**form, "grant_type": "code"})
    assert_problem(wrong_grant, 422)
