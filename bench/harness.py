"""What every benchmark shares: a fresh database per backend, timing, and the results table.

Each figure is a ratio against a baseline measured in the same run on the same database (the
raw driver, raw SQL, COPY, hledger), so that a shared, noisy machine moves both sides alike.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from finance import migrations
from finance.config import Settings
from finance.db import Database, create_database

POSTGRES_ADMIN_DSN = os.environ.get(
    "FINANCE_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


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
            FINANCE_SECRET_KEY="bench-secret-" + "x" * 40,
            FINANCE_MIGRATE_ON_START=False,
            **overrides,
        )


@contextlib.asynccontextmanager
async def fresh_database(backend: str) -> AsyncIterator[BenchDatabase]:
    """A migrated, empty database, dropped afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"finance-bench-{backend}-") as tmp:
        workdir = Path(tmp)
        pg_name = None
        if backend == "sqlite":
            raw = str(workdir / "bench.db")
            url = f"sqlite+aiosqlite:///{raw}"
        else:
            pg_name = f"finance_bench_{uuid.uuid4().hex[:10]}"
            admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
            await admin.execute(f'CREATE DATABASE "{pg_name}"')
            await admin.close()
            raw = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0] + "/" + pg_name
            url = raw.replace("postgresql://", "postgresql+asyncpg://", 1)
        settings = Settings(_env_file=None, DATABASE_URL=url, FINANCE_SECRET_KEY="b" * 40)
        database = create_database(settings)
        try:
            await migrations.upgrade(database.engine)
            yield BenchDatabase(backend, url, raw, database, workdir)
        finally:
            await database.dispose()
            if pg_name is not None:
                admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
                await admin.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
                await admin.close()


async def median_seconds(
    work: Callable[[], Awaitable[Any]], *, repeat: int, warmup: int = 1
) -> float:
    for _ in range(warmup):
        await work()
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        await work()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


@dataclass
class Result:
    benchmark: str
    backend: str
    ours: float
    baseline: float
    unit: str  # what ours/baseline measure, e.g. "req/s" or "s"
    target: str
    higher_is_better: bool = True
    note: str = ""

    @property
    def ratio(self) -> float:
        """How many times the baseline's speed we reach (>1 is faster than the baseline)."""
        if self.higher_is_better:
            return self.ours / self.baseline
        return self.baseline / self.ours

    def row(self) -> str:
        return (
            f"| {self.benchmark} | {self.backend} | {self.ours:.4g} {self.unit} | "
            f"{self.baseline:.4g} {self.unit} | {self.ratio:.2f}x | {self.target} | {self.note} |"
        )


HEADER = (
    "| benchmark | database | ours | baseline | ratio | target | note |\n"
    "|---|---|---|---|---|---|---|"
)
