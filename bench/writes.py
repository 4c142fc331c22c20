"""Issue #3: creating transactions through the API vs a minimal Starlette app on the raw driver.

Both are real uvicorn servers (one worker each, in their own processes) over the same database,
driven by the same load generator: 16 concurrent clients, one two-posting transaction per
request, a fixed number of requests. Every answer must be a 201 and every transaction must be
stored, or the run fails.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import math
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from bench import baseline_app, framework_app
from bench.harness import BenchDatabase, Mismatch, Result, ServerSpec, free_port, servers
from finance.app import create_app
from finance.models import Posting, Transaction

CONCURRENCY = 16
PASSWORD = "bench password, long enough"


@dataclass
class Load:
    requests: int
    rate: float  # requests per second
    client_cpu: float  # share of one core the load generator used
    server_cpu_ms: float | None  # CPU time of the server process per request


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux's /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def transaction_body(index: int, debit: str, credit: str) -> dict[str, Any]:
    amount = f"{1 + index % 500}.{index % 100:02d}"
    return {
        "date": (dt.date(2025, 1, 1) + dt.timedelta(days=index % 365)).isoformat(),
        "payee": f"Shop {index % 400:03d}",
        "postings": [
            {"account_id": debit, "amount": amount, "commodity": "USD"},
            {"account_id": credit, "amount": f"-{amount}", "commodity": "USD"},
        ],
    }


class HttpConnection:
    """A minimal HTTP/1.1 keep-alive client over one socket.

    On two shared cores the load generator competes with the servers for CPU; this one costs
    a few tens of microseconds per request, a fraction of what httpx costs, so the servers,
    not the client, set the pace. It handles what uvicorn answers here: a Content-Length body.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, url: str) -> HttpConnection:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        return cls(reader, writer)

    async def post(self, path: str, body: bytes, headers: str = "") -> tuple[int, bytes]:
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{headers}\r\n".encode()
            + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = next(
            int(line.split(":", 1)[1])
            for line in lines[1:]
            if line.lower().startswith("content-length:")
        )
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def drive(
    url: str,
    path: str,
    body: Callable[[int], dict[str, Any]],
    *,
    requests: int | None = None,
    seconds: float | None = None,
    concurrency: int = CONCURRENCY,
    headers: dict[str, str] | None = None,
    server_pid: int | None = None,
) -> Load:
    """POSTs from `concurrency` clients, each on its own kept-alive connection, until
    `requests` were sent or `seconds` have passed; every answer must be a 201."""
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    connections = [await HttpConnection.open(url) for _ in range(concurrency)]
    counter = itertools.count() if requests is None else iter(range(requests))
    deadline = math.inf if seconds is None else time.perf_counter() + seconds
    failures: list[str] = []
    done = 0

    async def worker(connection: HttpConnection) -> None:
        nonlocal done
        for index in counter:
            status, answer = await connection.post(path, json.dumps(body(index)).encode(), extra)
            if status != 201:
                failures.append(f"{status} {answer[:300]!r}")
            done += 1
            if time.perf_counter() >= deadline:
                return

    server_before = cpu_seconds(server_pid) if server_pid is not None else None
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker(connection) for connection in connections))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        for connection in connections:
            await connection.close()
    if failures:
        raise Mismatch(f"{len(failures)} of {done} requests failed, e.g. {failures[0]}")
    server_after = cpu_seconds(server_pid) if server_pid is not None else None
    server_cpu = None
    if server_before is not None and server_after is not None and done:
        server_cpu = (server_after - server_before) / done * 1000
    return Load(done, done / wall, cpu / wall, server_cpu)


@dataclass
class Books:
    ledger_id: str
    debit: str
    credit: str
    headers: dict[str, str]


async def _books(client: httpx.AsyncClient) -> Books:
    """A user, a ledger and two accounts, made through the API as a client would."""
    email = "bench@example.com"
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": email, "password": PASSWORD, "display_name": "Bench"},
    )
    response.raise_for_status()
    response = await client.post(
        "/api/v1/auth/token", data={"username": email, "password": PASSWORD}
    )
    response.raise_for_status()
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    response = await client.post(
        "/api/v1/ledgers", json={"name": "Bench", "base_currency": "USD"}, headers=headers
    )
    response.raise_for_status()
    ledger_id = response.json()["id"]
    ids = []
    for name in ("Expenses:Food:Groceries", "Assets:Bank:Checking"):
        response = await client.post(
            f"/api/v1/ledgers/{ledger_id}/accounts", json={"name": name}, headers=headers
        )
        response.raise_for_status()
        ids.append(response.json()["id"])
    return Books(ledger_id, ids[0], ids[1], headers)


async def _stored(db: BenchDatabase, ledger_id: str) -> tuple[int, int]:
    """The ledger's transactions and postings, counted behind the servers' backs."""
    async with db.database.engine.connect() as conn:
        transactions = await conn.scalar(
            select(func.count()).where(Transaction.ledger_id == uuid.UUID(ledger_id))
        )
        postings = await conn.scalar(
            select(func.count()).where(Posting.ledger_id == uuid.UUID(ledger_id))
        )
    return int(transactions or 0), int(postings or 0)


async def bench_writes(
    db: BenchDatabase,
    *,
    requests: int | None = None,
    seconds: float | None = None,
    rounds: int = 1,
    concurrency: int = CONCURRENCY,
    in_process: bool = False,
) -> list[Result]:
    """Requests per second of ours and of the baseline, alternating for `rounds` rounds of
    `requests` each (or `seconds` each); the best round of each side counts."""
    ours_port, raw_port, bare_port = free_port(), free_port(), free_port()
    specs = [
        ServerSpec(
            "finance",
            ["-m", "finance", "serve", "--host", "127.0.0.1", "--port", str(ours_port)],
            ours_port,
            lambda: create_app(db.settings()),
        ),
        ServerSpec(
            "baseline",
            [
                *("-m", "uvicorn", "bench.baseline_app:create_app", "--factory"),
                *("--host", "127.0.0.1", "--port", str(raw_port)),
                *("--no-access-log", "--log-level", "warning"),
            ],
            raw_port,
            lambda: baseline_app.create_app(db.backend, db.raw_dsn),
        ),
        ServerSpec(
            "framework",
            [
                *("-m", "uvicorn", "bench.framework_app:create_app", "--factory"),
                *("--host", "127.0.0.1", "--port", str(bare_port)),
                *("--no-access-log", "--log-level", "warning"),
            ],
            bare_port,
            framework_app.create_app,
        ),
    ]
    async with (
        servers(specs, db.server_env(), db.workdir, in_process=in_process) as (ours, raw, bare),
        httpx.AsyncClient(base_url=ours.url, timeout=60) as client,
    ):
        books = await _books(client)
        path = f"/ledgers/{books.ledger_id}/transactions"

        def body(index: int) -> dict[str, Any]:
            return transaction_body(index, books.debit, books.credit)

        # Ours first: it creates the USD commodity (on first use) that the baseline looks up.
        warmup = 100 if requests is None else min(100, requests)
        sent = 0
        loads: dict[str, list[Load]] = {"ours": [], "raw": [], "framework": []}
        for round_ in range(rounds + 1):
            count = warmup if round_ == 0 else requests
            duration = None if round_ == 0 else seconds
            ours_load = await drive(
                ours.url,
                f"/api/v1{path}",
                body,
                requests=count,
                seconds=duration,
                concurrency=concurrency,
                headers=books.headers,
                server_pid=ours.pid,
            )
            raw_load = await drive(
                raw.url,
                path,
                body,
                requests=count,
                seconds=duration,
                concurrency=concurrency,
                server_pid=raw.pid,
            )
            bare_load = await drive(
                bare.url,
                path,
                body,
                requests=count,
                seconds=duration,
                concurrency=concurrency,
                server_pid=bare.pid,
            )
            sent += ours_load.requests + raw_load.requests
            if round_ > 0:
                loads["ours"].append(ours_load)
                loads["raw"].append(raw_load)
                loads["framework"].append(bare_load)
    stored = await _stored(db, books.ledger_id)
    if stored != (sent, 2 * sent):
        raise Mismatch(f"{sent} transactions acknowledged, {stored} (transactions, postings) found")
    best_ours, best_raw, best_bare = (
        max(loads[side], key=lambda load: load.rate) for side in ("ours", "raw", "framework")
    )
    size = f"{requests} requests" if requests is not None else f"{seconds:g} s"
    return [
        Result(
            f"create a transaction (API, {concurrency} clients)",
            db.backend,
            best_ours.rate,
            best_raw.rate,
            "req/s",
            target_ratio=0.5,
            baseline_name="raw driver app",
            note=f"best of {rounds} alternating rounds of {size}; server CPU per request "
            f"{_ms(best_ours.server_cpu_ms)} / {_ms(best_raw.server_cpu_ms)}; load generator at "
            f"{best_ours.client_cpu:.0%} / {best_raw.client_cpu:.0%} of a core",
        ),
        Result(
            "the same POST answered by FastAPI alone (body parsed, no database)",
            db.backend,
            best_bare.rate,
            best_raw.rate,
            "req/s",
            baseline_name="raw driver app",
            note=f"the framework's share of the budget above; server CPU per request "
            f"{_ms(best_bare.server_cpu_ms)}",
        ),
    ]


def _ms(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f} ms"
