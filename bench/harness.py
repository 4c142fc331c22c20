"""What every benchmark shares: a fresh database per backend, timing, servers, raw replays of
captured SQL, and the results table.

Each figure is a ratio against a baseline measured in the same run on the same database (the
raw driver, raw SQL, COPY, hledger), so that a shared, noisy machine moves both sides alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import anyio
import asyncpg
import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.drivers import REPLAY_SETTINGS, connect_sqlite
from finance import migrations
from finance.app import create_app
from finance.auth.service import create_personal_token
from finance.config import Settings
from finance.db import Database, create_database
from finance.models import User

POSTGRES_ADMIN_DSN = os.environ.get(
    "FINANCE_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
SECRET_KEY = "bench-secret-" + "x" * 40
# PostgreSQL may switch a prepared statement to its generic plan after five runs on one
# connection: ours is timed after this many, in the steady state a user would meet.
STEADY_STATE_RUNS = 6
REPOSITORY = Path(__file__).resolve().parent.parent


@dataclass
class BenchDatabase:
    backend: str  # sqlite | postgresql
    url: str  # SQLAlchemy URL, async driver
    raw_dsn: str  # the same database for the raw driver: a file path or an asyncpg DSN
    database: Database
    workdir: Path

    def settings(self, **overrides: Any) -> Settings:
        return Settings(
            _env_file=None,
            DATABASE_URL=self.url,
            FINANCE_SECRET_KEY=SECRET_KEY,
            FINANCE_MIGRATE_ON_START=False,
            **overrides,
        )

    def server_env(self) -> dict[str, str]:
        """The environment of `finance serve` (or the baseline app) over this database."""
        return {
            **os.environ,
            # The servers import `bench` (the baseline app) from the repository's root.
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")])
            ),
            "DATABASE_URL": self.url,
            "FINANCE_SECRET_KEY": SECRET_KEY,
            "FINANCE_MIGRATE_ON_START": "false",
            "BENCH_BACKEND": self.backend,
            "BENCH_RAW_DSN": self.raw_dsn,
        }


def raw_dsn_of(url: str) -> str:
    """The raw driver's address of a SQLAlchemy URL: a file path or an asyncpg DSN."""
    if url.startswith("sqlite"):
        return url.split(":///", 1)[1]
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@contextlib.asynccontextmanager
async def fresh_database(backend: str) -> AsyncIterator[BenchDatabase]:
    """A migrated, empty database, dropped afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"finance-bench-{backend}-") as tmp:
        workdir = Path(tmp)
        pg_name = None
        if backend == "sqlite":
            url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
        else:
            pg_name = f"finance_bench_{uuid.uuid4().hex[:10]}"
            admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
            await admin.execute(f'CREATE DATABASE "{pg_name}"')
            await admin.close()
            url = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0] + "/" + pg_name
            url = url.replace("postgresql://", "postgresql+asyncpg://", 1)
        settings = Settings(_env_file=None, DATABASE_URL=url, FINANCE_SECRET_KEY=SECRET_KEY)
        database = create_database(settings)
        try:
            await migrations.upgrade(database.engine)
            yield BenchDatabase(backend, url, raw_dsn_of(url), database, workdir)
        finally:
            await database.dispose()
            if pg_name is not None:
                admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
                await admin.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
                await admin.close()


async def timings(
    work: Callable[[], Awaitable[Any]], *, repeat: int, warmup: int = 1
) -> list[float]:
    for _ in range(warmup):
        await work()
    found = []
    for _ in range(repeat):
        started = time.perf_counter()
        await work()
        found.append(time.perf_counter() - started)
    return found


async def paired_medians(
    ours: Callable[[], Awaitable[Any]],
    baseline: Callable[[], Awaitable[Any]],
    *,
    repeat: int,
    warmup: int = 1,
) -> tuple[float, float]:
    """Median seconds of each, run alternately, so that a change of load on a shared machine
    falls on both sides rather than on whichever ran second."""
    for _ in range(warmup):
        await ours()
        await baseline()
    mine: list[float] = []
    theirs: list[float] = []
    for _ in range(repeat):
        for work, into in ((ours, mine), (baseline, theirs)):
            started = time.perf_counter()
            await work()
            into.append(time.perf_counter() - started)
    return statistics.median(mine), statistics.median(theirs)


# --- the app in-process, and SQL captured from it -------------------------------------------


@dataclass
class Statement:
    """One statement as the driver received it: SQL text and DBAPI-ready parameters."""

    sql: str
    parameters: Any


@dataclass
class StatementLog:
    """The statements an engine sends while `capturing` (SQLAlchemy's cursor event)."""

    engine: AsyncEngine
    statements: list[Statement] = field(default_factory=list)
    active: bool = False

    def __post_init__(self) -> None:
        event.listen(self.engine.sync_engine, "before_cursor_execute", self._record)

    def _record(
        self,
        _conn: Connection,
        _cursor: Any,
        statement: str,
        parameters: Any,
        _context: Any,
        executemany: bool,
    ) -> None:
        if self.active:
            assert not executemany, "a read captured an executemany"
            self.statements.append(Statement(statement, parameters))

    @contextlib.contextmanager
    def capturing(self) -> Iterator[list[Statement]]:
        self.statements = []
        self.active = True
        try:
            yield self.statements
        finally:
            self.active = False

    def close(self) -> None:
        event.remove(self.engine.sync_engine, "before_cursor_execute", self._record)


def queries(statements: Sequence[Statement]) -> list[Statement]:
    """The reads among captured statements (SQLite's BEGIN and the like are left out)."""
    return [s for s in statements if s.sql.lstrip().upper().startswith(("SELECT", "WITH"))]


class AsgiClient:
    """GET requests straight into the app, in-process.

    Cheaper than httpx's ASGI transport (which, among other things, looks for trio on every
    request), so that "ours" is the app's own cost and little else.
    """

    def __init__(self, app: FastAPI, headers: Mapping[str, str] | None = None) -> None:
        self.app = app
        self.headers = [(b"host", b"bench")] + [
            (name.lower().encode(), value.encode()) for name, value in (headers or {}).items()
        ]

    async def get(self, path: str, query: Mapping[str, str] | None = None) -> tuple[int, bytes]:
        status = 0
        body = bytearray()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": urlencode(query or {}).encode(),
            "root_path": "",
            "headers": self.headers,
            "client": ("127.0.0.1", 50000),
            "server": ("bench", 80),
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Mapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, bytes(body)

    async def get_ok(self, path: str, query: Mapping[str, str] | None = None) -> bytes:
        """The body of a 200 answer, as the server sent it (what is timed: parsing the JSON
        is the client's work, and the raw baseline parses nothing either)."""
        status, body = await self.get(path, query)
        if status != 200:
            raise Mismatch(f"GET {path} answered {status}: {body[:500]!r}")
        return body

    async def get_json(self, path: str, query: Mapping[str, str] | None = None) -> Any:
        return json.loads(await self.get_ok(path, query))


@contextlib.asynccontextmanager
async def running_app(db: BenchDatabase) -> AsyncIterator[FastAPI]:
    """Our app, started in-process over the database."""
    app = create_app(db.settings())
    async with app.router.lifespan_context(app):
        yield app


async def bearer_token(db: BenchDatabase, user_id: uuid.UUID) -> dict[str, str]:
    """A personal access token for a user made by the seed, issued by the auth service."""
    settings = db.settings()
    async with db.database.sessions() as session:
        user = await session.get(User, user_id)
        assert user is not None
        secret, _ = await create_personal_token(
            session, settings, user, name="bench", expires_at=None
        )
        await session.commit()
    return {"Authorization": f"Bearer {secret}"}


class RawConnection:
    """The raw driver on the same database: asyncpg, or the sqlite3 module (blocking)."""

    def __init__(self, backend: str, pg: Any = None, lite: sqlite3.Connection | None = None):
        self.backend = backend
        self.pg = pg
        self.lite = lite

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, db: BenchDatabase) -> AsyncIterator[RawConnection]:
        if db.backend == "postgresql":
            pg = await asyncpg.connect(db.raw_dsn, server_settings=REPLAY_SETTINGS)
            try:
                yield cls("postgresql", pg=pg)
            finally:
                await pg.close()
        else:
            lite = connect_sqlite(db.raw_dsn)
            try:
                yield cls("sqlite", lite=lite)
            finally:
                lite.close()

    async def fetch(self, statement: Statement) -> list[tuple[Any, ...]]:
        if self.pg is not None:
            return [tuple(row) for row in await self.pg.fetch(statement.sql, *statement.parameters)]
        assert self.lite is not None
        return self.lite.execute(statement.sql, statement.parameters).fetchall()

    async def replay(self, statements: Sequence[Statement]) -> list[list[tuple[Any, ...]]]:
        return [await self.fetch(statement) for statement in statements]


# --- servers in their own processes ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class ServerSpec:
    name: str
    argv: list[str]  # after the Python executable, for a server of its own
    port: int
    app: Callable[[], Any]  # the same ASGI app, for a server in this process


@dataclass
class Server:
    name: str
    url: str
    log: Path
    process: asyncio.subprocess.Process | None = None
    task: asyncio.Task[None] | None = None
    uvicorn: uvicorn.Server | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        if self.process is not None:
            return self.process.returncode is None
        return self.task is not None and not self.task.done()


@contextlib.asynccontextmanager
async def servers(
    specs: Sequence[ServerSpec], env: Mapping[str, str], workdir: Path, *, in_process: bool = False
) -> AsyncIterator[list[Server]]:
    """uvicorn servers, one worker each, started together and ready when /health answers.

    Each in a subprocess of its own (its output in a log file in `workdir`, shown when it
    fails to start), stopped by its pid at the end; or, `in_process`, as tasks of this event
    loop: the same code paths without the start-up of new interpreters, for the smoke test.
    """
    started: list[Server] = []
    try:
        for spec in specs:
            started.append(
                _serve_here(spec, workdir) if in_process else await _spawn(spec, env, workdir)
            )
        await asyncio.gather(*(_wait_ready(one) for one in started))
        yield started
    finally:
        for one in started:
            await _stop(one)


def _serve_here(spec: ServerSpec, workdir: Path) -> Server:
    config = uvicorn.Config(
        spec.app(), host="127.0.0.1", port=spec.port, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    return Server(
        spec.name,
        f"http://127.0.0.1:{spec.port}",
        workdir / f"{spec.name}.log",
        task=asyncio.create_task(server.serve()),
        uvicorn=server,
    )


async def _spawn(spec: ServerSpec, env: Mapping[str, str], workdir: Path) -> Server:
    log = workdir / f"{spec.name}.log"
    out = await anyio.to_thread.run_sync(functools.partial(log.open, "wb"))
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, *spec.argv, env=dict(env), stdout=out, stderr=asyncio.subprocess.STDOUT
        )
    finally:
        out.close()
    return Server(spec.name, f"http://127.0.0.1:{spec.port}", log, process=process)


async def _stop(server: Server) -> None:
    if server.uvicorn is not None and server.task is not None:
        server.uvicorn.should_exit = True
        await server.task
        return
    process = server.process
    if process is None or process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), 15)
    except TimeoutError:
        process.kill()
        await process.wait()


async def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=server.url, timeout=2) as client:
        while time.monotonic() < deadline and server.running:
            try:
                if (await client.get("/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await anyio.sleep(0.05)
    if server.task is not None and server.task.done():
        server.task.result()  # raises what stopped it
    tail = ""
    if server.process is not None:
        tail = (await anyio.Path(server.log).read_text(errors="replace"))[-2000:]
    raise RuntimeError(f"server {server.name} did not start:\n{tail}")


# --- results ----------------------------------------------------------------------------------


class Mismatch(AssertionError):
    """Ours and the baseline did not compute the same thing: the figure would mean nothing."""


@dataclass
class Result:
    """One line of the table.

    `ratio` is how many times the baseline's speed we reach (>1: faster than the baseline).
    A line without a baseline is an absolute figure, checked against `limit` (in `unit`).
    """

    benchmark: str
    backend: str
    ours: float
    baseline: float | None
    unit: str  # what ours/baseline measure, e.g. "req/s", "ms", "MB"
    target_ratio: float | None = None
    limit: float | None = None
    higher_is_better: bool = True
    note: str = ""
    baseline_name: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline is None:
            return None
        if self.higher_is_better:
            return self.ours / self.baseline
        return self.baseline / self.ours

    @property
    def met(self) -> bool | None:
        if self.target_ratio is not None:
            ratio = self.ratio
            return ratio is not None and ratio >= self.target_ratio
        if self.limit is not None:
            return self.ours <= self.limit
        return None

    @property
    def target(self) -> str:
        if self.target_ratio is not None:
            text = f">= {self.target_ratio:g}x"
        elif self.limit is not None:
            text = f"<= {self.limit:g} {self.unit}"
        else:
            return "report"
        return f"{text} {'met' if self.met else 'MISSED'}"

    def row(self) -> str:
        baseline = (
            f"{_figure(self.baseline)} {self.unit} {self.baseline_name}".strip()
            if self.baseline is not None
            else "-"
        )
        ratio = f"{self.ratio:.2f}x" if self.ratio is not None else "-"
        return (
            f"| {self.benchmark} | {self.backend} | {_figure(self.ours)} {self.unit} | "
            f"{baseline} | {ratio} | {self.target} | {self.note} |"
        )


def _figure(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


HEADER = (
    "| benchmark | database | ours | baseline | ratio | target | note |\n"
    "|---|---|---|---|---|---|---|"
)


def table(results: Sequence[Result]) -> str:
    return "\n".join([HEADER, *(result.row() for result in results)])
