"""Many rows into one table, fast: PostgreSQL's COPY, SQLite's executemany.

A Core `insert()` of many rows runs every value through SQLAlchemy's per-row parameter
machinery, which costs more than the database's own work for a narrow table. Here each
column's bind processor (the dialect's own conversion: a UUID to SQLite's 32 hex characters,
an enum to its value...) is looked up once and applied to the values, and the rows go to the
driver in one call: `copy_records_to_table` on asyncpg, `executemany` on SQLite. What is
stored is exactly what an `insert()` would store.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncSession

from finance.errors import Conflict


async def serialize(session: AsyncSession, key: uuid.UUID) -> None:
    """Make imports that claim identities in the same scope run one after the other
    (PostgreSQL; SQLite writers queue anyway): the second sees the first's identities instead
    of failing on the unique index."""
    if session.get_bind().dialect.name == "postgresql":
        number = int.from_bytes(key.bytes[:8], "big", signed=True)
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": number})


async def insert_rows(
    session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert `rows` (every column given, by key) in the session's transaction."""
    if not rows:
        return
    connection = await session.connection()
    dialect = connection.dialect
    columns = list(table.columns)
    processors: list[Callable[[Any], Any] | None] = [
        column.type.dialect_impl(dialect).bind_processor(dialect) for column in columns
    ]
    records = [
        tuple(
            processor(row[column.key]) if processor is not None else row[column.key]
            for column, processor in zip(columns, processors, strict=True)
        )
        for row in rows
    ]
    names = [column.name for column in columns]
    if dialect.name == "postgresql":
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        try:
            await driver.copy_records_to_table(table.name, records=records, columns=names)
        except Exception as exc:  # the driver's own error: SQLAlchemy does not wrap COPY
            if getattr(exc, "sqlstate", None) == "23505":
                raise Conflict(
                    "Another import wrote the same lines at the same time; run it again"
                ) from exc
            raise
    else:
        placeholders = ", ".join("?" for _ in names)
        columns_list = ", ".join(names)
        statement = f"INSERT INTO {table.name} ({columns_list}) VALUES ({placeholders})"  # noqa: S608
        await connection.exec_driver_sql(statement, records)
