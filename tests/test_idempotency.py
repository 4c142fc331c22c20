"""Idempotency-Key: replays, conflicts, released keys, per-user scope and retention."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import APIRouter, FastAPI, status
from sqlalchemy import func, select

from finance.app import create_app
from finance.auth.deps import CurrentUser
from finance.db import Database, SessionDep
from finance.idempotency import PURGED_AFTER, STALE_CLAIM, IdempotentRoute, fingerprint
from finance.models import Account, IdempotencyKey, Ledger
from finance.models.base import utcnow
from tests.conftest import AuthedUser, Backend, UserFactory
from tests.test_ledgers import create_ledger


async def count(database: Database, model: type[Account] | type[Ledger]) -> int:
    async with database.read_sessions() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


def keyed(user: AuthedUser, key: str) -> dict[str, str]:
    return {**user.headers, "Idempotency-Key": key}


async def test_a_retry_replays_the_first_response_and_creates_nothing(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    body = {"name": "Home", "base_currency": "EUR"}
    first = await client.post("/api/v1/ledgers", json=body, headers=keyed(user, "k-1"))
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    again = await client.post("/api/v1/ledgers", json=body, headers=keyed(user, "k-1"))
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert again.headers["content-type"] == first.headers["content-type"]
    assert await count(database, Ledger) == 1
    # Without the key, the same body creates another.
    other = await client.post("/api/v1/ledgers", json=body, headers=user.headers)
    assert other.status_code == 201
    assert await count(database, Ledger) == 2


async def test_same_key_with_another_body_is_refused(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    ledger = await create_ledger(client, user)
    path = f"/api/v1/ledgers/{ledger['id']}/accounts"
    response = await client.post(path, json={"name": "Assets:Cash"}, headers=keyed(user, "k"))
    assert response.status_code == 201
    response = await client.post(path, json={"name": "Assets:Bank"}, headers=keyed(user, "k"))
    assert response.status_code == 422
    assert "different request" in response.json()["detail"]
    other_path = f"/api/v1/ledgers/{uuid.uuid4()}/accounts"
    response = await client.post(other_path, json={"name": "Assets:Cash"}, headers=keyed(user, "k"))
    assert response.status_code == 422
    assert await count(database, Account) == 1


async def test_a_failed_request_releases_its_key(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    ledger = await create_ledger(client, user)
    path = f"/api/v1/ledgers/{ledger['id']}/accounts"
    existing = await client.post(path, json={"name": "Assets:Cash"}, headers=user.headers)
    body = {"name": "Assets:Cash", "note": "again"}
    conflict = await client.post(path, json=body, headers=keyed(user, "retry-me"))
    assert conflict.status_code == 409
    invalid = await client.post(path, json={"name": "Cash"}, headers=keyed(user, "bad-body"))
    assert invalid.status_code == 422
    async with database.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0
    await client.delete(f"{path}/{existing.json()['id']}", headers=user.headers)
    retried = await client.post(path, json=body, headers=keyed(user, "retry-me"))
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers
    replayed = await client.post(path, json=body, headers=keyed(user, "retry-me"))
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json()["id"] == retried.json()["id"]


async def test_keys_belong_to_their_user(
    client: httpx.AsyncClient, make_user: UserFactory, database: Database
) -> None:
    alice, bob = await make_user(), await make_user()
    a = await client.post(
        "/api/v1/ledgers", json={"name": "A", "base_currency": "USD"}, headers=keyed(alice, "same")
    )
    b = await client.post(
        "/api/v1/ledgers", json={"name": "B", "base_currency": "USD"}, headers=keyed(bob, "same")
    )
    assert (a.status_code, b.status_code) == (201, 201)
    assert "idempotent-replayed" not in b.headers
    b_again = await client.post(
        "/api/v1/ledgers", json={"name": "B", "base_currency": "USD"}, headers=keyed(bob, "same")
    )
    assert b_again.json()["id"] == b.json()["id"]
    assert await count(database, Ledger) == 2


async def test_bad_keys_and_unauthenticated_requests(
    client: httpx.AsyncClient, user: AuthedUser
) -> None:
    body = {"name": "Home", "base_currency": "USD"}
    for key in (b"x" * 256, b"tab\there", "café".encode("latin-1")):
        headers = [
            (b"Authorization", user.headers["Authorization"].encode()),
            (b"Idempotency-Key", key),
        ]
        response = await client.post("/api/v1/ledgers", json=body, headers=headers)
        assert response.status_code == 422, key
        assert "Idempotency-Key" in response.json()["detail"]
    response = await client.post(
        "/api/v1/ledgers",
        json=body,
        headers={"Idempotency-Key": "k", "Authorization": "Bearer nope"},
    )
    assert response.status_code == 401
    assert (
        await client.post("/api/v1/ledgers", json=body, headers=keyed(user, "x" * 255))
    ).status_code == 201


async def test_expired_keys_are_purged_and_stale_claims_taken_over(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    body = b'{"name":"Home","base_currency":"USD"}'
    path = "/api/v1/ledgers"
    now = utcnow()
    user_id = uuid.UUID(user.id)
    async with database.sessions.begin() as session:
        for key, age in (
            ("old", PURGED_AFTER + timedelta(minutes=1)),
            ("day-old", timedelta(hours=30)),
        ):
            session.add(
                IdempotencyKey(
                    user_id=user_id,
                    key=key,
                    request_hash="0" * 64,
                    state="done",
                    response_status=201,
                    response_body=b"{}",
                    response_headers={},
                    created_at=now - age,
                    locked_at=now - age,
                )
            )
        session.add(
            IdempotencyKey(
                user_id=user_id,
                key="crashed",
                request_hash=fingerprint("POST", path, "", body),
                state="started",
                locked_at=now - STALE_CLAIM - timedelta(seconds=1),
            )
        )
    json_type = {"Content-Type": "application/json"}
    fresh = await client.post(path, content=body, headers={**keyed(user, "fresh"), **json_type})
    assert fresh.status_code == 201
    headers = {**keyed(user, "crashed"), **json_type}
    response = await client.post(path, content=body, headers=headers)
    assert response.status_code == 201, response.text
    async with database.read_sessions() as session:
        rows = {row.key: row.state for row in (await session.scalars(select(IdempotencyKey))).all()}
    assert rows == {"day-old": "done", "crashed": "done", "fresh": "done"}
    replayed = await client.post(path, content=body, headers=headers)
    assert replayed.headers["idempotent-replayed"] == "true"


@pytest.fixture
async def probe_app(
    backend: Backend, app: FastAPI
) -> AsyncIterator[tuple[FastAPI, asyncio.Event, asyncio.Event]]:
    """The app plus test routes: one held open until the test releases it, one whose commit
    fails after the handler has returned. (`app` empties the tables afterwards.)"""
    started, release = asyncio.Event(), asyncio.Event()
    router = APIRouter(route_class=IdempotentRoute)

    @router.post("/api/v1/slow", status_code=status.HTTP_201_CREATED)
    async def slow(user: CurrentUser, session: SessionDep) -> dict[str, str]:
        ledger = Ledger(name="slow", base_currency="USD", created_by=user.id)
        session.add(ledger)
        await session.flush()
        started.set()
        await release.wait()
        return {"id": str(ledger.id)}

    @router.post("/api/v1/fails-at-commit", status_code=status.HTTP_201_CREATED)
    async def fails_at_commit(user: CurrentUser, session: SessionDep) -> dict[str, str]:
        # Not flushed: the foreign-key violation surfaces only when get_db commits.
        session.add(Ledger(name="orphan", base_currency="USD", created_by=uuid.uuid4()))
        return {"user": str(user.id)}

    extra = create_app(backend.settings())
    extra.include_router(router)
    async with extra.router.lifespan_context(extra):
        yield extra, started, release


async def test_a_retry_while_the_first_is_in_progress_gets_409(
    probe_app: tuple[FastAPI, asyncio.Event, asyncio.Event], user: AuthedUser, database: Database
) -> None:
    app, started, release = probe_app
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        first = asyncio.create_task(http.post("/api/v1/slow", json={}, headers=keyed(user, "busy")))
        await asyncio.wait_for(started.wait(), timeout=10)
        retry = await http.post("/api/v1/slow", json={}, headers=keyed(user, "busy"))
        assert retry.status_code == 409
        assert retry.headers["retry-after"] == "1"
        assert "still being processed" in retry.json()["detail"]
        different = await http.post("/api/v1/slow", json={"x": 1}, headers=keyed(user, "busy"))
        assert different.status_code == 422
        release.set()
        done = await asyncio.wait_for(first, timeout=10)
        assert done.status_code == 201
        replay = await http.post("/api/v1/slow", json={}, headers=keyed(user, "busy"))
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.json() == done.json()
    assert await count(database, Ledger) == 1


async def test_a_commit_that_fails_stores_nothing_and_releases_the_key(
    probe_app: tuple[FastAPI, asyncio.Event, asyncio.Event], user: AuthedUser, database: Database
) -> None:
    app, _, _ = probe_app
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        for _ in range(2):
            response = await http.post(
                "/api/v1/fails-at-commit", json={}, headers=keyed(user, "doomed")
            )
            assert response.status_code == 409, response.text
            assert "idempotent-replayed" not in response.headers
    async with database.read_sessions() as session:
        assert await session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0
    assert await count(database, Ledger) == 0
