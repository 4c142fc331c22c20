"""Settings: database URLs people have, secrets that are refused, the generated secret."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import text

from finance.config import DEFAULT_DATABASE_URL, Settings
from finance.db import create_database

SECRET = "a-real-secret-" + "s" * 40


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **{"FINANCE_SECRET_KEY": SECRET, **values})


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "FINANCE_SECRET_KEY", "FINANCE_SQL_ECHO"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgres://me:pw@db:5432/books", "postgresql+asyncpg://me:pw@db:5432/books"),
        ("postgresql://me@db/books", "postgresql+asyncpg://me@db/books"),
        ("postgresql+psycopg2://me@db/books", "postgresql+asyncpg://me@db/books"),
        ("postgresql+asyncpg://me@db/books", "postgresql+asyncpg://me@db/books"),
        ("sqlite:///./books.db", "sqlite+aiosqlite:///./books.db"),
        ("sqlite+aiosqlite:////srv/books.db", "sqlite+aiosqlite:////srv/books.db"),
    ],
)
def test_database_urls_get_the_async_drivers(given: str, used: str) -> None:
    assert settings(DATABASE_URL=given).database_url == used


@pytest.mark.parametrize(
    "url", ["mysql://me@db/books", "sqlite+aiosqlite://", "sqlite+aiosqlite:///:memory:", "books"]
)
def test_unusable_database_urls_are_refused(url: str) -> None:
    with pytest.raises(ValidationError):
        settings(DATABASE_URL=url)


def test_the_environment_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://me@db/books")
    monkeypatch.setenv("FINANCE_SECRET_KEY", SECRET)
    monkeypatch.setenv("FINANCE_SQL_ECHO", "true")
    monkeypatch.setenv("FINANCE_REGISTRATION_OPEN", "false")
    monkeypatch.setenv("FINANCE_MAX_BODY_BYTES", "2048")
    monkeypatch.setenv("FINANCE_LOG_LEVEL", "debug")
    found = Settings(_env_file=None)
    assert found.database_url == "postgresql+asyncpg://me@db/books"
    assert found.sql_echo is True
    assert found.registration_open is False
    assert found.max_body_bytes == 2048
    assert found.log_level == "DEBUG"
    assert Settings.model_fields["database_url"].default == DEFAULT_DATABASE_URL
    assert DEFAULT_DATABASE_URL == "sqlite+aiosqlite:///./finance.db"


@pytest.mark.parametrize(
    "secret",
    ["changethis", "CHANGEME", "secret", "too-short-1234567890", "changethis" * 4, "Change-Me" * 5],
)
def test_placeholder_and_short_secrets_are_refused(secret: str) -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        settings(DATABASE_URL="postgresql://x/y", FINANCE_SECRET_KEY=secret)


def test_a_secret_is_generated_beside_the_sqlite_file_and_kept(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'finance.db'}"
    first = Settings(_env_file=None, DATABASE_URL=url)
    path = tmp_path / "data" / ".finance-secret"
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.secret_key == path.read_text().strip()
    assert first.secret_key is not None
    assert len(first.secret_key) >= 32
    assert Settings(_env_file=None, DATABASE_URL=url).secret_key == first.secret_key
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    # A given secret wins over the file.
    assert (
        Settings(_env_file=None, DATABASE_URL=url, FINANCE_SECRET_KEY=SECRET).secret_key == SECRET
    )


def test_an_unusable_secret_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / ".finance-secret").write_text("\n")
    with pytest.raises(ValidationError, match="does not hold a usable secret"):
        Settings(_env_file=None, DATABASE_URL=f"sqlite:///{tmp_path / 'finance.db'}")


async def test_sql_echo_reaches_the_engine(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'echo.db'}"
    quiet = create_database(settings(DATABASE_URL=url))
    loud = create_database(settings(DATABASE_URL=url, FINANCE_SQL_ECHO=True))
    try:
        assert quiet.engine.echo is quiet.read_engine.echo is False
        assert loud.engine.echo is loud.read_engine.echo is True
        async with loud.engine.connect() as conn:
            await conn.execute(text("SELECT 42"))
    finally:
        await quiet.dispose()
        await loud.dispose()
    assert any("SELECT 42" in record.getMessage() for record in caplog.records)


def test_pool_and_timeouts_reach_the_engine(tmp_path: Path) -> None:
    configured = settings(
        DATABASE_URL=f"sqlite:///{tmp_path / 'pool.db'}",
        FINANCE_DB_POOL_SIZE=3,
        FINANCE_DB_MAX_OVERFLOW=2,
        FINANCE_DB_POOL_TIMEOUT=7,
    )
    database = create_database(configured)
    readers = database.read_engine.pool
    assert readers.size() == 3  # type: ignore[attr-defined]
    assert readers._max_overflow == 2  # type: ignore[attr-defined]
    assert readers._timeout == 7  # type: ignore[attr-defined]
    # SQLite's writer is one connection; writers wait for it up to the same timeout.
    writer = database.engine.pool
    assert (writer.size(), writer._max_overflow) == (1, 0)  # type: ignore[attr-defined]
    assert writer._timeout == 7  # type: ignore[attr-defined]
