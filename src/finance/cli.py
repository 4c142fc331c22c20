"""The `finance` command: serve, migrate, manage users (Typer)."""

from __future__ import annotations

import copy
import sys
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from finance import migrations
from finance.config import Settings
from finance.db import Database
from finance.imports.cli import register as register_imports
from finance.terminal import run_with_database

app = typer.Typer(help="Finance: exact double-entry books for a household.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
user_app = typer.Typer(help="Manage users.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
register_imports(app)

console = Console()
T = TypeVar("T")


@app.command()
def serve(
    host: Annotated[str, typer.Option(envvar="HOST", help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PORT", help="Port to listen on")] = 8000,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development)")] = False,
    workers: Annotated[
        int,
        typer.Option(
            envvar="WEB_CONCURRENCY",
            min=1,
            help="Worker processes (about one per core on PostgreSQL; SQLite writes one at a "
            "time whatever the count)",
        ),
    ] = 1,
) -> None:
    """Serve the API (migrating the database first unless FINANCE_MIGRATE_ON_START=false)."""
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    settings = Settings()
    console.print(
        f"Finance on http://{host}:{port} (API docs at /docs), database {settings.url!r}",
        soft_wrap=True,
    )
    # The app's own loggers (requests with their ids) print beside uvicorn's; its
    # access log is off because the request log says the same with the request id.
    log_config = copy.deepcopy(LOGGING_CONFIG)
    log_config["loggers"]["finance"] = {"handlers": ["default"], "level": settings.log_level}
    uvicorn.run(
        "finance.app:create_app",
        factory=True,
        host=host,
        port=port,
        reload=reload,
        workers=workers,
        log_config=log_config,
        log_level=settings.log_level.lower(),
        access_log=False,
        proxy_headers=True,
    )


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Migrate the database up to REVISION (default: the latest)."""

    async def upgrade(database: Database) -> str | None:
        await migrations.upgrade(database.engine, revision)
        return await migrations.current_revision(database.engine)

    console.print(f"Database at {run_with_database(upgrade) or 'base (empty)'}.")


# Unknown options are taken as arguments, so that a relative revision like -1 reads naturally.
@db_app.command("downgrade", context_settings={"ignore_unknown_options": True})
def db_downgrade(revision: Annotated[str, typer.Argument(help="e.g. -1 or base")]) -> None:
    """Migrate the database down to REVISION."""

    async def downgrade(database: Database) -> str | None:
        await migrations.downgrade(database.engine, revision)
        return await migrations.current_revision(database.engine)

    console.print(f"Database at {run_with_database(downgrade) or 'base (empty)'}.")


@db_app.command("current")
def db_current() -> None:
    """Show the database's migration revision and the latest one."""
    current = run_with_database(lambda database: migrations.current_revision(database.engine))
    head = migrations.head_revision()
    state = "up to date" if current == head else "behind: run `finance db upgrade`"
    console.print(f"current: {current or 'empty database'}  head: {head}  ({state})")


@db_app.command("revision")
def db_revision(message: Annotated[str, typer.Option("-m", "--message")]) -> None:
    """(Development) Generate a migration from the models' difference with the database."""
    from alembic import command

    async def generate(database: Database) -> None:
        async with database.engine.begin() as conn:
            await conn.run_sync(
                lambda sync: command.revision(
                    migrations.alembic_config(sync), message=message, autogenerate=True
                )
            )

    run_with_database(generate)


def _read_password(confirm: bool = True) -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=confirm))


@user_app.command("create")
def user_create(
    email: str,
    admin: Annotated[bool, typer.Option("--admin", help="Make the user an administrator")] = False,
    name: Annotated[str | None, typer.Option(help="Display name (default: the email)")] = None,
) -> None:
    """Create a user; the password is prompted for, or read from standard input in scripts."""
    from finance.auth import service

    password = _read_password()

    async def create(database: Database) -> str:
        async with database.sessions() as session, session.begin():
            user = await service.create_user(
                session,
                Settings(),
                email=email,
                password=password,
                display_name=name or email,
                is_admin=admin,
            )
            return user.email

    created = run_with_database(create)
    console.print(f"Created {'administrator' if admin else 'user'} {created}.")


@user_app.command("list")
def user_list() -> None:
    """List the users of this server."""
    from sqlalchemy import select

    from finance.models import User

    async def fetch(database: Database) -> list[User]:
        async with database.read_sessions() as session:
            return list(await session.scalars(select(User).order_by(User.created_at)))

    users = run_with_database(fetch)
    table = Table("email", "name", "admin", "active", "created")
    for user in users:
        table.add_row(
            user.email,
            user.display_name,
            "yes" if user.is_admin else "",
            "yes" if user.is_active else "no",
            user.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)
