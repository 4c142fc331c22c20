"""SQLite's two engines on the standard library's sqlite3: readers on threads, one writer in
the event loop.

A reader's statement may be a report over a million postings: it runs on a thread (SQLite lets
go of the GIL while it works), so a long report never stalls the server, and WAL mode lets
readers run beside the writer. Each statement costs one hand-off to a thread and back, where
aiosqlite's SQLAlchemy adapter made four (a cursor, the statement, its rows, closing it), plus
three for the BEGIN: measured on a page of 50 transactions, 6.0 ms a request against 5.0 ms,
and 4.4-4.8 ms with the token lookup run in the loop's thread (`QUICK`).

A write is a few statements of microseconds each, and SQLite takes one writer at a time anyway.
Through aiosqlite every statement costs three or four hand-offs to a thread and back, which
cost more than the statements themselves: measured, 4.7-5.9 ms of CPU per two-posting
transaction against 2.3-3.4 ms with the same statements run in the event loop's thread. So
writes go through one connection that the loop uses directly. In-process writers queue for it
in asyncio (the pool of one); a writer in another process (the CLI) is waited for by retrying
`BEGIN IMMEDIATE` with asyncio sleeps in between, never by SQLite's busy handler, which would
sleep in the loop's thread.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from sqlalchemy import event, pool
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.util import await_

from finance.config import Settings
from finance.errors import Unprocessable

_BUSY = ("database is locked", "database is busy")
# The execution option of a statement that reads a row or two through an index, such as the
# token lookup of every request: SQLite's readers run it in the loop's thread, where a hand-off
# to a thread and back (0.2 ms) would cost ten times the statement. Other databases ignore it.
QUICK = "finance_quick"
# How long the writer keeps the event loop, statement after statement, before other requests
# get a turn; and from how many rows an executemany is written on a thread instead.
TURN = 0.005
BULK = 100


class _AsyncDialect(SQLiteDialect_pysqlite):
    """The standard library's sqlite3, marked async so that `create_async_engine` takes it,
    pooled in asyncio. Closing needs no await: a connection that a cancelled request leaves is
    closed at once (and the writer's transaction, with its lock, rolled back), not left to the
    garbage collector."""

    is_async = True
    has_terminate = True

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        return pool.AsyncAdaptedQueuePool


class WriterDialect(_AsyncDialect):
    """The standard library's sqlite3, run in the event loop's thread.

    A long write lets other requests run
    between its statements (`_take_turns`), and many rows at once (`BULK` or more: an import's
    chunk, the audit entries of an undo) are written on a thread, so neither holds up the
    server. Another process's write lock is waited for in `do_begin`, with asyncio sleeps.
    """

    driver = "finance_writer"
    supports_statement_cache = True  # SQLAlchemy looks for it on each class, not inherited

    def __init__(self, busy_timeout_ms: int = 30_000, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.busy_timeout_ms = busy_timeout_ms
        self._held_since = 0.0  # when the writer last let the loop run others

    def connect(self, *cargs: Any, **cparams: Any) -> Any:
        return sqlite3.connect(*cargs, factory=_Connection, **cparams)

    def do_terminate(self, dbapi_connection: Any) -> None:
        """Roll back first: a cursor that outlives the close would keep the connection, its
        transaction and the write lock alive until collected."""
        try:
            dbapi_connection.rollback()
        finally:
            dbapi_connection.close()

    def do_execute(self, cursor: Any, statement: Any, parameters: Any, context: Any = None) -> None:
        self._take_turns()
        super().do_execute(cursor, statement, parameters, context)  # type: ignore[no-untyped-call]

    def do_execute_no_params(self, cursor: Any, statement: Any, context: Any = None) -> None:
        self._take_turns()
        super().do_execute_no_params(cursor, statement, context)  # type: ignore[no-untyped-call]

    def do_executemany(
        self, cursor: Any, statement: Any, parameters: Any, context: Any = None
    ) -> None:
        if len(parameters) < BULK:  # a POST's postings: a thread hop would cost more
            self._take_turns()
            cursor.executemany(statement, parameters)
        else:
            await_(_on_thread(cursor.executemany, statement, parameters))

    def _take_turns(self) -> None:
        """Before a statement: once the writer has kept the loop for `TURN`, let it run what
        is waiting. A short write never pays for that (a turn before every statement cost a
        two-posting POST 6% more Python calls: 5,249 against 4,969). `AsyncConnection` checks
        that each statement awaited something, so there is an await either way."""
        if time.monotonic() - self._held_since < TURN:
            await_(_done())
            return
        await_(asyncio.sleep(0))
        self._held_since = time.monotonic()

    def do_begin(self, dbapi_connection: Any) -> None:
        """`BEGIN IMMEDIATE`: the write lock is taken before anything is read, so no update is
        lost; while another process holds it, try again after a short asyncio sleep."""
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        delay = 0.001
        while True:
            try:
                dbapi_connection.execute("BEGIN IMMEDIATE")
                self._held_since = time.monotonic()
                return
            except sqlite3.OperationalError as error:
                if not str(error).startswith(_BUSY) or time.monotonic() >= deadline:
                    raise
            await_(asyncio.sleep(delay))
            delay = min(delay * 2, 0.05)


class ReaderDialect(_AsyncDialect):
    """The standard library's sqlite3 on threads, one hand-off per statement.

    A statement runs and all its rows are read on a thread in one call (`_ReaderCursor`): the
    event loop never waits for SQLite, and a report over a million postings holds up no other
    request. What needs no I/O stays in the loop's thread: the deferred `BEGIN` (it reads
    nothing until the first statement), the end of the read transaction, closing.
    """

    driver = "finance_reader"
    supports_statement_cache = True

    def __init__(self, threads: int = 8, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.threads = ThreadPoolExecutor(threads, thread_name_prefix="finance-sqlite-reader")

    def connect(self, *cargs: Any, **cparams: Any) -> Any:
        # Each connection is used by one thread at a time: the loop's or a reader thread.
        cparams["check_same_thread"] = False
        connection = sqlite3.connect(*cargs, factory=_ReaderConnection, **cparams)
        connection.threads = self.threads
        return connection

    def do_begin(self, dbapi_connection: Any) -> None:
        """A deferred transaction: one snapshot for all of a request's reads, and in WAL mode
        it never waits for the writer."""
        dbapi_connection.execute("BEGIN")

    def do_execute(self, cursor: Any, statement: Any, parameters: Any, context: Any = None) -> None:
        if context is not None and context.execution_options.get(QUICK):
            cursor.execute_here(statement, parameters)
        else:
            cursor.execute(statement, parameters)

    def do_terminate(self, dbapi_connection: Any) -> None:
        dbapi_connection.close()


class _ReaderCursor(sqlite3.Cursor):
    """Runs each statement and reads its rows on a thread, then serves them from memory."""

    connection: _ReaderConnection

    def __init__(self, connection: _ReaderConnection) -> None:
        super().__init__(connection)
        self.rows: collections.deque[Any] = collections.deque()

    def execute(self, sql: str, parameters: Any = ()) -> _ReaderCursor:
        self._on_thread(super().execute, sql, parameters)
        return self

    def executemany(self, sql: str, parameters: Any) -> _ReaderCursor:
        self._on_thread(super().executemany, sql, parameters)
        return self

    def execute_here(self, sql: str, parameters: Any) -> None:
        """In the loop's thread (see `QUICK`)."""
        self._run(super().execute, sql, parameters)
        await_(_done())  # `AsyncConnection` checks that each statement awaited something

    def _on_thread(self, execute: Callable[[str, Any], Any], sql: str, parameters: Any) -> None:
        """Cancelled meanwhile (a shutdown, a timeout), the statement is interrupted."""
        connection = self.connection
        await_(
            _on_thread(
                self._run,
                execute,
                sql,
                parameters,
                executor=connection.threads,
                interrupt=connection.interrupt,
            )
        )

    def _run(self, execute: Callable[[str, Any], Any], sql: str, parameters: Any) -> None:
        execute(sql, parameters)
        self.rows = collections.deque(super().fetchall() if self.description else ())

    def fetchone(self) -> Any:
        return self.rows.popleft() if self.rows else None

    def fetchmany(self, size: int | None = None) -> list[Any]:
        rows = self.rows
        return [rows.popleft() for _ in range(min(size or self.arraysize, len(rows)))]

    def fetchall(self) -> list[Any]:
        rows = list(self.rows)
        self.rows.clear()
        return rows

    async def _async_soft_close(self) -> None:
        """The rows are in memory already."""


class _ReaderConnection(sqlite3.Connection):
    threads: Executor

    def cursor(self, factory: Any = _ReaderCursor) -> Any:
        return super().cursor(factory)


class _Cursor(sqlite3.Cursor):
    async def _async_soft_close(self) -> None:
        """What `AsyncConnection` calls after a statement: its rows are read from SQLite when
        asked for, so there is nothing to do."""


class _Connection(sqlite3.Connection):
    def cursor(self, factory: Any = _Cursor) -> Any:
        return super().cursor(factory)


async def _done() -> None:
    """Nothing to wait for."""


async def _on_thread(
    function: Callable[..., Any],
    *args: Any,
    executor: Executor | None = None,
    interrupt: Callable[[], None] | None = None,
) -> Any:
    """`function(*args)` on a thread. Cancelled meanwhile, it calls `interrupt` (if given) and
    waits for the thread to end before it raises: the connection, which the cancellation
    closes, is never in two threads' hands at once (sqlite3 would crash)."""
    done = asyncio.get_running_loop().run_in_executor(executor, function, *args)
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        if interrupt is not None:
            interrupt()
        while not done.done():
            # What the thread ends with (its rows, or "interrupted") is of no use any more.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.shield(done)
        raise


registry.register("sqlite.finance_writer", __name__, WriterDialect.__name__)
registry.register("sqlite.finance_reader", __name__, ReaderDialect.__name__)


def create_writer(settings: Settings) -> AsyncEngine:
    """The one connection that writes: in-process writers wait up to the pool timeout for it."""
    engine = create_async_engine(
        settings.url.set(drivername="sqlite+finance_writer"),
        echo=settings.sql_echo,
        pool_size=1,
        max_overflow=0,
        pool_timeout=settings.db_pool_timeout,
        busy_timeout_ms=settings.db_busy_timeout_ms,
    )
    # The lock is waited for in `do_begin`; SQLite's own busy handler would block the loop.
    _configure(engine, busy_timeout_ms=0)
    return engine


def create_reader(settings: Settings) -> AsyncEngine:
    """The readers' pool, with a thread for each connection it may hold."""
    connections = settings.db_pool_size + settings.db_max_overflow
    engine = create_async_engine(
        settings.url.set(drivername="sqlite+finance_reader"),
        echo=settings.sql_echo,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        threads=connections,
    )
    _configure(engine, busy_timeout_ms=settings.db_busy_timeout_ms)
    return engine


def _configure(engine: AsyncEngine, *, busy_timeout_ms: int) -> None:
    """Make SQLite durable and safe: on every connection, foreign keys, WAL, full sync.

    The driver's own transaction handling is switched off: transactions are begun here (the
    writer's `do_begin`, the reader's `begin` event).
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "foreign_keys = ON",
            "journal_mode = WAL",
            "synchronous = FULL",
            f"busy_timeout = {busy_timeout_ms}",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "handle_error")
    def _on_error(context: ExceptionContext) -> None:
        """SQLite's SUM stops at 64 bits where PostgreSQL's goes on: a clear 422, not a 500.

        Each amount fits 64 bits, but the total of many may not (PostgreSQL sums them as
        NUMERIC); SQLite's other way out, TOTAL(), would add them as floats.
        """
        if "integer overflow" in str(context.original_exception):
            raise Unprocessable(
                "A total here is beyond what SQLite can add (9,223,372,036,854,775,807 minor "
                "units); on PostgreSQL these books add up"
            ) from context.original_exception
