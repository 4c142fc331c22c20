"""The baseline of the write benchmark: a minimal Starlette app on the raw driver.

It does the work the API must do for a two-posting transaction, and nothing else: parse the
JSON, convert the decimal amounts to minor units, check that they balance, insert the
transaction and its postings in one database transaction (`BEGIN IMMEDIATE` on SQLite), and
answer 201 with JSON. No authentication, no membership or account checks beyond the foreign
keys, no audit entry, no idempotency: the ratio shows what those and the framework cost.

Served by uvicorn like the app: `uvicorn bench.baseline_app:create_app --factory`, over the
database named by BENCH_BACKEND and BENCH_RAW_DSN.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench.drivers import POSTGRES_SERVER_SETTINGS, connect_sqlite

TRANSACTION_SQL = (
    "INSERT INTO transactions (ledger_id, id, date, payee, narration, tags, links, meta, "
    "status, external_id, version, created_by, created_at, updated_at) "
    "VALUES ({}, {}, {}, {}, NULL, '[]', '[]', '{{}}', 'cleared', NULL, 1, NULL, {}, {})"
)
POSTING_SQL = (
    "INSERT INTO postings (ledger_id, id, transaction_id, position, date, account_id, "
    "commodity_id, amount, weight, weight_commodity_id) "
    "VALUES ({0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}, {7}, {6}), "
    "({0}, {8}, {2}, {9}, {4}, {10}, {11}, {12}, {12}, {11})"
)


Precisions = dict[str, tuple[Any, int]]  # commodity code -> (its id, its precision)


class Refused(Exception):
    pass


@dataclass(frozen=True)
class Parsed:
    date: dt.date
    payee: str | None
    accounts: tuple[uuid.UUID, uuid.UUID]
    commodity_id: Any
    amounts: tuple[int, int]


def _posting(posting: dict[str, Any], precisions: Precisions) -> tuple[Any, int]:
    commodity_id, precision = precisions[posting["commodity"]]
    units = Decimal(posting["amount"]).scaleb(precision)
    if units != units.to_integral_value():
        raise Refused("too many decimals")
    return commodity_id, int(units)


def _parse(body: bytes, precisions: Precisions) -> Parsed:
    data = json.loads(body)
    first, second = data["postings"]
    (commodity_a, amount_a), (commodity_b, amount_b) = (
        _posting(first, precisions),
        _posting(second, precisions),
    )
    if commodity_a != commodity_b or amount_a + amount_b != 0:
        raise Refused("the transaction does not balance")
    return Parsed(
        date=dt.date.fromisoformat(data["date"]),
        payee=data.get("payee"),
        accounts=(uuid.UUID(first["account_id"]), uuid.UUID(second["account_id"])),
        commodity_id=commodity_a,
        amounts=(amount_a, amount_b),
    )


def create_app(backend: str | None = None, dsn: str | None = None) -> Starlette:
    """The app over one database; by default the one BENCH_BACKEND and BENCH_RAW_DSN name
    (uvicorn's `--factory` calls this without arguments)."""
    backend = backend or os.environ["BENCH_BACKEND"]
    dsn = dsn or os.environ["BENCH_RAW_DSN"]
    return _postgresql_app(dsn) if backend == "postgresql" else _sqlite_app(dsn)


def _created(transaction_id: uuid.UUID, posting_ids: tuple[uuid.UUID, uuid.UUID]) -> JSONResponse:
    return JSONResponse(
        {"id": str(transaction_id), "postings": [str(posting_id) for posting_id in posting_ids]},
        status_code=201,
    )


async def _health(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def _postgresql_app(dsn: str) -> Starlette:
    pools: list[asyncpg.Pool] = []
    commodities: dict[uuid.UUID, Precisions] = {}

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # The app's pool holds up to pool_size + max_overflow = 20 connections.
        pool = await asyncpg.create_pool(
            dsn, min_size=1, max_size=20, server_settings=POSTGRES_SERVER_SETTINGS
        )
        pools.append(pool)
        try:
            yield
        finally:
            await pool.close()

    transaction_sql = TRANSACTION_SQL.format(*(f"${i}" for i in range(1, 7)))
    posting_sql = POSTING_SQL.format(*(f"${i}" for i in range(1, 14)))

    async def create(request: Request) -> JSONResponse:
        ledger_id = uuid.UUID(request.path_params["ledger_id"])
        pool = pools[0]
        precisions = commodities.get(ledger_id)
        if precisions is None:
            rows = await pool.fetch(
                "SELECT code, id, precision FROM commodities WHERE ledger_id = $1", ledger_id
            )
            precisions = commodities[ledger_id] = {row[0]: (row[1], row[2]) for row in rows}
        try:
            data = _parse(await request.body(), precisions)
        except (Refused, KeyError, ValueError) as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
        transaction_id, posting_ids = uuid.uuid4(), (uuid.uuid4(), uuid.uuid4())
        now = dt.datetime.now(dt.UTC)
        (account_a, account_b), (amount_a, amount_b) = data.accounts, data.amounts
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                transaction_sql, ledger_id, transaction_id, data.date, data.payee, now, now
            )
            await conn.execute(
                posting_sql,
                *(ledger_id, posting_ids[0], transaction_id, 0, data.date, account_a),
                *(data.commodity_id, amount_a, posting_ids[1], 1, account_b),
                *(data.commodity_id, amount_b),
            )
        return _created(transaction_id, posting_ids)

    return _app(create, lifespan)


def _sqlite_app(path: str) -> Starlette:
    """One sqlite3 connection, used straight from the event loop: each write transaction
    runs start to end without yielding, so writers never contend for SQLite's lock (which
    a thread per connection would, waiting on the busy timeout). Measured here, this was
    faster than running sqlite3 in worker threads."""
    transaction_sql = TRANSACTION_SQL.format(*("?" * 6))
    posting_sql = POSTING_SQL.format(*(f"?{i}" for i in range(1, 14)))
    conn = connect_sqlite(path)
    commodities: dict[str, Precisions] = {}

    def create_sync(ledger_hex: str, body: bytes) -> JSONResponse:
        precisions = commodities.get(ledger_hex)
        if precisions is None:
            rows = conn.execute(
                "SELECT code, id, precision FROM commodities WHERE ledger_id = ?", (ledger_hex,)
            )
            precisions = commodities[ledger_hex] = {row[0]: (row[1], row[2]) for row in rows}
        try:
            data = _parse(body, precisions)
        except (Refused, KeyError, ValueError) as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
        transaction_id, posting_ids = uuid.uuid4(), (uuid.uuid4(), uuid.uuid4())
        now = str(dt.datetime.now(dt.UTC).replace(tzinfo=None))
        (account_a, account_b), (amount_a, amount_b) = data.accounts, data.amounts
        date, tx = data.date.isoformat(), transaction_id.hex
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(transaction_sql, (ledger_hex, tx, date, data.payee, now, now))
            conn.execute(
                posting_sql,
                (
                    *(ledger_hex, posting_ids[0].hex, tx, 0, date, account_a.hex),
                    *(data.commodity_id, amount_a, posting_ids[1].hex, 1, account_b.hex),
                    *(data.commodity_id, amount_b),
                ),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return _created(transaction_id, posting_ids)

    async def create(request: Request) -> JSONResponse:
        ledger_hex = uuid.UUID(request.path_params["ledger_id"]).hex
        return create_sync(ledger_hex, await request.body())

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            conn.close()

    return _app(create, lifespan)


def _app(
    create: Callable[[Request], Awaitable[JSONResponse]],
    lifespan: Callable[[Starlette], AbstractAsyncContextManager[None]],
) -> Starlette:
    return Starlette(
        routes=[
            Route("/ledgers/{ledger_id}/transactions", create, methods=["POST"]),
            Route("/health", _health),
        ],
        lifespan=lifespan,
    )
