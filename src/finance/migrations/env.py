"""Alembic environment: async engines, batch mode on SQLite, a connection passed in by the app."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from finance.migrations import compare_options


def _run(connection: Connection) -> None:
    context.configure(connection=connection, **compare_options(connection))
    with context.begin_transaction():
        context.run_migrations()


async def _run_own_engine() -> None:
    from finance.config import Settings
    from finance.db import create_engine

    engine = create_engine(Settings())
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(_run_own_engine())
