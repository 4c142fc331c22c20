"""Fixtures: every API test runs on SQLite (a file) and on a real PostgreSQL server.

Each backend's database is created once per run from the migrations and dropped at the end;
between tests every table is emptied, so no test depends on another's data or order.
Under CI=true a PostgreSQL server that does not answer fails the run instead of skipping it.
"""

from __future__ import annotations

import inspect
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, text

from finance import migrations
from finance.app import create_app
from finance.auth.ratelimit import create_login_limiter
from finance.config import Settings
from finance.db import Database, create_database
from finance.errors import PROBLEM_JSON
from finance.models import Base

POSTGRES_ADMIN_DSN = os.environ.get(
    "FINANCE_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ["sqlite", "postgresql"]
PASSWORD = "correct horse battery staple"


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Every `async def` test runs on the anyio plugin (asyncio), without a marker in each file."""
    if name.startswith("test") and inspect.iscoroutinefunction(obj):
        pytest.mark.anyio(obj)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def _test_settings(database_url: str, tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "DATABASE_URL": database_url,
        "FINANCE_SECRET_KEY": "test-secret-" + "x" * 40,
        "FINANCE_MIGRATE_ON_START": False,
        # Cheap hashing keeps the suite fast; the production cost is the settings' default.
        "FINANCE_ARGON2_TIME_COST": 1,
        "FINANCE_ARGON2_MEMORY_KIB": 1024,
        # A test machine may be busy with other work: a bulk COPY that streams its rows from
        # a starved test process must not meet the production limit of 30 s.
        "FINANCE_DB_STATEMENT_TIMEOUT_MS": 300_000,
        **overrides,
    }
    return Settings(_env_file=None, **values)


async def _create_postgres_database() -> str:
    name = f"finance_test_{uuid.uuid4().hex[:12]}"
    try:
        conn = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true needs PostgreSQL at {POSTGRES_ADMIN_DSN}: {exc}")
        pytest.skip(f"no PostgreSQL server answers at {POSTGRES_ADMIN_DSN} ({exc}); skipped")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def _drop_postgres_database(name: str) -> None:
    conn = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def postgres_url(name: str) -> str:
    base = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0]
    return f"{base}/{name}"


@dataclass
class Backend:
    name: str
    url: str
    workdir: Path

    def settings(self, **overrides: Any) -> Settings:
        return _test_settings(self.url, self.workdir, **overrides)


@pytest.fixture(scope="session", params=BACKENDS)
async def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Backend]:
    """A migrated, empty database on one backend, for the whole run."""
    workdir = tmp_path_factory.mktemp(request.param)
    pg_name: str | None = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{workdir / 'finance.db'}"
    else:
        pg_name = await _create_postgres_database()
        url = postgres_url(pg_name)
    found = Backend(name=request.param, url=url, workdir=workdir)
    database = create_database(found.settings())
    try:
        await migrations.upgrade(database.engine)
    finally:
        await database.dispose()
    try:
        yield found
    finally:
        if pg_name is not None:
            await _drop_postgres_database(pg_name)


@pytest.fixture(scope="session")
async def session_app(backend: Backend) -> AsyncIterator[FastAPI]:
    app = create_app(backend.settings())
    async with app.router.lifespan_context(app):
        yield app


async def _empty_tables(database: Database) -> None:
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    async with database.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))
        else:
            for table in tables:
                await conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - our own names


@pytest.fixture
async def app(session_app: FastAPI) -> AsyncIterator[FastAPI]:
    """The app on an empty database, with fresh login counters."""
    session_app.state.login_limiter = create_login_limiter(session_app.state.settings)
    yield session_app
    await _empty_tables(session_app.state.database)


@pytest.fixture
def database(app: FastAPI) -> Database:
    db: Database = app.state.database
    return db


def asgi_client(app: FastAPI, **transport: Any) -> httpx.AsyncClient:
    """An httpx client over the ASGI app (`transport` e.g. `client=(address, port)`)."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, **transport), base_url="http://testserver"
    )


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as http:
        yield http


AppFactory = Callable[..., Awaitable[FastAPI]]


@pytest.fixture
async def make_app(backend: Backend, app: FastAPI) -> AsyncIterator[AppFactory]:
    """Builds more apps (started) over the test database, with other settings.

    `await make_app(FINANCE_REGISTRATION_OPEN=False)`; their tables are emptied like `app`'s.
    """
    async with AsyncExitStack() as stack:

        async def make(**overrides: Any) -> FastAPI:
            built = create_app(backend.settings(**overrides))
            await stack.enter_async_context(built.router.lifespan_context(built))
            return built

        yield make


@pytest.fixture
async def fresh_url(backend: Backend, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty database (no tables at all) on the test's backend."""
    if backend.name == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
        return
    name = await _create_postgres_database()
    try:
        yield postgres_url(name)
    finally:
        await _drop_postgres_database(name)


@contextmanager
def statements(database: Database) -> Iterator[list[str]]:
    """The SQL that the database runs meanwhile, reads and writes."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    for engine in database.engines:
        event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for engine in database.engines:
            event.remove(engine.sync_engine, "before_cursor_execute", record)


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status; its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:finance:problem:")
    assert body["title"]
    return body


@dataclass
class AuthedUser:
    id: str
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


UserFactory = Callable[..., Awaitable[AuthedUser]]


@pytest.fixture
def make_user(client: httpx.AsyncClient) -> UserFactory:
    """Registers a user and signs in; the first one made in a test is the server's admin."""

    async def make(email: str | None = None, password: str = PASSWORD) -> AuthedUser:
        email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
        response = await client.post(
            "/api/v1/auth/register",
            json={"email": email, "password": password, "display_name": email.split("@")[0]},
        )
        assert response.status_code == 201, response.text
        user_id = response.json()["id"]
        response = await client.post(
            "/api/v1/auth/token", data={"username": email, "password": password}
        )
        assert response.status_code == 200, response.text
        return AuthedUser(id=user_id, email=email.lower(), token=response.json()["access_token"])

    return make


@pytest.fixture
async def user(make_user: UserFactory) -> AuthedUser:
    return await make_user()
