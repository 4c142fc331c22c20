"""Alembic, shipped inside the package so that an installed service migrates itself."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

HERE = Path(__file__).parent


def compare_options(connection: Connection) -> dict[str, Any]:
    """How the models are compared with a database, by `env.py` and by `pending_changes`."""
    from finance.models import Base

    return {
        "target_metadata": Base.metadata,
        # SQLite cannot ALTER most things: changes are made by copying the table.
        "render_as_batch": connection.dialect.name == "sqlite",
        "compare_type": True,
        "user_module_prefix": "finance.models.base.",
    }


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config(HERE / "alembic.ini")
    config.set_main_option("script_location", str(HERE))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    await run(engine, lambda config: command.upgrade(config, revision))


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    await run(engine, lambda config: command.downgrade(config, revision))


async def run(engine: AsyncEngine, step: Callable[[Config], None]) -> None:
    """Run a migration step in one transaction, with SQLite's foreign keys off meanwhile.

    On SQLite, batch mode changes a table by copying it and dropping the original; with
    foreign keys enforced, that drop would apply every `ON DELETE CASCADE` pointing at the
    table and silently empty its children. So enforcement is off during the step (it can only
    be switched outside a transaction), the references are checked before the commit, and it
    is switched on again before the connection goes back to the pool.
    """
    async with engine.connect() as conn:
        await conn.run_sync(_run_sync, step)


def _run_sync(connection: Connection, step: Callable[[Config], None]) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        _pragma(connection, "foreign_keys = OFF")
    try:
        with connection.begin():
            step(alembic_config(connection))
            if sqlite:
                dangling = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if dangling:
                    raise RuntimeError(f"the migration leaves dangling references: {dangling}")
    finally:
        if sqlite:
            _pragma(connection, "foreign_keys = ON")


def _pragma(connection: Connection, pragma: str) -> None:
    """Straight to the driver: through SQLAlchemy it would first begin a transaction."""
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"PRAGMA {pragma}")
    finally:
        cursor.close()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


async def pending_changes(engine: AsyncEngine) -> list[object]:
    """What the models and the migrated schema disagree on (empty when they agree).

    The same comparison as `alembic check`, on the app's own engine.
    """
    from finance.models import Base

    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts=compare_options(sync)), Base.metadata
            )
        )
