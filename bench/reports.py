"""Issue #5: every report vs the same SQL raw, two of them vs hledger, and one latency.

As in `bench.reads`, "ours" is the whole GET request in-process and the raw baseline replays
the statements that request sent. hledger reads the same transactions from a ledger-format
journal written by the seed; its answers are checked against the seed's own totals.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import shutil
import statistics
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.harness import (
    STEADY_STATE_RUNS,
    AsgiClient,
    BenchDatabase,
    Mismatch,
    RawConnection,
    Result,
    StatementLog,
    bearer_token,
    running_app,
    timings,
)
from bench.reads import Rows, as_uuid, cents, versus
from bench.synthetic import SyntheticLedger


def _any_rows(_answer: Any, rows: Rows) -> None:
    if not any(rows[1:]):
        raise Mismatch("the replayed report statements found nothing")


def _trial_balance_check(ledger: SyntheticLedger) -> Callable[[Any, Rows], None]:
    names = {account_id: name for name, account_id in ledger.accounts.items()}

    def check(answer: Any, rows: Rows) -> None:
        ours = {line["account"]: cents(line["balance"]["USD"]) for line in answer["accounts"]}
        for result in rows:
            if result and len(result[0]) == 5:
                raw = {names[as_uuid(row[0]) or uuid.UUID(int=0)]: int(row[3]) for row in result}
                if raw == ours:
                    return
        raise Mismatch("the raw aggregate differs from the trial balance")

    return check


def reports(ledger: SyntheticLedger) -> list[tuple[str, str, dict[str, str]]]:
    start, end = ledger.start.isoformat(), ledger.end.isoformat()
    span = {"from": start, "to": end}
    return [
        ("balance-sheet", "balance-sheet", {"as_of": end}),
        ("income-statement", "income-statement", {**span, "interval": "month"}),
        ("net-worth", "net-worth", {**span, "interval": "month"}),
        ("cash-flow", "cash-flow", {**span, "interval": "month"}),
        ("spending by payee", "spending", {**span, "group_by": "payee"}),
        ("trial-balance", "trial-balance", {"as_of": end}),
    ]


# The reports that are also timed against hledger.
HLEDGER_COMPARED = ("balance-sheet", "income-statement")


def income_statement_year(ledger: SyntheticLedger) -> dict[str, str]:
    year = ledger.end.year
    return {"from": f"{year}-01-01", "to": f"{year}-12-31", "interval": "month"}


async def bench_reports(
    db: BenchDatabase,
    ledger: SyntheticLedger,
    *,
    repeat: int,
    only: Callable[[str], bool],
    journal: Path | None,
) -> list[Result]:
    headers = await bearer_token(db, ledger.user_id)
    base = f"/api/v1/ledgers/{ledger.ledger_id}/reports"
    years = f"{ledger.start.year}-{ledger.end.year}"
    results: list[Result] = []
    answers: dict[str, Any] = {}
    async with running_app(db) as app, RawConnection.open(db) as raw:
        client = AsgiClient(app, headers)
        log = StatementLog(app.state.database.read_engine)
        compared = journal is not None and only("hledger")
        for name, path, query in reports(ledger):
            if not (only(name) or (compared and name in HLEDGER_COMPARED)):
                continue
            check = _trial_balance_check(ledger) if name == "trial-balance" else _any_rows
            ours, baseline, statements, answers[name] = await versus(
                client, raw, log, f"{base}/{path}", query, repeat=repeat, check=check
            )
            results.append(
                Result(
                    f"report: {name}",
                    db.backend,
                    ours * 1000,
                    baseline * 1000,
                    "ms",
                    target_ratio=0.9,
                    higher_is_better=False,
                    baseline_name="same SQL raw",
                    note=f"{len(statements)} statements; "
                    + (f"as of {query['as_of']}" if "as_of" in query else years)
                    + (", monthly" if "interval" in query else ""),
                )
            )
        if only("income-statement latency"):
            query = income_statement_year(ledger)
            latencies = await timings(
                functools.partial(client.get_ok, f"{base}/income-statement", query),
                repeat=repeat * 4,
                warmup=STEADY_STATE_RUNS,
            )
            results.append(
                Result(
                    "income statement, one year monthly: latency",
                    db.backend,
                    statistics.median(latencies) * 1000,
                    None,
                    "ms",
                    limit=200 if db.backend == "postgresql" else None,
                    note=f"median of {len(latencies)}, {query['from']} to {query['to']}",
                )
            )
        log.close()
    if compared and journal is not None:
        results.extend(await _versus_hledger(db, ledger, journal, answers, timed=results))
    return results


def hledger_missing() -> str | None:
    if shutil.which("hledger") is None:
        return "hledger is not installed (apt-get install hledger): the hledger lines are skipped"
    return None


_HLEDGER_RUNS: dict[tuple[int, tuple[str, ...]], tuple[float, str]] = {}


async def _hledger(journal: Path, postings: int, *args: str) -> tuple[float, str]:
    """Seconds and CSV output of `hledger -f journal ARGS`, run once per size and command in
    a run: the journal is the same for both backends, and hledger takes tens of seconds."""
    key = (postings, args)
    if key not in _HLEDGER_RUNS:
        _HLEDGER_RUNS[key] = await _run_hledger(journal, *args)
    return _HLEDGER_RUNS[key]


async def _run_hledger(journal: Path, *args: str) -> tuple[float, str]:
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        "hledger",
        "-f",
        str(journal),
        *args,
        "-O",
        "csv",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise Mismatch(f"hledger {' '.join(args)} failed: {err.decode()[:500]}")
    return elapsed, out.decode()


def _usd_cents(text: str) -> int:
    text = text.strip()
    if text in ("", "0"):
        return 0
    amount, code = text.split()
    assert code == "USD", text
    return int(Decimal(amount).scaleb(2))


async def _versus_hledger(
    db: BenchDatabase,
    ledger: SyntheticLedger,
    journal: Path,
    answers: dict[str, Any],
    timed: list[Result],
) -> list[Result]:
    ours_ms = {result.benchmark.removeprefix("report: "): result.ours for result in timed}
    results: list[Result] = []
    if "balance-sheet" in ours_ms:
        seconds, out = await _hledger(journal, ledger.postings, "bal")
        rows = list(csv.reader(io.StringIO(out)))[1:]
        found = {account: _usd_cents(balance) for account, balance in rows if account != "total"}
        expected = {name: total for name, total in ledger.totals.items() if total}
        if found != expected:
            raise Mismatch("hledger bal disagrees with the seeded totals")
        results.append(
            Result(
                "balance sheet vs `hledger bal`",
                db.backend,
                ours_ms["balance-sheet"],
                seconds * 1000,
                "ms",
                target_ratio=10,
                higher_is_better=False,
                baseline_name="hledger",
                note=f"hledger run once per run, {ledger.postings:,} postings",
            )
        )
    if "income-statement" in ours_ms:
        seconds, out = await _hledger(journal, ledger.postings, "is", "--monthly")
        net = next(row for row in csv.reader(io.StringIO(out)) if row and row[0] == "Net:")
        ours = [
            cents(amounts.get("USD", "0")) for amounts in answers["income-statement"]["net_income"]
        ]
        if [_usd_cents(value) for value in net[1:]] != ours:
            raise Mismatch("hledger is --monthly disagrees with our income statement")
        results.append(
            Result(
                "income statement (monthly) vs `hledger is --monthly`",
                db.backend,
                ours_ms["income-statement"],
                seconds * 1000,
                "ms",
                target_ratio=10,
                higher_is_better=False,
                baseline_name="hledger",
                note=f"hledger run once per run, {len(net) - 1} months",
            )
        )
    return results
