"""Issue #4: a CSV bank statement imported, parsing included, vs the database's bulk path.

The import runs in a child process (`python -m bench.imports`) through the imports service,
as the API and the CLI call it, so that its peak memory (the high-water RSS) is its own; the
same process then imports the same file again, when every line is a duplicate.

The baseline writes the rows that import wrote (its transactions, postings and line records,
read back untimed, a chunk at a time) into a second ledger holding the same accounts, in one
transaction: with `COPY` (asyncpg `copy_records_to_table`) on PostgreSQL, with a plain
`sqlite3` `executemany` on SQLite. Only the writing is timed.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import functools
import json
import random
import resource
import sqlite3
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import asyncpg
from sqlalchemy import func, select

from bench.drivers import POSTGRES_SERVER_SETTINGS, connect_sqlite
from bench.harness import BenchDatabase, Mismatch, Result
from bench.synthetic import PAYEES, seed
from finance.config import Settings
from finance.db import create_database
from finance.imports.outcomes import ImportRequest
from finance.imports.schemas import CsvMapping
from finance.imports.service import run_import
from finance.models import ImportFormat, ImportLine, Ledger, Posting, Transaction

STATEMENT_ACCOUNT = "Assets:Bank:Checking"
MAPPING = CsvMapping(
    date="Date",
    payee="Payee",
    amount="Amount",
    reference="Reference",
    currency="USD",
    encoding="utf-8",
    delimiter=",",
    has_header=True,
)
CHUNK = 50_000
REIMPORT_CAP = 4  # times the first import
# Copied in this order: a row's foreign keys point at rows copied before it.
TABLES = ("transactions", "postings", "import_lines")


def write_statement(path: Path, lines: int, *, seed_value: int = 20261127) -> None:
    """A bank's CSV export: card payments and transfers out, a salary in now and then."""
    rng = random.Random(seed_value)
    start = dt.date(2016, 1, 1)
    days = 3652
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["Date", "Payee", "Amount", "Reference"])
        for index in range(lines):
            date = start + dt.timedelta(days=index * days // lines)
            if rng.random() < 0.03:
                payee, cents = "Employer Inc", rng.randint(300_000, 600_000)
            else:
                payee, cents = rng.choice(PAYEES), -rng.randint(100, 25_000)
            sign = "-" if cents < 0 else ""
            amount = f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"
            writer.writerow([date.isoformat(), payee, amount, f"REF{index:09d}"])


# --- the child process: two imports of the same file ---------------------------------------


async def import_twice(
    settings: Settings,
    ledger_id: uuid.UUID,
    account_id: uuid.UUID,
    user_id: uuid.UUID,
    statement: Path,
    report: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Import the statement, then again: seconds, outcome counts and peak RSS after each
    (given to `report` as they come)."""
    database = create_database(settings)
    figures: dict[str, Any] = {"rss_before_mb": _peak_rss_mb()}
    try:
        for attempt in ("first", "again"):
            started = time.perf_counter()
            async with database.sessions() as session:
                ledger = await session.get(Ledger, ledger_id)
                assert ledger is not None
                request = ImportRequest(
                    format=ImportFormat.CSV,
                    account_id=account_id,
                    mapping=MAPPING,
                    filename=statement.name,
                )
                file = await asyncio.to_thread(statement.open, "rb")
                try:
                    batch = await run_import(
                        session,
                        ledger,
                        user_id,
                        file,
                        request,
                        max_lines=settings.import_max_lines,
                    )
                finally:
                    file.close()
                await session.commit()
            figures[f"{attempt}_seconds"] = time.perf_counter() - started
            figures[f"{attempt}_batch"] = str(batch.id)
            figures[f"{attempt}_counts"] = batch.counts.model_dump(mode="json")
            figures[f"{attempt}_rss_peak_mb"] = _peak_rss_mb()
            if report is not None:
                report(figures)
    finally:
        await database.dispose()
    return figures


def _peak_rss_mb() -> float:
    """The process's high-water RSS: Linux's VmHWM, which starts afresh at exec, where
    `ru_maxrss` would carry over the parent's own peak."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def _child(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.imports")
    for name in ("url", "ledger", "account", "user", "csv", "secret"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--max-lines", type=int, required=True)
    args = parser.parse_args(argv)
    settings = Settings(
        _env_file=None,
        DATABASE_URL=args.url,
        FINANCE_SECRET_KEY=args.secret,
        FINANCE_MIGRATE_ON_START=False,
        FINANCE_IMPORT_MAX_LINES=args.max_lines,
    )
    figures = import_twice(
        settings,
        uuid.UUID(args.ledger),
        uuid.UUID(args.account),
        uuid.UUID(args.user),
        Path(args.csv),
        report=lambda figures: print(json.dumps(figures), flush=True),
    )
    asyncio.run(figures)


async def _run_child(
    db: BenchDatabase, ledger_id: uuid.UUID, account_id: uuid.UUID, user_id: uuid.UUID, csv: Path
) -> dict[str, Any]:
    """The child's figures. The re-import is stopped (by the child's pid) once it has taken
    `REIMPORT_CAP` times the first import: a figure far past the target says enough, and a
    re-import whose cost grows with the table could otherwise run for hours."""
    env = db.server_env()
    argv = ["-m", "bench.imports", "--url", db.url, "--secret", env["FINANCE_SECRET_KEY"]]
    argv += ["--ledger", str(ledger_id), "--account", str(account_id), "--user", str(user_id)]
    argv += ["--csv", str(csv), "--max-lines", str(max(1, _count_lines(csv)))]
    log = db.workdir / "import.log"
    errors = await anyio.to_thread.run_sync(functools.partial(log.open, "wb"))
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=errors
        )
    finally:
        errors.close()
    assert process.stdout is not None
    figures: dict[str, Any] = {}
    try:
        first = await process.stdout.readline()
        if first:
            figures = json.loads(first)
            cap = REIMPORT_CAP * figures["first_seconds"]
            try:
                again = await asyncio.wait_for(process.stdout.readline(), cap)
            except TimeoutError:
                figures["again_stopped_after"] = cap
                process.kill()
            else:
                if again:
                    figures = json.loads(again)
        await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    if "first_seconds" not in figures or (
        "again_seconds" not in figures and "again_stopped_after" not in figures
    ):
        tail = (await anyio.Path(log).read_text(errors="replace"))[-3000:]
        raise Mismatch(f"the import failed:\n{tail}")
    return figures


def _count_lines(path: Path) -> int:
    with path.open("rb") as file:
        return sum(1 for _ in file) - 1


# --- the baseline: the same rows, written the database's fastest way -----------------------


def _selects(ledger: str, batch: str) -> dict[str, str]:
    """The rows to copy per table, `ledger` and `batch` the parameters' placeholders."""
    created = (
        f"SELECT transaction_id FROM import_lines WHERE ledger_id = {ledger} "
        f"AND batch_id = {batch} AND transaction_id IS NOT NULL"
    )
    return {
        # Small tables, copied whole (untimed) so that the second ledger has the same accounts.
        "ledgers": f"SELECT * FROM ledgers WHERE id = {ledger}",
        "ledger_members": f"SELECT * FROM ledger_members WHERE ledger_id = {ledger}",
        "commodities": f"SELECT * FROM commodities WHERE ledger_id = {ledger}",
        "accounts": f"SELECT * FROM accounts WHERE ledger_id = {ledger}",
        "import_batches": f"SELECT * FROM import_batches WHERE ledger_id = {ledger}",
        # What the import wrote, in an order that respects the foreign keys.
        "transactions": f"SELECT * FROM transactions WHERE ledger_id = {ledger} "
        f"AND id IN ({created}) ORDER BY date, id",
        "postings": f"SELECT * FROM postings WHERE ledger_id = {ledger} "
        f"AND transaction_id IN ({created}) ORDER BY date, transaction_id, position",
        "import_lines": f"SELECT * FROM import_lines WHERE ledger_id = {ledger} "
        f"AND batch_id = {batch} ORDER BY seq",
    }


BOOKS = ("ledgers", "ledger_members", "commodities", "accounts", "import_batches")
WRITTEN = ("transactions", "postings", "import_lines")


def _retarget(rows: Sequence[Sequence[Any]], key: int, target: Any) -> list[tuple[Any, ...]]:
    """The rows with their ledger replaced: every other key stays, since keys are per ledger."""
    return [(*row[:key], target, *row[key + 1 :]) for row in rows]


async def _chunks_postgresql(
    reader: Any, table: str, select: str, ledger_id: uuid.UUID, batch_id: uuid.UUID, target: Any
) -> AsyncIterator[tuple[list[str], list[tuple[Any, ...]]]]:
    statement = await reader.prepare(select)
    names = [attribute.name for attribute in statement.get_attributes()]
    key = names.index("id" if table == "ledgers" else "ledger_id")
    cursor = await statement.cursor(*((ledger_id, batch_id) if "$2" in select else (ledger_id,)))
    while chunk := await cursor.fetch(CHUNK):
        yield names, _retarget(chunk, key, target)


async def copy_postgresql(
    db: BenchDatabase, ledger_id: uuid.UUID, batch_id: uuid.UUID, target: uuid.UUID
) -> float:
    """Seconds to COPY the batch's rows into a clone of the ledger, in one transaction."""
    reader = await asyncpg.connect(db.raw_dsn, server_settings=POSTGRES_SERVER_SETTINGS)
    writer = await asyncpg.connect(db.raw_dsn, server_settings=POSTGRES_SERVER_SETTINGS)
    selects = _selects("$1", "$2")
    elapsed = 0.0
    try:
        async with reader.transaction():
            for table in BOOKS:
                rows = _chunks_postgresql(
                    reader, table, selects[table], ledger_id, batch_id, target
                )
                async for names, records in rows:
                    await writer.copy_records_to_table(table, records=records, columns=names)
            transaction = writer.transaction()
            await transaction.start()
            for table in WRITTEN:
                rows = _chunks_postgresql(
                    reader, table, selects[table], ledger_id, batch_id, target
                )
                async for names, records in rows:
                    started = time.perf_counter()
                    await writer.copy_records_to_table(table, records=records, columns=names)
                    elapsed += time.perf_counter() - started
            started = time.perf_counter()
            await transaction.commit()
            elapsed += time.perf_counter() - started
    finally:
        await reader.close()
        await writer.close()
    return elapsed


def _chunks_sqlite(
    reader: sqlite3.Connection, table: str, select: str, ledger: str, batch: str, target: str
) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    cursor = reader.execute(select, {"ledger": ledger, "batch": batch})
    names = [column[0] for column in cursor.description]
    key = names.index("id" if table == "ledgers" else "ledger_id")
    insert = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    while chunk := cursor.fetchmany(CHUNK):
        yield insert, _retarget(chunk, key, target)


def copy_sqlite(
    db: BenchDatabase, ledger_id: uuid.UUID, batch_id: uuid.UUID, target: uuid.UUID
) -> float:
    """Seconds to executemany the batch's rows into a clone of the ledger, in one
    transaction (BEGIN IMMEDIATE ... COMMIT), with the app's pragmas."""
    reader, writer = connect_sqlite(db.raw_dsn), connect_sqlite(db.raw_dsn)
    selects = _selects(":ledger", ":batch")
    elapsed = 0.0
    try:
        reader.execute("BEGIN")
        for table in BOOKS:
            for insert, records in _chunks_sqlite(
                reader, table, selects[table], ledger_id.hex, batch_id.hex, target.hex
            ):
                writer.executemany(insert, records)
        started = time.perf_counter()
        writer.execute("BEGIN IMMEDIATE")
        elapsed += time.perf_counter() - started
        for table in WRITTEN:
            for insert, records in _chunks_sqlite(
                reader, table, selects[table], ledger_id.hex, batch_id.hex, target.hex
            ):
                started = time.perf_counter()
                writer.executemany(insert, records)
                elapsed += time.perf_counter() - started
        started = time.perf_counter()
        writer.execute("COMMIT")
        elapsed += time.perf_counter() - started
        reader.execute("COMMIT")
    finally:
        reader.close()
        writer.close()
    return elapsed


# --- the benchmark ---------------------------------------------------------------------------


async def bench_imports(db: BenchDatabase, *, lines: int, in_process: bool = False) -> list[Result]:
    """`in_process` imports in this process (the smoke test): the peak RSS is then this
    process's, not the import's."""
    ledger = await seed(db.database.engine, n_postings=0)
    account_id = ledger.accounts[STATEMENT_ACCOUNT]
    statement = db.workdir / "statement.csv"
    await asyncio.to_thread(write_statement, statement, lines)
    size_mb = statement.stat().st_size / 1_048_576
    if in_process:
        settings = db.settings(FINANCE_IMPORT_MAX_LINES=lines)
        figures = await import_twice(
            settings, ledger.ledger_id, account_id, ledger.user_id, statement
        )
    else:
        figures = await _run_child(db, ledger.ledger_id, account_id, ledger.user_id, statement)
    first, again = figures["first_counts"], figures.get("again_counts")
    if first["new"] != lines or (again is not None and again["duplicate"] != lines):
        raise Mismatch(f"expected {lines} new then {lines} duplicates: {first}, then {again}")
    batch_id = uuid.UUID(figures["first_batch"])
    target = uuid.uuid4()
    if db.backend == "postgresql":
        copy_seconds = await copy_postgresql(db, ledger.ledger_id, batch_id, target)
    else:
        copy_seconds = await asyncio.to_thread(copy_sqlite, db, ledger.ledger_id, batch_id, target)
    await _check_copy(db, target, lines)
    baseline_name = "COPY" if db.backend == "postgresql" else "sqlite3 executemany"
    growth = figures["first_rss_peak_mb"] - figures["rss_before_mb"]
    return [
        Result(
            f"import a CSV statement of {lines:,} lines",
            db.backend,
            lines / figures["first_seconds"],
            lines / copy_seconds,
            "lines/s",
            target_ratio=0.3 if db.backend == "postgresql" else 0.5,
            baseline_name=baseline_name,
            note=f"parsing included; {size_mb:.1f} MB file; the baseline writes the same "
            "transactions, postings and line records",
        ),
        Result(
            "import: peak memory",
            db.backend,
            figures["first_rss_peak_mb"],
            None,
            "MB",
            note=f"high-water RSS of the importing process; {figures['rss_before_mb']:.0f} MB "
            f"before the import, so +{growth:.0f} MB for a {size_mb:.1f} MB file",
        ),
        Result(
            "re-import the same statement (all duplicates)",
            db.backend,
            figures.get("again_seconds", figures.get("again_stopped_after", 0.0)),
            figures["first_seconds"],
            "s",
            target_ratio=0.5,
            higher_is_better=False,
            baseline_name="first import",
            note="target: at most 2x the first import's time"
            + (
                f"; STOPPED after {figures['again_stopped_after']:.0f} s, unfinished: "
                "the figure is a lower bound"
                if "again_stopped_after" in figures
                else ""
            ),
        ),
    ]


async def _check_copy(db: BenchDatabase, target: uuid.UUID, lines: int) -> None:
    """The clone holds what the first import wrote: the copy copied everything."""
    async with db.database.engine.connect() as conn:
        found = [
            await conn.scalar(select(func.count()).where(table.ledger_id == target))
            for table in (Transaction, Posting, ImportLine)
        ]
    if found != [lines, 2 * lines, lines]:
        raise Mismatch(f"transactions, postings and line records copied: {found}")


if __name__ == "__main__":
    _child(sys.argv[1:])
