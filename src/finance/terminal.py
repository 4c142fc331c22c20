"""What every `finance` command shares: a database built from the settings, and clean errors."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console

from finance.config import Settings
from finance.db import Database, create_database
from finance.errors import AppError

# Messages, progress and summaries go to standard error, so that a command's output (an
# export) can be piped.
stderr = Console(stderr=True)
T = TypeVar("T")


def run_with_database(work: Callable[[Database], Awaitable[T]]) -> T:
    """Run `work` with a database from the environment's settings, then dispose of it.

    A refusal by the services (an `AppError`) is printed as one line and exits with status 1.
    """

    async def main() -> T:
        database = create_database(Settings())
        try:
            return await work(database)
        finally:
            await database.dispose()

    try:
        return asyncio.run(main())
    except AppError as exc:
        stderr.print(f"[red]error:[/red] {exc.detail}")
        raise typer.Exit(1) from exc
