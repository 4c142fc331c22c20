"""The database: engines and sessionmakers, one session per request, what a retry fixes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from finance import sqlite
from finance.config import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Database:
    """What the app holds for its whole life: the engines and the two kinds of session."""

    engine: AsyncEngine  # writes (migrations too)
    read_engine: AsyncEngine  # read-only requests: SQLite's readers, PostgreSQL in autocommit
    sessions: async_sessionmaker[AsyncSession]
    read_sessions: async_sessionmaker[AsyncSession]

    @property
    def engines(self) -> tuple[AsyncEngine, ...]:
        """Each engine once: SQLite's reader is one of its own, PostgreSQL's shares the pool."""
        if self.read_engine.sync_engine.pool is self.engine.sync_engine.pool:
            return (self.engine,)
        return (self.engine, self.read_engine)

    async def dispose(self) -> None:
        for engine in self.engines:
            await engine.dispose()


def create_engine(settings: Settings) -> AsyncEngine:
    """The engine that writes; on PostgreSQL it also reads (see `create_database`)."""
    if settings.is_sqlite:
        return sqlite.create_writer(settings)
    # No pre-ping: it costs a round trip per request. A connection that died while pooled (a
    # server restart) fails on its first statement instead, and `RetryMiddleware` runs the
    # request again on a fresh one (see `is_retryable`).
    return create_async_engine(
        settings.url,
        echo=settings.sql_echo,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        connect_args={
            "server_settings": {
                "application_name": "finance",
                "statement_timeout": str(settings.db_statement_timeout_ms),
                "idle_in_transaction_session_timeout": "60000",
                # Report queries are short aggregates: JIT compilation costs more than it saves.
                "jit": "off",
                # Plan each statement for its parameters: after five runs of a prepared
                # statement PostgreSQL may switch to a generic plan, blind to a report's dates
                # and IN lists (measured: 11-15 s instead of 0.7-1 s for a ten-year cash flow
                # on a million postings). Planning costs well under a millisecond here.
                "plan_cache_mode": "force_custom_plan",
            },
            "timeout": settings.db_pool_timeout,
        },
    )


def create_database(settings: Settings) -> Database:
    engine = create_engine(settings)
    if settings.is_sqlite:
        read_engine = sqlite.create_reader(settings)
    else:
        # Under READ COMMITTED each statement reads its own snapshot, in a transaction or not:
        # BEGIN and COMMIT around a read bought two round trips and nothing else. (A reader
        # that needs one snapshot asks for it: `one_snapshot`.)
        read_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
    return Database(
        engine=engine,
        read_engine=read_engine,
        sessions=async_sessionmaker(engine, expire_on_commit=False, autoflush=False),
        read_sessions=async_sessionmaker(read_engine, expire_on_commit=False, autoflush=False),
    )


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request, committed before the response is sent.

    Declared with `scope="function"` (FastAPI >= 0.121), so this exit code runs after the
    endpoint and its serialization but before the response starts: a 2xx means durable, and any
    error (in the endpoint, the serialization or the commit itself) rolls everything back.
    Safe methods get a read-only session.
    """
    database = get_database(request)
    maker = database.read_sessions if request.method in SAFE_METHODS else database.sessions
    async with maker() as session:
        request.state.db_session = session  # where an idempotent route stores its response
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


SessionDep = Annotated[AsyncSession, Depends(get_db, scope="function")]


async def one_snapshot(session: AsyncSession) -> None:
    """From here on, the session's reads see one snapshot of the database.

    For a read that takes amounts from one statement and what they mean (a commodity's
    precision) from another: a precision change, which rewrites the amounts, could otherwise
    commit in between and get applied to amounts read before it. PostgreSQL's read sessions run
    in autocommit, a snapshot per statement: what came before (the token lookup) is let go,
    and the rest runs in a REPEATABLE READ transaction, two round trips more. SQLite's read
    transaction already is one snapshot, and a write session's reads come after its locks.
    """
    if session.get_bind().get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        await session.commit()
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


# SQLSTATEs (PostgreSQL) and messages (SQLite) of errors that a retry of the whole request fixes.
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01", "55P03"})
_RETRYABLE_SQLITE = ("database is locked", "database table is locked", "database is busy")


def is_retryable(error: BaseException) -> bool:
    """A serialization failure, a deadlock, SQLite's busy lock, or a connection found dead
    while running a statement: safe to run again.

    A connection lost during COMMIT (SQLAlchemy reports no statement then) is not: the
    transaction may have been committed.
    """
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return error.statement is not None
    original = error.orig
    sqlstate = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    if sqlstate in _RETRYABLE_SQLSTATES:
        return True
    message = str(original).lower()
    return any(text in message for text in _RETRYABLE_SQLITE)
