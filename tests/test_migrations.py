"""Migrations on an empty database: up, in step with the models, down to nothing and up again."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import Connection

from finance import migrations
from finance.config import Settings
from finance.db import create_database
from finance.models import AuthToken, TokenKind, User
from tests.conftest import Backend


def _tables(sync: Connection) -> set[str]:
    return set(inspect(sync).get_table_names())


async def test_upgrade_check_downgrade_upgrade(backend: Backend, fresh_url: str) -> None:
    database = create_database(backend.settings(DATABASE_URL=fresh_url))
    engine = database.engine
    try:
        assert await migrations.current_revision(engine) is None
        await migrations.upgrade(engine)
        assert await migrations.current_revision(engine) == migrations.head_revision()
        assert await migrations.pending_changes(engine) == []
        async with engine.connect() as conn:
            assert {"users", "auth_tokens", "alembic_version"} <= await conn.run_sync(_tables)
            unique = await conn.run_sync(lambda sync: inspect(sync).get_unique_constraints("users"))
        # Constraints are named by the convention, so later migrations can find them.
        assert {c["name"] for c in unique} == {"uq_users_email"}

        # The check notices a schema that differs from the models.
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE stray (id INTEGER PRIMARY KEY)"))
        changes = await migrations.pending_changes(engine)
        assert [change[0] for change in changes] == ["remove_table"]  # type: ignore[index]
        async with engine.begin() as conn:
            await conn.execute(text("DROP TABLE stray"))

        await migrations.downgrade(engine, "base")
        assert await migrations.current_revision(engine) is None
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) <= {"alembic_version"}

        await migrations.upgrade(engine)
        assert await migrations.current_revision(engine) == migrations.head_revision()
        assert await migrations.pending_changes(engine) == []
    finally:
        await database.dispose()


def test_the_migrations_ship_inside_the_package() -> None:
    folder = migrations.HERE
    assert (folder / "alembic.ini").is_file()
    assert (folder / "script.py.mako").is_file()
    assert list((folder / "versions").glob("*.py"))
    assert migrations.head_revision() is not None


async def test_rebuilding_a_sqlite_table_keeps_the_rows_that_point_at_it(tmp_path: Path) -> None:
    """Batch mode copies and drops `users`; the drop must not cascade to the tokens."""
    settings = Settings(
        _env_file=None,
        DATABASE_URL=f"sqlite:///{tmp_path / 'batch.db'}",
        FINANCE_SECRET_KEY="test-secret-" + "x" * 40,
        FINANCE_DB_POOL_SIZE=1,
        FINANCE_DB_MAX_OVERFLOW=0,
    )
    database = create_database(settings)
    try:
        await migrations.upgrade(database.engine)
        async with database.sessions() as session, session.begin():
            user = User(email="ada@example.com", display_name="Ada", password_hash="-")
            session.add(user)
            await session.flush()
            session.add(AuthToken(user_id=user.id, kind=TokenKind.SESSION, token_hash="h" * 64))

        def rebuild_users(config: Config) -> None:
            context = MigrationContext.configure(
                config.attributes["connection"], opts={"render_as_batch": True}
            )
            with Operations(context).batch_alter_table("users", recreate="always"):
                pass

        await migrations.run(database.engine, rebuild_users)
        async with database.engine.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(AuthToken)) == 1
            # The one pooled connection enforces foreign keys again.
            assert await conn.scalar(text("PRAGMA foreign_keys")) == 1
    finally:
        await database.dispose()
