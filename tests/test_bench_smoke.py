"""The benchmarks' code paths at a tiny scale, so that they cannot rot between runs.

Nothing here is timed. Each benchmark checks that ours and its baseline computed the same
thing (and raises otherwise); the test adds what the benchmark takes for granted: that what it
measures is right against the seeded ledger's own totals.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from bench.harness import (
    AsgiClient,
    BenchDatabase,
    Result,
    bearer_token,
    raw_dsn_of,
    running_app,
)
from bench.imports import bench_imports
from bench.reads import balances_by_account, bench_reads, cents
from bench.reports import bench_reports, income_statement_year
from bench.synthetic import INCOME, SyntheticLedger, seed
from bench.writes import bench_writes

from finance.db import Database
from tests.conftest import Backend


def everything(_name: str) -> bool:
    return True


def bench_database(backend: Backend, database: Database, workdir: Path) -> BenchDatabase:
    return BenchDatabase(backend.name, backend.url, raw_dsn_of(backend.url), database, workdir)


async def check_figures(db: BenchDatabase, ledger: SyntheticLedger) -> None:
    """Balances, trial balance and net income through the API equal the seeded totals."""
    headers = await bearer_token(db, ledger.user_id)
    base = f"/api/v1/ledgers/{ledger.ledger_id}"
    by_name = {account_id: name for name, account_id in ledger.accounts.items()}
    expected = {name: total for name, total in ledger.totals.items() if total}
    async with running_app(db) as app:
        client = AsgiClient(app, headers)
        balances = await client.get_json(f"{base}/balances", {"as_of": ledger.end.isoformat()})
        found = {
            by_name[account_id]: total
            for account_id, total in balances_by_account(balances).items()
        }
        assert found == expected

        trial = await client.get_json(
            f"{base}/reports/trial-balance", {"as_of": ledger.end.isoformat()}
        )
        assert {line["account"]: cents(line["balance"]["USD"]) for line in trial["accounts"]} == (
            expected
        )

        statement = await client.get_json(
            f"{base}/reports/income-statement",
            {"from": ledger.start.isoformat(), "to": ledger.end.isoformat(), "interval": "month"},
        )
        net = sum(cents(period.get("USD", "0")) for period in statement["net_income"])
        earned = -sum(
            total
            for name, total in ledger.totals.items()
            if name.startswith(("Income", "Expenses"))
        )
        assert net == earned
        assert len(statement["periods"]) == 12 * (ledger.end.year - ledger.start.year + 1)

        year = await client.get_json(
            f"{base}/reports/income-statement", income_statement_year(ledger)
        )
        assert len(year["periods"]) == 12


def by_name(results: list[Result]) -> dict[str, Result]:
    found = {result.benchmark: result for result in results}
    assert len(found) == len(results), "two lines of the table have the same name"
    for result in results:
        assert result.ours > 0
        assert result.baseline is None or result.baseline > 0
    return found


async def test_reads_and_reports(backend: Backend, database: Database, tmp_path: Path) -> None:
    db = bench_database(backend, database, tmp_path)
    journal = tmp_path / "bench.journal" if shutil.which("hledger") else None
    ledger = await seed(db.database.engine, n_postings=2000, years=2, journal=journal)
    assert ledger.postings == 2000
    assert sum(ledger.totals.values()) == 0
    assert any(ledger.totals[name] for name in INCOME)

    await check_figures(db, ledger)
    results = by_name(await bench_reads(db, ledger, repeat=1, only=everything))
    assert set(results) == {
        "page of 50 transactions (account subtree + dates)",
        "all balances as of a date",
        "all balances as of a date, latency",
    }
    reports = by_name(await bench_reports(db, ledger, repeat=1, only=everything, journal=journal))
    names = {name.removeprefix("report: ") for name in reports}
    assert {"balance-sheet", "income-statement", "net-worth", "cash-flow"} <= names
    assert {"spending by payee", "trial-balance"} <= names
    assert "income statement, one year monthly: latency" in names
    if journal is not None:
        assert "balance sheet vs `hledger bal`" in names
        assert "income statement (monthly) vs `hledger is --monthly`" in names


async def test_writes(
    backend: Backend, database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The servers read their settings from the environment: cheap password hashing here.
    monkeypatch.setenv("FINANCE_ARGON2_MEMORY_KIB", "1024")
    db = bench_database(backend, database, tmp_path)
    result, framework = await bench_writes(db, requests=8, concurrency=4, in_process=True)
    assert result.benchmark == "create a transaction (API, 4 clients)"
    assert framework.benchmark.startswith("the same POST answered by FastAPI alone")
    for line in (result, framework):
        assert line.backend == backend.name
        assert line.ours > 0
        assert line.baseline is not None
        assert line.baseline > 0


async def test_imports(backend: Backend, database: Database, tmp_path: Path) -> None:
    db = bench_database(backend, database, tmp_path)
    results = by_name(await bench_imports(db, lines=300, in_process=True))
    assert set(results) == {
        "import a CSV statement of 300 lines",
        "import: peak memory",
        "re-import the same statement (all duplicates)",
    }
