"""Many rows into one table at the driver's speed: PostgreSQL's COPY, SQLite's executemany.

A Core `insert()` of many rows runs every value through SQLAlchemy's per-row parameter
machinery (and, with RETURNING, reads every row back), which costs more than the database's
own work for a narrow table. Here each column's bind processor (the dialect's own conversion:
a UUID to SQLite's 32 hex characters, a date to its ISO text, JSON to its text, an enum to its
value, `DecimalText` to its digits...) is looked up once per table and applied a column at a
time, and the rows go to the driver in one call: `copy_records_to_table` on asyncpg,
`executemany` on SQLite, on the session's own connection, so in its transaction (and its
savepoint, for a dry run). What is stored is exactly what an `insert()` would store.

Values that are the same on every row (the ledger, the batch, a timestamp) are given once as
`constants` and converted once.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
import weakref
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import Dialect, Table
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

Processor = Callable[[Any], Any]


@dataclass(frozen=True)
class _Plan:
    names: list[str]  # every column written: the varying ones, then the constants
    processors: list[Processor | None]  # the varying columns' converters
    constant_processors: list[Processor | None]


_PlanKey = tuple[str, tuple[str, ...], tuple[str, ...]]
_plans: weakref.WeakKeyDictionary[Dialect, dict[_PlanKey, _Plan]] = weakref.WeakKeyDictionary()


def _plan(
    dialect: Dialect, table: Table, columns: Sequence[str], constants: Sequence[str]
) -> _Plan:
    key = (table.name, tuple(columns), tuple(constants))
    cached = _plans.setdefault(dialect, {})
    plan = cached.get(key)
    if plan is None:
        known = set(table.columns.keys())
        unknown = [name for name in (*columns, *constants) if name not in known]
        assert not unknown, f"{table.name} has no column {unknown}"
        missing = known - set(columns) - set(constants)
        assert not missing, f"every column of {table.name} is written; missing {missing}"

        def processor(name: str) -> Processor | None:
            column = table.columns[name]
            return column.type.dialect_impl(dialect).bind_processor(dialect)

        plan = _Plan(
            names=[table.columns[name].name for name in (*columns, *constants)],
            processors=[processor(name) for name in columns],
            constant_processors=[processor(name) for name in constants],
        )
        cached[key] = plan
    return plan


def _convert(
    plan: _Plan, records: Sequence[Sequence[Any]], constants: Iterable[Any]
) -> list[tuple[Any, ...]]:
    """The rows as the driver takes them, converted a column at a time."""
    count = len(records)
    varying: list[tuple[Any, ...]] = list(zip(*records, strict=True))
    columns: list[Iterable[Any]] = [
        _column(processor, values) if processor is not None else values
        for processor, values in zip(plan.processors, varying, strict=True)
    ]
    for processor, value in zip(plan.constant_processors, constants, strict=True):
        columns.append([processor(value) if processor is not None else value] * count)
    return list(zip(*columns, strict=True))


# Types whose equal values always convert to the same thing (unlike Decimal("1.0") and
# Decimal("1.00"), or one instant in two time zones), so that a value can stand for itself.
_PLAIN = frozenset({uuid.UUID, str, int, dt.date, type(None)})
_SAMPLE = 64


def _memo_key(value: Any) -> Hashable:
    """What identifies the conversion of `value`: the value itself, the type of an empty
    list or dict (JSON `[]`, `{}`), else a new object that matches nothing."""
    kind = type(value)
    if kind in _PLAIN:
        return cast(Hashable, value)
    if (kind is list or kind is dict) and not value:
        return kind
    return object()


def _column(processor: Processor, values: Sequence[Any]) -> Iterable[Any]:
    """One column converted; where values repeat (a date, an account, `[]`), each distinct
    value once."""
    sample = values[:_SAMPLE]
    if len({_memo_key(value) for value in sample}) * 2 > len(sample):
        return map(processor, values)
    memo: dict[Hashable, Any] = {}
    converted = []
    for value in values:
        key = value if type(value) in _PLAIN else _memo_key(value)
        found = memo.get(key, memo)
        if found is memo:
            found = memo[key] = processor(value)
        converted.append(found)
    return converted


# The version (4) and variant (RFC 4122) bits of a random UUID, as `uuid.uuid4` sets them.
_RANDOM_BITS = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_VERSION_4 = (4 << 76) | (0x8000 << 48)


def new_ids(count: int) -> list[uuid.UUID]:
    """`count` random (version 4) UUIDs, as `uuid.uuid4` makes them, from one read of the
    system's random source instead of one each."""
    data = os.urandom(16 * count)
    number = int.from_bytes
    return [
        uuid.UUID(int=(number(data[start : start + 16]) & _RANDOM_BITS) | _VERSION_4)
        for start in range(0, 16 * count, 16)
    ]


async def insert_records(
    session: AsyncSession,
    table: Table,
    columns: Sequence[str],
    records: Sequence[Sequence[Any]],
    constants: Mapping[str, Any] | None = None,
) -> None:
    """Insert `records` (tuples of the values of `columns`, in that order) into `table`, each
    with the `constants` too, in the session's transaction. Every column of the table is
    given, by one or the other: no default is applied here.

    Errors are SQLAlchemy's, as for any statement: `IntegrityError` for a violated
    constraint, `DBAPIError` carrying the driver's error (and its SQLSTATE) otherwise.
    """
    if not records:
        return
    constants = constants or {}
    connection = await session.connection()
    dialect = connection.dialect
    plan = _plan(dialect, table, columns, list(constants))
    rows = _convert(plan, records, constants.values())
    if dialect.name == "postgresql":
        await _copy(connection, table, plan.names, rows)
    else:
        placeholders = ", ".join("?" for _ in plan.names)
        statement = f"INSERT INTO {table.name} ({', '.join(plan.names)}) VALUES ({placeholders})"  # noqa: S608 - the table's own names
        await connection.exec_driver_sql(statement, rows)


async def insert_rows(
    session: AsyncSession,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    constants: Mapping[str, Any] | None = None,
) -> None:
    """`insert_records` for rows given as dicts (every column by its key)."""
    if not rows:
        return
    columns = list(rows[0])
    if len(columns) == 1:
        records: list[Sequence[Any]] = [(row[columns[0]],) for row in rows]
    else:
        values = itemgetter(*columns)  # a tuple of the values, for more than one name
        records = [values(row) for row in rows]
    await insert_records(session, table, columns, records, constants)


async def _copy(
    connection: AsyncConnection, table: Table, names: list[str], rows: list[tuple[Any, ...]]
) -> None:
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    if not driver.is_in_transaction():
        # SQLAlchemy's asyncpg adapter begins its transaction with the first statement; make
        # sure there is one, so that the COPY is part of it and not committed on its own.
        await connection.exec_driver_sql("SELECT 1")
    statement = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
    try:
        await driver.copy_records_to_table(table.name, records=rows, columns=names)
    except Exception as exc:  # the driver's own error: SQLAlchemy does not see a COPY
        sqlstate = getattr(exc, "sqlstate", None)
        if not isinstance(sqlstate, str):
            raise
        wrapper = IntegrityError if sqlstate.startswith("23") else DBAPIError
        raise wrapper(statement, None, exc) from exc
