"""Registration, sign-in, sign-out, personal tokens, passwords and login throttling."""

from __future__ import annotations

import hashlib
import hmac
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from finance.auth.ratelimit import create_login_limiter
from finance.config import Settings
from finance.db import Database
from finance.errors import TooManyRequests
from finance.models import AuthToken, TokenKind, User
from tests.conftest import (
    PASSWORD,
    AppFactory,
    AuthedUser,
    UserFactory,
    asgi_client,
    assert_problem,
)


async def register(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, **extra: object
) -> httpx.Response:
    body = {"email": email, "password": password, "display_name": "Someone", **extra}
    return await client.post("/api/v1/auth/register", json=body)


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD
) -> httpx.Response:
    return await client.post("/api/v1/auth/token", data={"username": email, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def app_settings(app: FastAPI) -> Settings:
    settings: Settings = app.state.settings
    return settings


# Registration


async def test_register_answers_the_user_and_the_first_one_administers(
    client: httpx.AsyncClient,
) -> None:
    first = await register(client, "Ada@Example.COM")
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["email"] == "ada@example.com"
    assert body["is_admin"] is True
    assert body["is_active"] is True
    assert "password" not in first.text
    assert "hash" not in first.text
    second = await register(client, "bob@example.com")
    assert second.status_code == 201
    assert second.json()["is_admin"] is False


async def test_register_refuses_a_taken_email_in_any_case(client: httpx.AsyncClient) -> None:
    assert (await register(client, "ada@example.com")).status_code == 201
    assert_problem(await register(client, "ada@example.com"), 409)
    body = assert_problem(await register(client, " ADA@example.com"), 409)
    assert "already exists" in body["detail"]


async def test_register_refuses_bad_input(client: httpx.AsyncClient) -> None:
    short = assert_problem(await register(client, "ada@example.com", password="short"), 422)
    assert "at least 10 characters" in short["detail"]
    assert_problem(await register(client, "not an email"), 422)
    unknown = assert_problem(await register(client, "ada@example.com", is_admin=True), 422)
    assert unknown["errors"][0]["loc"] == ["body", "is_admin"]
    assert_problem(await register(client, "ada@example.com", display_name="  "), 422)


async def test_register_can_be_closed(make_app: AppFactory) -> None:
    closed = await make_app(FINANCE_REGISTRATION_OPEN=False)
    async with asgi_client(closed) as client:
        body = assert_problem(await register(client, "ada@example.com"), 403)
    assert "closed" in body["detail"]


# Sign-in and sessions


async def test_sign_in_with_the_oauth2_form(client: httpx.AsyncClient) -> None:
    await register(client, "ada@example.com")
    response = await sign_in(client, "ADA@example.com")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    me = await client.get("/api/v1/users/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["email"] == "ada@example.com"
    # The form's JSON twin is not accepted: the endpoint is the OAuth2 password flow.
    as_json = await client.post(
        "/api/v1/auth/token", json={"username": "ada@example.com", "password": PASSWORD}
    )
    assert_problem(as_json, 422)


async def test_a_wrong_password_and_an_unknown_email_look_the_same(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "ada@example.com")
    wrong = await sign_in(client, "ada@example.com", "not the password")
    unknown = await sign_in(client, "nobody@example.com")
    malformed = await sign_in(client, "not-an-email")
    bodies = [assert_problem(r, 401) for r in (wrong, unknown, malformed)]
    assert bodies[0] == bodies[1] == bodies[2]
    assert bodies[0]["detail"] == "Incorrect email or password"
    assert wrong.headers["www-authenticate"] == unknown.headers["www-authenticate"] == "Bearer"


async def test_bad_tokens_are_refused_with_a_bearer_challenge(
    client: httpx.AsyncClient, user: AuthedUser
) -> None:
    for headers in ({}, bearer("garbage"), bearer(user.token + "x"), {"Authorization": "Basic x"}):
        response = await client.get("/api/v1/users/me", headers=headers)
        assert_problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"


async def test_an_expired_token_is_refused(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    async with database.sessions() as session, session.begin():
        await session.execute(
            update(AuthToken)
            .where(AuthToken.user_id == uuid.UUID(user.id))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    body = assert_problem(await client.get("/api/v1/users/me", headers=user.headers), 401)
    assert body["detail"] == "The token has expired"


async def test_logout_revokes_the_token_in_use_only(
    client: httpx.AsyncClient, user: AuthedUser
) -> None:
    other = (await sign_in(client, user.email)).json()["access_token"]
    response = await client.post("/api/v1/auth/logout", headers=user.headers)
    assert response.status_code == 204
    body = assert_problem(await client.get("/api/v1/users/me", headers=user.headers), 401)
    assert body["detail"] == "The token has been revoked"
    assert_problem(await client.post("/api/v1/auth/logout", headers=user.headers), 401)
    assert (await client.get("/api/v1/users/me", headers=bearer(other))).status_code == 200


async def test_tokens_are_stored_only_as_a_keyed_sha256(
    client: httpx.AsyncClient, user: AuthedUser, database: Database, app_settings: Settings
) -> None:
    async with database.read_sessions() as session:
        stored = (await session.scalars(select(AuthToken))).one()
    expected = hmac.new(app_settings.secret, user.token.encode(), hashlib.sha256).hexdigest()
    assert stored.token_hash == expected
    assert stored.kind == TokenKind.SESSION
    assert user.token not in {stored.token_hash, stored.name}


async def test_the_last_use_of_a_token_is_recorded(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 200
    async with database.read_sessions() as session:
        used = await session.scalar(select(AuthToken.last_used_at))
    assert used is not None
    assert datetime.now(UTC) - used < timedelta(minutes=1)


# Personal access tokens


async def test_personal_tokens_show_their_secret_once(
    client: httpx.AsyncClient, user: AuthedUser, database: Database, app_settings: Settings
) -> None:
    created = await client.post(
        "/api/v1/auth/tokens", json={"name": "backup"}, headers=user.headers
    )
    assert created.status_code == 201, created.text
    body = created.json()
    secret = body["token"]
    assert secret.startswith("fp_")
    assert body["name"] == "backup"
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(days=364) < expires - datetime.now(UTC) <= timedelta(days=365)

    listed = await client.get("/api/v1/auth/tokens", headers=user.headers)
    assert listed.status_code == 200
    assert [t["id"] for t in listed.json()] == [body["id"]]
    assert "token" not in listed.json()[0]
    assert secret not in listed.text

    async with database.read_sessions() as session:
        row = await session.get(AuthToken, uuid.UUID(body["id"]))
    assert row is not None
    assert row.kind == TokenKind.PERSONAL
    assert (
        row.token_hash == hmac.new(app_settings.secret, secret.encode(), hashlib.sha256).hexdigest()
    )

    # The script's token works like a sign-in, and signing out elsewhere does not touch it.
    assert (await client.get("/api/v1/users/me", headers=bearer(secret))).status_code == 200
    assert (await client.post("/api/v1/auth/logout", headers=user.headers)).status_code == 204
    assert (await client.get("/api/v1/users/me", headers=bearer(secret))).status_code == 200

    deleted = await client.delete(f"/api/v1/auth/tokens/{body['id']}", headers=bearer(secret))
    assert deleted.status_code == 204
    assert_problem(await client.get("/api/v1/users/me", headers=bearer(secret)), 401)


async def test_personal_tokens_of_others_are_not_found(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    owner = await make_user()
    intruder = await make_user()
    created = await client.post("/api/v1/auth/tokens", json={"name": "mine"}, headers=owner.headers)
    token_id = created.json()["id"]
    missing = await client.delete(f"/api/v1/auth/tokens/{token_id}", headers=intruder.headers)
    gone = await client.delete(f"/api/v1/auth/tokens/{uuid.uuid4()}", headers=intruder.headers)
    # Someone else's token answers exactly like one that does not exist.
    assert assert_problem(missing, 404)["detail"] == assert_problem(gone, 404)["detail"]
    assert (await client.get("/api/v1/auth/tokens", headers=intruder.headers)).json() == []
    assert len((await client.get("/api/v1/auth/tokens", headers=owner.headers)).json()) == 1
    still = await client.get("/api/v1/users/me", headers=bearer(created.json()["token"]))
    assert still.status_code == 200


async def test_personal_token_expiry_bounds(client: httpx.AsyncClient, user: AuthedUser) -> None:
    now = datetime.now(UTC)

    async def create(expires_at: str) -> httpx.Response:
        return await client.post(
            "/api/v1/auth/tokens",
            json={"name": "t", "expires_at": expires_at},
            headers=user.headers,
        )

    soon = await create((now + timedelta(days=1)).isoformat())
    assert soon.status_code == 201
    assert datetime.fromisoformat(soon.json()["expires_at"]) == now + timedelta(days=1)
    assert (await create((now + timedelta(days=364)).isoformat())).status_code == 201
    past = assert_problem(await create((now - timedelta(minutes=1)).isoformat()), 422)
    assert "future" in past["detail"]
    far = assert_problem(await create((now + timedelta(days=366)).isoformat()), 422)
    assert "365 days" in far["detail"]
    naive = assert_problem(await create("2030-01-01T00:00:00"), 422)
    assert "time zone" in naive["detail"]
    assert_problem(await create("soon"), 422)


# Passwords


async def test_changing_the_password_needs_the_current_one_and_signs_out_other_sessions(
    client: httpx.AsyncClient, user: AuthedUser
) -> None:
    other = (await sign_in(client, user.email)).json()["access_token"]
    script = (
        await client.post("/api/v1/auth/tokens", json={"name": "s"}, headers=user.headers)
    ).json()["token"]
    new = "a brand new passphrase"
    missing = await client.patch(
        "/api/v1/users/me", json={"new_password": new}, headers=user.headers
    )
    assert_problem(missing, 422)
    wrong = await client.patch(
        "/api/v1/users/me",
        json={"current_password": "not it at all", "new_password": new},
        headers=user.headers,
    )
    assert_problem(wrong, 422)
    too_short = await client.patch(
        "/api/v1/users/me",
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=user.headers,
    )
    assert_problem(too_short, 422)
    # None of the refused attempts signed anyone out.
    assert (await client.get("/api/v1/users/me", headers=bearer(other))).status_code == 200

    changed = await client.patch(
        "/api/v1/users/me",
        json={"current_password": PASSWORD, "new_password": new},
        headers=user.headers,
    )
    assert changed.status_code == 200, changed.text
    assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 200
    assert_problem(await client.get("/api/v1/users/me", headers=bearer(other)), 401)
    assert (await client.get("/api/v1/users/me", headers=bearer(script))).status_code == 200
    assert_problem(await sign_in(client, user.email), 401)
    assert (await sign_in(client, user.email, new)).status_code == 200


async def test_hashes_are_upgraded_at_sign_in_when_the_cost_rises(
    client: httpx.AsyncClient, user: AuthedUser, database: Database, make_app: AppFactory
) -> None:
    async def stored_hash() -> str:
        async with database.read_sessions() as session:
            found = await session.scalar(select(User.password_hash).where(User.email == user.email))
        assert found is not None
        return found

    before = await stored_hash()
    assert before.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    stronger = await make_app(FINANCE_ARGON2_TIME_COST=2, FINANCE_ARGON2_MEMORY_KIB=2048)
    async with asgi_client(stronger) as other_client:
        assert_problem(await sign_in(other_client, user.email, "wrong password"), 401)
        assert await stored_hash() == before
        assert (await sign_in(other_client, user.email)).status_code == 200
    after = await stored_hash()
    assert after.startswith("$argon2id$v=19$m=2048,t=2,p=1$")
    # A server still on the old settings verifies the stronger hash: nobody is locked out.
    assert (await sign_in(client, user.email)).status_code == 200


def test_the_default_password_cost_meets_owasp() -> None:
    settings = Settings(
        _env_file=None, DATABASE_URL="postgresql://x/y", FINANCE_SECRET_KEY="k" * 40
    )
    # OWASP's Argon2id minimums, in the equivalent pairs it lists (memory KiB, iterations).
    owasp = {47_104: 1, 19_456: 2, 12_288: 3, 9_216: 4, 7_168: 5}
    assert any(
        settings.argon2_memory_kib >= memory and settings.argon2_time_cost >= time
        for memory, time in owasp.items()
    )
    assert settings.password_min_length >= 8


# Throttling


async def test_sign_in_is_throttled_per_account(
    make_app: AppFactory, client: httpx.AsyncClient
) -> None:
    await register(client, "ada@example.com")
    throttled = await make_app(FINANCE_LOGIN_RATE_PER_ACCOUNT="3/minute")
    async with asgi_client(throttled) as http:
        # Only failures count against the account: a success spends nothing.
        assert_problem(await sign_in(http, "ada@example.com", "wrong password"), 401)
        for _ in range(3):
            assert (await sign_in(http, "ada@example.com")).status_code == 200
        for _ in range(2):
            assert_problem(await sign_in(http, "ADA@example.com", "wrong password"), 401)
        blocked = await sign_in(http, "ada@example.com")
        body = assert_problem(blocked, 429)
        assert 0 < int(blocked.headers["retry-after"]) <= 60
        assert "Too many" in body["detail"]
        # Another account from the same address is not blocked by this one's count.
        assert_problem(await sign_in(http, "bob@example.com"), 401)


async def test_sign_in_is_throttled_per_client_address(
    make_app: AppFactory, client: httpx.AsyncClient
) -> None:
    await register(client, "ada@example.com")
    throttled = await make_app(FINANCE_LOGIN_RATE_PER_CLIENT="4/minute")
    async with asgi_client(throttled, client=("203.0.113.7", 1234)) as http:
        for number in range(4):
            assert_problem(await sign_in(http, f"guess{number}@example.com"), 401)
        blocked = await sign_in(http, "ada@example.com")
        assert_problem(blocked, 429)
        assert int(blocked.headers["retry-after"]) >= 1
    async with asgi_client(throttled, client=("203.0.113.8", 1234)) as elsewhere:
        assert (await sign_in(elsewhere, "ada@example.com")).status_code == 200


def _redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


REDIS_URL = os.environ.get("FINANCE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def redis_url() -> str:
    if not _redis_answers():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true needs Redis at 127.0.0.1:6379")
        pytest.skip("no Redis server answers at 127.0.0.1:6379; skipped")
    return REDIS_URL


async def test_the_limiter_counts_in_redis(redis_url: str) -> None:
    settings = Settings(
        _env_file=None,
        DATABASE_URL="postgresql://x/y",
        FINANCE_SECRET_KEY="k" * 40,
        FINANCE_REDIS_URL=redis_url,
        FINANCE_LOGIN_RATE_PER_ACCOUNT="2/minute",
        FINANCE_LOGIN_RATE_PER_CLIENT="3/minute",
    )
    email = f"{uuid.uuid4().hex}@example.com"
    client = f"test-{uuid.uuid4().hex}"
    # Two limiters stand for two server processes sharing the count.
    first, second = create_login_limiter(settings), create_login_limiter(settings)
    assert type(first.limiter.storage).__name__ == "RedisStorage"
    try:
        await first.check(email, client)
        await first.failed(email)
        await second.check(email, client)
        await second.failed(email)
        # The account's two failures, counted by both processes, block a third attempt.
        with pytest.raises(TooManyRequests) as refused:
            await first.check(email, client)
        assert 1 <= int(refused.value.headers["Retry-After"]) <= 60
        await first.check(f"other-{email}", client)  # the address's third attempt
        with pytest.raises(TooManyRequests):
            await second.check(f"another-{email}", client)
    finally:
        for item, key in (
            (first.per_account, f"account:{email}"),
            (first.per_account, f"account:other-{email}"),
            (first.per_account, f"account:another-{email}"),
            (first.per_client, f"client:{client}"),
        ):
            await first.limiter.clear(item, "login", key)


async def test_the_app_throttles_through_redis(
    make_app: AppFactory, client: httpx.AsyncClient, redis_url: str
) -> None:
    email = f"{uuid.uuid4().hex}@example.com"
    await register(client, email)
    throttled = await make_app(
        FINANCE_REDIS_URL=redis_url, FINANCE_LOGIN_RATE_PER_ACCOUNT="1/minute"
    )
    limiter = throttled.state.login_limiter
    address = f"test-{uuid.uuid4().hex}"
    try:
        async with asgi_client(throttled, client=(address, 1234)) as http:
            assert_problem(await sign_in(http, email, "wrong password"), 401)
            assert_problem(await sign_in(http, email), 429)
    finally:
        await limiter.limiter.clear(limiter.per_account, "login", f"account:{email}")
        await limiter.limiter.clear(limiter.per_client, "login", f"client:{address}")
