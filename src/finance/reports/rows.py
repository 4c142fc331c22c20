"""How the reports read rows: Core statements on the session's connection, ids unconverted.

A report's grouped sums come back as thousands of rows (accounts x commodities x periods);
the ORM's result machinery and a `uuid.UUID` built from every id would cost more than the
rest of the report's Python, so rows are fetched as Core rows and their ids are kept as the
driver returns them, to be looked up in maps keyed the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, ColumnExpressionArgument, Executable, Row, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import NullType


def raw(column: ColumnExpressionArgument[Any]) -> ColumnElement[Any]:
    """`column` as the driver returns it, unconverted (the SQL is the same): an id comes back
    as 32 hex digits on SQLite and as a UUID on PostgreSQL. A key, never a value to show."""
    return type_coerce(column, NullType())


async def fetch(session: AsyncSession, statement: Executable) -> Sequence[Row[*tuple[Any, ...]]]:
    """All rows of a Core statement, in the session's transaction."""
    connection = await session.connection()
    return (await connection.execute(statement)).all()
