"""Settings read from the environment (and a `.env` file), validated once at start-up."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, Request
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./finance.db"

# What people copy from examples (also padded to the minimum length) is refused.
PLACEHOLDER_WORDS = ("changethis", "changeme", "change-me", "change_me", "your-secret")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = Field(default=DEFAULT_DATABASE_URL, validation_alias="DATABASE_URL")
    sql_echo: bool = Field(default=False, validation_alias="FINANCE_SQL_ECHO")
    secret_key: str | None = Field(default=None, validation_alias="FINANCE_SECRET_KEY")
    redis_url: str | None = Field(default=None, validation_alias="FINANCE_REDIS_URL")

    db_pool_size: int = Field(default=20, ge=1, validation_alias="FINANCE_DB_POOL_SIZE")
    db_max_overflow: int = Field(default=10, ge=0, validation_alias="FINANCE_DB_MAX_OVERFLOW")
    db_pool_timeout: float = Field(default=30.0, gt=0, validation_alias="FINANCE_DB_POOL_TIMEOUT")
    db_statement_timeout_ms: int = Field(
        default=30_000, ge=0, validation_alias="FINANCE_DB_STATEMENT_TIMEOUT_MS"
    )
    db_busy_timeout_ms: int = Field(
        default=30_000, ge=0, validation_alias="FINANCE_DB_BUSY_TIMEOUT_MS"
    )
    migrate_on_start: bool = Field(default=True, validation_alias="FINANCE_MIGRATE_ON_START")

    registration_open: bool = Field(default=True, validation_alias="FINANCE_REGISTRATION_OPEN")
    access_token_minutes: int = Field(
        default=60, ge=1, validation_alias="FINANCE_ACCESS_TOKEN_MINUTES"
    )
    personal_token_max_days: int = Field(
        default=365, ge=1, validation_alias="FINANCE_PERSONAL_TOKEN_MAX_DAYS"
    )
    password_min_length: int = Field(
        default=10, ge=8, validation_alias="FINANCE_PASSWORD_MIN_LENGTH"
    )
    # Argon2id cost. The defaults are OWASP's first recommendation (m=19 MiB, t=2, p=1) raised to
    # m=46 MiB, t=1, which OWASP lists as equivalent. Hashes are upgraded at login when raised.
    argon2_time_cost: int = Field(default=1, ge=1, validation_alias="FINANCE_ARGON2_TIME_COST")
    argon2_memory_kib: int = Field(
        default=47_104, ge=8, validation_alias="FINANCE_ARGON2_MEMORY_KIB"
    )
    argon2_parallelism: int = Field(default=1, ge=1, validation_alias="FINANCE_ARGON2_PARALLELISM")

    login_rate_per_account: str = Field(
        default="10/minute", validation_alias="FINANCE_LOGIN_RATE_PER_ACCOUNT"
    )
    login_rate_per_client: str = Field(
        default="30/minute", validation_alias="FINANCE_LOGIN_RATE_PER_CLIENT"
    )

    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, validation_alias="FINANCE_MAX_BODY_BYTES"
    )
    max_upload_bytes: int = Field(
        default=50 * 1_048_576, ge=1024, validation_alias="FINANCE_MAX_UPLOAD_BYTES"
    )
    import_max_lines: int = Field(
        default=1_000_000, ge=1, validation_alias="FINANCE_IMPORT_MAX_LINES"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO", validation_alias="FINANCE_LOG_LEVEL"
    )

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        """Accept the URLs people have (`postgres://`, `postgresql://`); pick the async drivers."""
        for prefix in (
            "postgres://",
            "postgresql://",
            "postgresql+psycopg2://",
            "postgresql+psycopg://",
        ):
            if value.startswith(prefix):
                return "postgresql+asyncpg://" + value[len(prefix) :]
        if value.startswith("sqlite://") and not value.startswith("sqlite+aiosqlite://"):
            return "sqlite+aiosqlite://" + value[len("sqlite://") :]
        if not value.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
            raise ValueError("DATABASE_URL must be a PostgreSQL or SQLite URL")
        if value.startswith("sqlite") and make_url(value).database in (None, "", ":memory:"):
            # Each pooled connection would see its own empty database, and nothing would last.
            raise ValueError("SQLite needs a file: sqlite+aiosqlite:///path/to/finance.db")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("secret_key")
    @classmethod
    def _no_placeholder(cls, value: str | None) -> str | None:
        if value is not None and (
            len(value) < 32 or any(word in value.lower() for word in PLACEHOLDER_WORDS)
        ):
            raise ValueError(
                "FINANCE_SECRET_KEY must be a random string of at least 32 characters, e.g. "
                "the output of: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        return value

    @model_validator(mode="after")
    def _fill_secret(self) -> Settings:
        if self.secret_key is None:
            self.secret_key = _load_or_create_secret(self.secret_path)
        return self

    @cached_property
    def url(self) -> URL:
        return make_url(self.database_url)

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @property
    def secret_path(self) -> Path:
        """Where a generated secret is kept: beside the SQLite file, else in the working folder."""
        database = self.url.database if self.is_sqlite else None
        folder = Path(database).parent if database and database != ":memory:" else Path()
        return folder / ".finance-secret"

    @property
    def secret(self) -> bytes:
        assert self.secret_key is not None  # filled by the validator
        return self.secret_key.encode()


def _load_or_create_secret(path: Path) -> str:
    """The secret kept at `path`, made on first use (readable by the owner only).

    Created under a temporary name and linked into place, so that two processes starting at
    once agree on one secret and neither ever reads a half-written file.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".finance-secret-")
        try:
            with os.fdopen(fd, "w") as file:  # mkstemp makes it 0600
                file.write(secrets.token_urlsafe(48))
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    value = path.read_text().strip()
    if len(value) < 32:
        raise ValueError(f"{path} does not hold a usable secret; delete it to make a new one")
    return value


async def get_settings(request: Request) -> Settings:
    """The settings the running app was built with (a dependency; async, so that FastAPI does
    not hand it to a worker thread on every request)."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]
