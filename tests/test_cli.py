"""The `finance` command: migrations and users from a shell, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from finance import migrations
from finance.app import create_app
from finance.cli import app
from tests.conftest import (
    PASSWORD,
    _create_postgres_database,
    _drop_postgres_database,
    asgi_client,
    postgres_url,
)

runner = CliRunner()


@pytest.fixture(params=["sqlite", "postgresql"])
def environment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a shell whose DATABASE_URL names an empty database."""
    env = {
        "FINANCE_SECRET_KEY": "cli-secret-" + "x" * 40,
        "FINANCE_ARGON2_TIME_COST": "1",
        "FINANCE_ARGON2_MEMORY_KIB": "1024",
        "COLUMNS": "200",
    }
    if request.param == "sqlite":
        yield {**env, "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
        return
    name = asyncio.run(_create_postgres_database())
    try:
        # A plain postgresql:// URL, as an operator would write it.
        yield {**env, "DATABASE_URL": postgres_url(name)}
    finally:
        asyncio.run(_drop_postgres_database(name))


def finance(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    result = runner.invoke(app, list(args), env=env, input=stdin)
    assert result.exit_code == 0, result.output
    return result.output


def test_database_and_users_from_the_shell(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "empty database" in finance(environment, "db", "current")
    head = migrations.head_revision()
    assert f"Database at {head}." in finance(environment, "db", "upgrade")
    assert "up to date" in finance(environment, "db", "current")

    created = finance(environment, "user", "create", "Ada@Example.com", "--admin", stdin=PASSWORD)
    assert "Created administrator ada@example.com." in created
    assert "Created user bob@example.com." in finance(
        environment, "user", "create", "bob@example.com", "--name", "Bob", stdin=PASSWORD + "\n"
    )
    duplicate = runner.invoke(
        app, ["user", "create", "ada@example.com"], env=environment, input=PASSWORD
    )
    assert duplicate.exit_code == 1
    assert "already exists" in duplicate.output
    weak = runner.invoke(app, ["user", "create", "eve@example.com"], env=environment, input="short")
    assert weak.exit_code == 1
    assert "at least 10 characters" in weak.output

    listing = finance(environment, "user", "list")
    lines = [line for line in listing.splitlines() if "@example.com" in line]
    assert len(lines) == 2
    assert "ada@example.com" in lines[0]
    assert lines[0].count("yes") == 2  # administrator, active
    assert "bob@example.com" in lines[1]
    assert "Bob" in lines[1]
    assert lines[1].count("yes") == 1

    # The administrator made here signs in through the API.
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert asyncio.run(_signs_in_as_admin("ada@example.com"))

    assert "Database at " in finance(environment, "db", "downgrade", "-1")
    assert "behind" in finance(environment, "db", "current")
    finance(environment, "db", "upgrade")
    assert "Database at base (empty)." in finance(environment, "db", "downgrade", "base")
    assert "empty database" in finance(environment, "db", "current")


async def _signs_in_as_admin(email: str) -> bool:
    api = create_app()
    async with api.router.lifespan_context(api), asgi_client(api) as client:
        token = await client.post(
            "/api/v1/auth/token", data={"username": email, "password": PASSWORD}
        )
        users = await client.get(
            "/api/v1/users", headers={"Authorization": f"Bearer {token.json()['access_token']}"}
        )
    return users.status_code == 200 and len(users.json()) == 2


def test_python_dash_m_finance() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "finance", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    for command in ("serve", "db", "user"):
        assert command in result.stdout
    serve = runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    for option in ("--host", "--port", "--workers", "--reload"):
        assert option in serve.output


def test_serve_passes_the_worker_count_to_uvicorn(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import uvicorn

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: seen.update(options, app=app))
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'f.db'}", "WEB_CONCURRENCY": "3"}
    result = runner.invoke(app, ["serve", "--port", "8123"], env=env)
    assert result.exit_code == 0, result.output
    assert seen["app"] == "finance.app:create_app"
    assert seen["factory"] is True
    assert (seen["workers"], seen["port"]) == (3, 8123)
    result = runner.invoke(app, ["serve", "--workers", "0"], env=env)
    assert result.exit_code != 0
