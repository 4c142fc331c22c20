"""A synthetic household ledger for benchmarks: years of salary, rent, cards, groceries, trips.

Rows are generated deterministically (a seeded PRNG, ids included) and written straight into
the migrated schema with the fastest path each database has: `COPY` (asyncpg
`copy_records_to_table`) on PostgreSQL, one `executemany` transaction of the plain `sqlite3`
module on SQLite. A million postings take seconds, not the hours they would take through the
API. The same rows can be written as a ledger-format journal, for hledger to read.

Only the transactions and postings go the fast way; the few rows around them (user, ledger,
commodity, accounts) are written with Core inserts, so that they are stored exactly as the app
stores them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import random
import sqlite3
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from finance.models import Account, Commodity, Ledger, LedgerMember, User

EXPENSES = [
    "Expenses:Food:Groceries",
    "Expenses:Food:Restaurants",
    "Expenses:Food:Coffee",
    "Expenses:Home:Rent",
    "Expenses:Home:Utilities:Electricity",
    "Expenses:Home:Utilities:Water",
    "Expenses:Home:Internet",
    "Expenses:Home:Furniture",
    "Expenses:Transport:Fuel",
    "Expenses:Transport:Public",
    "Expenses:Transport:Repairs",
    "Expenses:Health:Pharmacy",
    "Expenses:Health:Doctor",
    "Expenses:Leisure:Books",
    "Expenses:Leisure:Cinema",
    "Expenses:Leisure:Travel",
    "Expenses:Clothing",
    "Expenses:Gifts",
    "Expenses:Insurance",
    "Expenses:Taxes",
]
ASSETS = ["Assets:Bank:Checking", "Assets:Bank:Savings", "Assets:Cash"]
LIABILITIES = ["Liabilities:CreditCard"]
INCOME = ["Income:Salary", "Income:Interest"]
EQUITY = ["Equity:Opening-Balances"]
# Parents with no postings of their own, as people open them to group their accounts.
PARENTS = [
    "Assets:Bank",
    "Expenses:Food",
    "Expenses:Home",
    "Expenses:Home:Utilities",
    "Expenses:Transport",
    "Expenses:Health",
    "Expenses:Leisure",
]
ACCOUNT_NAMES = ASSETS + LIABILITIES + INCOME + EQUITY + EXPENSES + PARENTS
PAYEES = [f"Shop {i:03d}" for i in range(400)]
TAGS = ["trip", "work", "kids", "gift", "reimbursable"]

TRANSACTION_COLUMNS = (
    "ledger_id",
    "id",
    "date",
    "payee",
    "narration",
    "tags",
    "links",
    "meta",
    "status",
    "external_id",
    "version",
    "created_by",
    "created_at",
    "updated_at",
)
POSTING_COLUMNS = (
    "ledger_id",
    "id",
    "transaction_id",
    "position",
    "date",
    "account_id",
    "commodity_id",
    "amount",
    "weight",
    "weight_commodity_id",
)
Row = tuple[Any, ...]


@dataclass
class SyntheticLedger:
    ledger_id: uuid.UUID
    user_id: uuid.UUID
    accounts: dict[str, uuid.UUID]
    usd: uuid.UUID
    start: dt.date
    end: dt.date
    postings: int = 0
    transactions: int = 0
    # Each account's balance at the end, in cents: what any correct report must find.
    totals: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def _type(name: str) -> str:
    return {
        "Assets": "asset",
        "Liabilities": "liability",
        "Equity": "equity",
        "Income": "income",
        "Expenses": "expense",
    }[name.split(":")[0]]


class _Ids:
    """Version-4 UUIDs from the seeded PRNG: the same ledger, ids included, on every run."""

    def __init__(self, rng: random.Random) -> None:
        self._bits = rng.getrandbits

    def __call__(self) -> uuid.UUID:
        return uuid.UUID(int=self._bits(128), version=4)


@dataclass(frozen=True)
class _Entry:
    date: dt.date
    payee: str
    tags: list[str]
    debit: str
    credit: str
    cents: int


def _entries(start: dt.date, end: dt.date, n_tx: int, rng: random.Random) -> Iterator[_Entry]:
    """Two-posting transactions spread evenly over the period, oldest first."""
    days = (end - start).days + 1
    for i in range(n_tx):
        date = start + dt.timedelta(days=i * days // n_tx)
        roll = rng.random()
        if roll < 0.03:
            debit, credit = "Assets:Bank:Checking", "Income:Salary"
            cents, payee = rng.randint(300_000, 600_000), "Employer Inc"
        elif roll < 0.06:
            debit, credit = "Expenses:Home:Rent", "Assets:Bank:Checking"
            cents, payee = 150_000, "Landlord"
        elif roll < 0.10:
            debit, credit = "Assets:Bank:Savings", "Assets:Bank:Checking"
            cents, payee = rng.randint(1, 500) * 100, "Transfer"
        elif roll < 0.12:
            debit, credit = "Liabilities:CreditCard", "Assets:Bank:Checking"
            cents, payee = rng.randint(10_000, 90_000), "Card payment"
        else:
            debit = rng.choice(EXPENSES)
            credit = "Liabilities:CreditCard" if rng.random() < 0.5 else "Assets:Bank:Checking"
            cents, payee = rng.randint(100, 25_000), rng.choice(PAYEES)
        tags = [rng.choice(TAGS)] if rng.random() < 0.05 else []
        yield _Entry(date, payee, tags, debit, credit, cents)


def _batches(
    ledger: SyntheticLedger,
    n_postings: int,
    rng: random.Random,
    batch: int,
    journal: TextIO | None,
    *,
    sqlite: bool,
) -> Iterator[tuple[list[Row], list[Row]]]:
    """Transaction and posting rows, `batch` postings at a time; keeps the ledger's counts and
    totals, and writes the journal as it goes.

    Values are Python's for asyncpg (JSON columns as text), or already in the form the app's
    SQLite columns store (UUIDs as 32 hex digits, ISO dates, naive UTC timestamps).
    """
    ids = _Ids(rng)
    new_id: Callable[[], Any] = (lambda: ids().hex) if sqlite else ids
    day: Callable[[dt.date], Any] = dt.date.isoformat if sqlite else lambda date: date
    key: Callable[[uuid.UUID], Any] = (lambda value: value.hex) if sqlite else lambda value: value
    now: Any = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    if sqlite:
        now = str(now.replace(tzinfo=None))
    lid, usd, uid = key(ledger.ledger_id), key(ledger.usd), key(ledger.user_id)
    accounts = {name: key(account_id) for name, account_id in ledger.accounts.items()}
    empty_list, empty_object = "[]", "{}"
    totals = ledger.totals
    transactions: list[Row] = []
    postings: list[Row] = []
    for entry in _entries(ledger.start, ledger.end, n_postings // 2, rng):
        tx_id, date = new_id(), day(entry.date)
        tags = json.dumps(entry.tags) if entry.tags else empty_list
        header = (lid, tx_id, date, entry.payee, None, tags, empty_list, empty_object)
        transactions.append((*header, "cleared", None, 1, uid, now, now))
        cents = entry.cents
        for position, (name, amount) in enumerate(((entry.debit, cents), (entry.credit, -cents))):
            postings.append(
                (lid, new_id(), tx_id, position, date, accounts[name], usd, amount, amount, usd)
            )
            totals[name] += amount
        if journal is not None:
            text = f"{cents // 100}.{cents % 100:02d} USD"
            journal.write(
                f"{entry.date} {entry.payee}\n    {entry.debit}  {text}\n"
                f"    {entry.credit}  -{text}\n\n"
            )
        if len(postings) >= batch:
            yield transactions, postings
            transactions, postings = [], []
    if transactions:
        yield transactions, postings
    ledger.transactions = n_postings // 2
    ledger.postings = 2 * ledger.transactions


async def seed(
    engine: AsyncEngine,
    *,
    n_postings: int,
    years: int = 10,
    end: dt.date = dt.date(2025, 12, 31),
    seed_value: int = 20261126,
    journal: Path | None = None,
    batch: int = 50_000,
) -> SyntheticLedger:
    """Create a user, a ledger and its accounts, then `n_postings` postings over `years`.

    With `journal`, the same transactions are written there in ledger format (hledger reads
    it). The tables are analyzed afterwards (and vacuumed on PostgreSQL, which sets the
    visibility map that index-only scans need), as a live database's autovacuum would.
    """
    rng = random.Random(seed_value)
    ids = _Ids(rng)
    user_id, ledger_id, usd = ids(), ids(), ids()
    ledger = SyntheticLedger(
        ledger_id=ledger_id,
        user_id=user_id,
        accounts={name: ids() for name in ACCOUNT_NAMES},
        usd=usd,
        start=dt.date(end.year - years + 1, 1, 1),
        end=end,
    )
    await _write_books(engine, ledger)
    with journal.open("w") if journal is not None else contextlib.nullcontext() as out:
        sqlite = engine.dialect.name == "sqlite"
        rows = _batches(ledger, n_postings, rng, batch, out, sqlite=sqlite)
        if not sqlite:
            await _copy_postgresql(engine, rows)
        else:
            database = engine.url.database
            assert database is not None
            await asyncio.to_thread(_insert_sqlite, database, rows)
    return ledger


async def _write_books(engine: AsyncEngine, ledger: SyntheticLedger) -> None:
    now = dt.datetime.now(dt.UTC)
    async with engine.begin() as conn:
        await conn.execute(
            insert(User).values(
                id=ledger.user_id,
                email=f"bench-{ledger.user_id.hex[:8]}@example.com",
                display_name="Bench",
                password_hash="!",
                is_admin=False,
                is_active=True,
                created_at=now,
                updated_at=now,
            )
        )
        await conn.execute(
            insert(Ledger).values(
                id=ledger.ledger_id,
                name="Bench",
                base_currency="USD",
                created_by=ledger.user_id,
                created_at=now,
                updated_at=now,
            )
        )
        await conn.execute(
            insert(LedgerMember).values(
                ledger_id=ledger.ledger_id, user_id=ledger.user_id, role="owner", created_at=now
            )
        )
        await conn.execute(
            insert(Commodity).values(
                ledger_id=ledger.ledger_id,
                id=ledger.usd,
                code="USD",
                name="US Dollar",
                precision=2,
                created_at=now,
                updated_at=now,
            )
        )
        await conn.execute(
            insert(Account),
            [
                {
                    "ledger_id": ledger.ledger_id,
                    "id": account_id,
                    "name": name,
                    "type": _type(name),
                    "created_at": now,
                    "updated_at": now,
                }
                for name, account_id in ledger.accounts.items()
            ],
        )


async def _copy_postgresql(
    engine: AsyncEngine, batches: Iterator[tuple[list[Row], list[Row]]]
) -> None:
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        async with raw.transaction():
            # The rows are consistent by construction: skip the per-row foreign-key triggers.
            await raw.execute("SET LOCAL session_replication_role = replica")
            for transactions, postings in batches:
                await raw.copy_records_to_table(
                    "transactions", records=transactions, columns=TRANSACTION_COLUMNS
                )
                await raw.copy_records_to_table(
                    "postings", records=postings, columns=POSTING_COLUMNS
                )
        for table in ("transactions", "postings"):
            await raw.execute(f"VACUUM ANALYZE {table}")


def _insert_sqlite(path: str, batches: Iterator[tuple[list[Row], list[Row]]]) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        # Consistent by construction, and a lost seed is simply made again: no foreign-key
        # checks, no fsync, and room in the page cache for the random-key indexes.
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -262144")
        conn.execute("BEGIN IMMEDIATE")
        tx_sql = _insert_sql("transactions", TRANSACTION_COLUMNS)
        posting_sql = _insert_sql("postings", POSTING_COLUMNS)
        for transactions, postings in batches:
            conn.executemany(tx_sql, transactions)
            conn.executemany(posting_sql, postings)
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
    finally:
        conn.close()


def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
