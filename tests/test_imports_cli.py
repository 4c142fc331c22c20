"""`finance import` and `finance export`: the services from a terminal, as a ledger member."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import anyio
import httpx
import pytest
import typer
from typer.testing import CliRunner, Result

from finance.db import Database
from finance.imports.cli import register
from tests.books import add_member, open_books
from tests.conftest import AuthedUser, Backend, UserFactory
from tests.test_imports import DATA, balances, transaction_count

pytestmark = [
    pytest.mark.filterwarnings("ignore::ofxtools.Types.OFXTypeWarning"),
    pytest.mark.filterwarnings("ignore::ofxtools.models.base.OFXAggregateWarning"),
]


@pytest.fixture
def finance(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    """The two commands, configured (through the environment) for the test database."""
    settings = backend.settings()
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("FINANCE_SECRET_KEY", settings.secret.decode())
    app = typer.Typer()
    register(app)
    return app


async def invoke(app: typer.Typer, *args: str) -> Result:
    """Run a command in a thread: it runs its own event loop, as from a shell."""
    runner = CliRunner(env={"COLUMNS": "200"})
    return await anyio.to_thread.run_sync(lambda: runner.invoke(app, list(args)))


async def test_import_and_export_from_the_command_line(
    finance: typer.Typer,
    client: httpx.AsyncClient,
    user: AuthedUser,
    database: Database,
    tmp_path: Path,
) -> None:
    books = await open_books(client, user, "Assets:Bank:Checking")
    statement = str(DATA / "checking-2024-01.ofx")
    result = await invoke(
        finance,
        "import",
        statement,
        "--ledger",
        "Home",
        "--account",
        "Assets:Bank:Checking",
        "--dry-run",
    )
    assert result.exit_code == 0, result.output
    assert "Dry run" in result.output
    assert await transaction_count(database, books.ledger_id) == 0

    result = await invoke(
        finance,
        "import",
        statement,
        "--ledger",
        books.ledger_id,
        "--account",
        books.id("Assets:Bank:Checking"),
    )
    assert result.exit_code == 0, result.output
    assert "new" in result.output
    assert await transaction_count(database, books.ledger_id) == 7
    result = await invoke(
        finance, "import", statement, "--ledger", "Home", "--account", "Assets:Bank:Checking"
    )
    assert result.exit_code == 0, result.output
    assert "already imported" in result.output
    assert await transaction_count(database, books.ledger_id) == 7

    result = await invoke(
        finance,
        "import",
        str(DATA / "bank-us.csv"),
        "--ledger",
        "Home",
        "--account",
        "Assets:Bank:Checking",
        "--mapping",
        '{"date": "Posting Date", "date_format": "%m/%d/%Y", "debit": "Debit", '
        '"credit": "Credit", "payee": "Description", "thousands_separator": ","}',
    )
    assert result.exit_code == 0, result.output

    output = tmp_path / "home.beancount"
    result = await invoke(
        finance, "export", "--ledger", "Home", "--format", "beancount", "-o", str(output)
    )
    assert result.exit_code == 0, result.output
    assert "SHELL OIL 57442" in output.read_text()
    bean_check = shutil.which("bean-check", path=str(Path(sys.executable).parent))
    assert bean_check is not None
    checked = await anyio.run_process([bean_check, str(output)], check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    again = await open_books(client, user)
    result = await invoke(finance, "import", str(output), "--ledger", again.ledger_id)
    assert result.exit_code == 0, result.output
    assert await balances(database, again.ledger_id) == await balances(database, books.ledger_id)


async def test_who_the_command_acts_as(
    finance: typer.Typer, client: httpx.AsyncClient, user: AuthedUser, make_user: UserFactory
) -> None:
    books = await open_books(client, user, "Assets:Bank:Checking")
    statement = str(DATA / "checking-2024-01.ofx")
    args = ("import", statement, "--ledger", "Home", "--account", "Assets:Bank:Checking")
    viewer = await make_user()
    await add_member(books, viewer, "viewer")
    result = await invoke(finance, *args, "--user", viewer.email)
    assert result.exit_code == 1
    assert "viewer" in result.output
    result = await invoke(
        finance, "export", "--ledger", "Home", "--format", "csv", "--user", viewer.email
    )
    assert result.exit_code == 0, result.output
    stranger = await make_user()
    result = await invoke(finance, *args, "--user", stranger.email)
    assert result.exit_code == 1
    assert "not a member" in result.output

    second_owner = await make_user()
    await add_member(books, second_owner, "owner")
    result = await invoke(finance, *args)
    assert result.exit_code == 1
    assert "--user" in result.output
    result = await invoke(finance, *args, "--user", second_owner.email.upper())
    assert result.exit_code == 0, result.output

    await open_books(client, stranger)
    result = await invoke(finance, *args, "--user", user.email)
    assert result.exit_code == 1
    assert "2 ledgers are named 'Home'" in result.output
    result = await invoke(finance, "import", statement, "--ledger", "Nowhere")
    assert result.exit_code == 1
    assert "No ledger 'Nowhere'" in result.output
