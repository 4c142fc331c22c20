"""The database module: commit before the response, SQLite's safety settings, concurrent writers."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import TextClause, event, func, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.pool import QueuePool
from starlette.types import Message

from finance.config import Settings
from finance.db import Database, create_database, is_retryable, one_snapshot
from finance.models import AuthToken, User
from finance.sqlite import QUICK, TURN
from tests.books import open_books
from tests.conftest import (
    PASSWORD,
    AppFactory,
    AuthedUser,
    Backend,
    UserFactory,
    asgi_client,
    assert_problem,
)


async def test_the_commit_happens_before_the_response_starts(
    app: FastAPI, backend: Backend
) -> None:
    """A 201 means durable: when the status line goes out, another connection sees the row."""
    payload = json.dumps(
        {"email": "ada@example.com", "password": PASSWORD, "display_name": "Ada"}
    ).encode()
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/auth/register",
        "raw_path": b"/api/v1/auth/register",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    finished = asyncio.Event()
    sent_body = False
    seen: dict[str, Any] = {}
    # Its own engine, so the check cannot reuse the request's connection.
    observer = create_database(backend.settings())

    async def receive() -> Message:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": payload, "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            seen["status"] = message["status"]
            async with observer.engine.connect() as conn:
                seen["email"] = await conn.scalar(
                    select(User.email).where(User.email == "ada@example.com")
                )
        elif message["type"] == "http.response.body" and not message.get("more_body"):
            finished.set()

    try:
        await app(scope, receive, send)
    finally:
        await observer.dispose()
    assert seen == {"status": 201, "email": "ada@example.com"}


async def test_fifty_concurrent_registrations_lose_nothing(
    client: httpx.AsyncClient, database: Database
) -> None:
    async def register(number: int) -> httpx.Response:
        return await client.post(
            "/api/v1/auth/register",
            json={"email": f"u{number}@example.com", "password": PASSWORD, "display_name": "u"},
        )

    responses = await asyncio.gather(*(register(n) for n in range(50)))
    assert [r.status_code for r in responses] == [201] * 50, [r.text for r in responses]
    async with database.read_sessions() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 50
        # Exactly one of the simultaneous first sign-ups became the administrator.
        assert await session.scalar(select(func.count()).where(User.is_admin)) == 1


async def test_fifty_concurrent_token_creations_by_one_user(
    client: httpx.AsyncClient, make_user: UserFactory, database: Database
) -> None:
    user = await make_user()

    async def create(number: int) -> httpx.Response:
        return await client.post(
            "/api/v1/auth/tokens", json={"name": f"t{number}"}, headers=user.headers
        )

    responses = await asyncio.gather(*(create(n) for n in range(50)))
    assert [r.status_code for r in responses] == [201] * 50, [r.text for r in responses]
    listed = await client.get("/api/v1/auth/tokens", headers=user.headers)
    assert sorted(t["name"] for t in listed.json()) == sorted(f"t{n}" for n in range(50))
    async with database.read_sessions() as session:
        assert await session.scalar(select(func.count()).select_from(AuthToken)) == 51


async def test_fifty_concurrent_read_modify_writes(app: FastAPI, database: Database) -> None:
    """The same row incremented by 50 sessions at once: every increment counts."""
    async with database.sessions() as session, session.begin():
        counter = User(email="counter@example.com", display_name="0", password_hash="-")
        session.add(counter)
    # FOR UPDATE is what PostgreSQL needs; on SQLite, BEGIN IMMEDIATE already serializes.
    statement = select(User).where(User.id == counter.id).with_for_update()

    async def increment() -> None:
        async with database.sessions() as session, session.begin():
            row = (await session.scalars(statement)).one()
            row.display_name = str(int(row.display_name) + 1)

    await asyncio.gather(*(increment() for _ in range(50)))
    async with database.read_sessions() as session:
        assert await session.scalar(select(User.display_name).where(User.id == counter.id)) == "50"


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_real_serialization_failure_is_retryable(database: Database) -> None:
    """Two SERIALIZABLE transactions that each read what the other writes (write skew)."""
    serializable = database.engine.execution_options(isolation_level="SERIALIZABLE")

    def new_user() -> Any:
        return insert(User).values(
            email=f"{uuid.uuid4().hex}@x.org", display_name="-", password_hash="-"
        )

    async with serializable.connect() as first, serializable.connect() as second:
        await first.begin()
        await second.begin()
        await first.scalar(select(func.count()).select_from(User))
        await second.scalar(select(func.count()).select_from(User))
        await first.execute(new_user())
        await first.commit()
        # PostgreSQL notices the cycle when the second one writes.
        with pytest.raises(DBAPIError) as caught:
            await second.execute(new_user())
    assert getattr(caught.value.orig, "sqlstate", None) == "40001"
    assert is_retryable(caught.value)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_request_on_a_pooled_connection_that_died_is_run_again(
    backend: Backend, client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    """The pool does not ping before each checkout: a connection the server dropped while it
    was pooled (a restart) fails on its first statement, and the request is run again on a
    fresh one, GET and POST alike. (SQLite has no server to lose.)"""
    assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 200
    killer = await asyncpg.connect(backend.url)
    try:
        killed = await killer.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await killer.close()
    assert killed >= 1
    assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 200
    killer = await asyncpg.connect(backend.url)
    try:
        await killer.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await killer.close()
    response = await client.post(
        "/api/v1/ledgers",
        json={"name": "After a restart", "base_currency": "EUR"},
        headers=user.headers,
    )
    assert response.status_code == 201, response.text


def test_a_connection_lost_during_commit_is_not_retryable() -> None:
    """The transaction may have committed: running the request again could write twice."""
    lost = DBAPIError(None, None, Exception("connection was closed"), connection_invalidated=True)
    assert not is_retryable(lost)
    assert is_retryable(
        DBAPIError("SELECT 1", {}, Exception("connection was closed"), connection_invalidated=True)
    )


def test_other_errors_are_not_retryable() -> None:
    duplicate = IntegrityError("INSERT ...", {}, Exception("UNIQUE constraint failed: users.email"))
    assert not is_retryable(duplicate)
    assert not is_retryable(OperationalError("SELECT 1", {}, Exception("no such table: x")))
    assert not is_retryable(RuntimeError("database is locked"))


# SQLite on its own: pragmas and the write lock.


def _sqlite_settings(path: Path, **overrides: Any) -> Settings:
    return Settings(
        _env_file=None,
        DATABASE_URL=f"sqlite+aiosqlite:///{path}",
        FINANCE_SECRET_KEY="test-secret-" + "x" * 40,
        **overrides,
    )


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    database = create_database(_sqlite_settings(tmp_path / "lock.db"))
    async with database.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (n INTEGER)"))
    try:
        yield database
    finally:
        await database.dispose()


async def test_sqlite_pragmas_on_every_connection(sqlite_db: Database) -> None:
    """The writer's busy timeout is 0: it waits for another process's lock with asyncio
    sleeps (`WriterDialect.do_begin`), since SQLite's busy handler would sleep in the loop."""
    for engine, busy_timeout in ((sqlite_db.engine, 0), (sqlite_db.read_engine, 30000)):
        async with engine.connect() as conn:
            pragmas = {
                name: await conn.scalar(text(f"PRAGMA {name}"))
                for name in ("foreign_keys", "journal_mode", "synchronous", "busy_timeout")
            }
        assert pragmas == {
            "foreign_keys": 1,
            "journal_mode": "wal",
            "synchronous": 2,
            "busy_timeout": busy_timeout,
        }


async def _count_then_write(database: Database) -> int:
    """A write that reads before it writes: what it saw tells whether an update was lost."""
    async with database.sessions() as session, session.begin():
        seen = await session.scalar(text("SELECT count(*) FROM t"))
        await session.execute(text("INSERT INTO t VALUES (2)"))
        return int(seen or 0)


async def test_sqlite_writers_queue_for_the_lock_instead_of_failing(sqlite_db: Database) -> None:
    async with sqlite_db.sessions() as first:
        # The first statement of a write session begins with BEGIN IMMEDIATE: the lock is taken.
        assert await first.scalar(text("SELECT count(*) FROM t")) == 0

        async with sqlite_db.read_sessions() as reader:
            # Readers begin deferred and, in WAL mode, are never held up by the writer.
            assert await reader.scalar(text("SELECT count(*) FROM t")) == 0

        waiting = asyncio.create_task(_count_then_write(sqlite_db))
        done, _ = await asyncio.wait({waiting}, timeout=0.3)
        assert not done, "the second writer should wait for the first one's lock"
        await first.execute(text("INSERT INTO t VALUES (1)"))
        await first.commit()
    # It began after the first committed, so it read the first one's row: no lost update.
    assert await waiting == 1


async def test_sqlite_busy_lock_is_retryable(tmp_path: Path, sqlite_db: Database) -> None:
    impatient = create_database(
        _sqlite_settings(tmp_path / "lock.db", FINANCE_DB_BUSY_TIMEOUT_MS=0)
    )
    try:
        async with sqlite_db.sessions() as holder:
            await holder.execute(text("SELECT 1"))
            async with impatient.sessions() as other:
                with pytest.raises(OperationalError) as caught:
                    # Even a read in a write session asks for the write lock first.
                    await other.execute(text("SELECT count(*) FROM t"))
    finally:
        await impatient.dispose()
    assert "database is locked" in str(caught.value)
    assert is_retryable(caught.value)


async def test_sqlite_waits_for_another_process_without_stalling_the_server(
    tmp_path: Path, sqlite_db: Database
) -> None:
    """Another process (here: another engine, with connections of its own) holds the write
    lock. Our writer waits for it, the server meanwhile goes on answering, and once the lock
    is free our writer reads what the other one committed: no lost update."""
    other = create_database(_sqlite_settings(tmp_path / "lock.db"))
    try:
        async with other.sessions() as holder:
            await holder.execute(text("INSERT INTO t VALUES (1)"))
            waiting = asyncio.create_task(_count_then_write(sqlite_db))
            done, _ = await asyncio.wait({waiting}, timeout=0.3)
            assert not done, "the writer should wait for the other process's lock"
            async with sqlite_db.read_sessions() as reader:
                assert await reader.scalar(text("SELECT count(*) FROM t")) == 0
            await holder.commit()
        assert await waiting == 1
    finally:
        await other.dispose()


async def test_a_request_that_waits_out_the_pool_timeout_gets_a_503(
    make_app: AppFactory, user: AuthedUser
) -> None:
    """No connection came free in time (on SQLite: the writer was busy all along): a clear
    503 with Retry-After, and the request is not run again, since it already waited."""
    app = await make_app(
        FINANCE_DB_POOL_SIZE=1, FINANCE_DB_MAX_OVERFLOW=0, FINANCE_DB_POOL_TIMEOUT=0.2
    )
    database: Database = app.state.database
    async with database.sessions() as holder, asgi_client(app) as client:
        await holder.execute(select(1))  # holds the only connection that may write
        response = await client.post(
            "/api/v1/ledgers", json={"name": "Waited", "base_currency": "EUR"}, headers=user.headers
        )
    problem = assert_problem(response, 503)
    assert problem["title"] == "Service busy"
    assert response.headers["Retry-After"] == "1"


async def test_one_snapshot_keeps_a_read_from_seeing_later_commits(
    database: Database, user: AuthedUser
) -> None:
    """What a report relies on: its later statements see what its first one saw, on
    PostgreSQL (whose reads otherwise run a snapshot per statement) as on SQLite."""

    def users() -> Any:
        return select(func.count()).select_from(User)

    async with database.read_sessions() as reader:
        await reader.execute(select(User.id).where(User.id == uuid.UUID(user.id)))  # auth
        await one_snapshot(reader)
        before = await reader.scalar(users())
        async with database.sessions() as writer, writer.begin():
            await writer.execute(
                insert(User).values(email="late@example.com", display_name="-", password_hash="-")
            )
        assert await reader.scalar(users()) == before
    async with database.read_sessions() as reader:
        assert await reader.scalar(users()) == before + 1


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_reads_of_amounts_and_their_precisions_ask_for_one_snapshot(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await open_books(client, user, "Assets:Cash", "Income:Salary")
    await books.create("2024-01-31", ("Assets:Cash", "10.00", "EUR"), ("Income:Salary", None, None))
    cash = books.id("Assets:Cash")
    asked: list[Any] = []

    def record(_connection: Any, options: dict[str, Any]) -> None:
        asked.append(options.get("isolation_level"))

    event.listen(database.engine.sync_engine, "set_connection_execution_options", record)
    try:
        for path in (
            "/balances",
            f"/accounts/{cash}/balance",
            f"/accounts/{cash}/register",
            "/reports/balance-sheet",
            "/reports/income-statement",
        ):
            asked.clear()
            await books.get(path)
            assert "REPEATABLE READ" in asked, path
    finally:
        event.remove(database.engine.sync_engine, "set_connection_execution_options", record)


async def _while_ticking(work: Callable[[], Awaitable[tuple[float, float]]]) -> bool:
    """Whether another task got to run while `work` (which returns when it started and
    ended) was running."""
    ticks: list[float] = []
    stop = asyncio.Event()

    async def other_requests() -> None:
        while not stop.is_set():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.001)

    ticking = asyncio.create_task(other_requests())
    try:
        started, ended = await work()
    finally:
        stop.set()
        await ticking
    return any(started < tick < ended for tick in ticks)


async def test_sqlite_writes_many_rows_on_a_thread_while_the_server_goes_on(
    sqlite_db: Database,
) -> None:
    """The writer runs its statements in the event loop's thread, but not a bulk write: the
    loop goes on running other requests while the rows are written."""

    async def bulk() -> tuple[float, float]:
        async with sqlite_db.sessions() as session, session.begin():
            connection = await session.connection()
            await connection.exec_driver_sql("SELECT 1")
            started = time.monotonic()
            rows = [(n,) for n in range(200_000)]
            await connection.exec_driver_sql("INSERT INTO t VALUES (?)", rows)
            return started, time.monotonic()

    assert await _while_ticking(bulk)
    async with sqlite_db.read_sessions() as reader:
        assert await reader.scalar(text("SELECT count(*) FROM t")) == 200_000


async def test_sqlite_a_cancelled_bulk_write_leaves_nothing(sqlite_db: Database) -> None:
    """Cancelled while its rows are written on a thread, the write is rolled back after that
    thread is done with the connection, never beside it: nothing of it stays."""
    writing = asyncio.Event()

    async def bulk() -> None:
        async with sqlite_db.sessions() as session, session.begin():
            connection = await session.connection()
            await connection.exec_driver_sql("SELECT 1")
            writing.set()
            rows = [(n,) for n in range(200_000)]
            await connection.exec_driver_sql("INSERT INTO t VALUES (?)", rows)

    task = asyncio.create_task(bulk())
    await writing.wait()
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with sqlite_db.sessions() as session, session.begin():
        assert await session.scalar(text("SELECT count(*) FROM t")) == 0
        await session.execute(text("INSERT INTO t VALUES (1)"))  # the writer is usable
    async with sqlite_db.read_sessions() as reader:
        assert await reader.scalar(text("SELECT count(*) FROM t")) == 1


async def test_sqlite_a_long_write_lets_others_run_between_its_statements(
    sqlite_db: Database,
) -> None:
    """Statement after statement, the writer keeps the loop for a turn at most
    (`finance.sqlite.TURN`), then lets what waits run."""

    async def many() -> tuple[float, float]:
        async with sqlite_db.sessions() as session, session.begin():
            started = time.monotonic()
            while time.monotonic() - started < 20 * TURN:
                await session.execute(text("INSERT INTO t VALUES (1)"))
            return started, time.monotonic()

    assert await _while_ticking(many)


def _counting_to(n: int) -> TextClause:
    """A read that keeps SQLite busy for a while, and a known answer."""
    return text(
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < :n) "
        "SELECT count(*) FROM n"
    ).bindparams(n=n)


async def test_sqlite_a_long_read_runs_on_a_thread_while_the_server_goes_on(
    sqlite_db: Database,
) -> None:
    async def report() -> tuple[float, float]:
        async with sqlite_db.read_sessions() as reader:
            await reader.execute(text("SELECT 1"))
            started = time.monotonic()
            assert await reader.scalar(_counting_to(1_000_000)) == 1_000_000
            return started, time.monotonic()

    assert await _while_ticking(report)


async def test_sqlite_a_cancelled_read_is_stopped_and_its_connection_usable(
    sqlite_db: Database,
) -> None:
    """A read whose request is cancelled (a shutdown, a timeout) is interrupted, not left to
    run on its thread for as long as it would take (here, hours)."""
    reading = asyncio.Event()

    async def endless() -> None:
        async with sqlite_db.read_sessions() as reader:
            await reader.execute(text("SELECT 1"))
            reading.set()
            await reader.scalar(_counting_to(10**12))

    task = asyncio.create_task(endless())
    await reading.wait()
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=60)
    pool = sqlite_db.read_engine.pool
    assert isinstance(pool, QueuePool)
    assert pool.checkedout() == 0
    for _ in range(3):  # whichever pooled connection comes out works
        async with sqlite_db.read_sessions() as reader:
            assert await reader.scalar(_counting_to(10)) == 10


async def test_sqlite_quick_reads_run_in_the_loop_and_others_on_a_thread(
    sqlite_db: Database,
) -> None:
    """Statements marked `QUICK` (the token lookup of every request) skip the hand-off."""
    async with sqlite_db.read_sessions() as reader:
        connection = await reader.connection()
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        driver.create_function("thread_id", 0, threading.get_ident)
        on_thread = await reader.scalar(text("SELECT thread_id()"))
        quick = await reader.scalar(text("SELECT thread_id()").execution_options(**{QUICK: True}))
    assert quick == threading.get_ident()
    assert on_thread != threading.get_ident()
