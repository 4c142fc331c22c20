"""Issue #3: one filtered page of transactions, and every balance as of a date, vs the same SQL.

"Ours" is the whole GET request through the app in-process (authentication, the ledger
membership check, the service, the JSON answer). The baseline replays, on the raw driver, the
very statements that request sent to the database (captured with SQLAlchemy's cursor event),
and fetches their rows; both answers are compared before anything is timed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from bench.harness import (
    STEADY_STATE_RUNS,
    AsgiClient,
    BenchDatabase,
    Mismatch,
    RawConnection,
    Result,
    Statement,
    StatementLog,
    bearer_token,
    paired_medians,
    queries,
    running_app,
)
from bench.synthetic import SyntheticLedger

PAGE_ACCOUNT = "Expenses:Food"
Rows = list[list[tuple[Any, ...]]]


def as_uuid(value: Any) -> uuid.UUID | None:
    """A UUID as either driver returns it (asyncpg: UUID; sqlite3: 32 hex digits)."""
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str) and len(value) in (32, 36):
        try:
            return uuid.UUID(value)
        except ValueError:
            return None
    return None


def cents(amount: str) -> int:
    return int(Decimal(amount).scaleb(2))


async def versus(
    client: AsgiClient,
    raw: RawConnection,
    log: StatementLog,
    path: str,
    query: Mapping[str, str],
    *,
    repeat: int,
    check: Callable[[Any, Rows], None],
) -> tuple[float, float, list[Statement], Any]:
    """Median seconds of the request and of the raw replay of its statements (alternated),
    the statements and the answer, after checking that both found the same thing. Ours is
    timed in the steady state: after the request ran `STEADY_STATE_RUNS` times on the pool's
    connection."""
    for _ in range(STEADY_STATE_RUNS - 1):
        await client.get_ok(path, query)
    with log.capturing() as captured:
        answer = await client.get_json(path, query)
    statements = queries(captured)
    check(answer, await raw.replay(statements))

    async def ours() -> None:
        await client.get_ok(path, query)

    async def baseline() -> None:
        await raw.replay(statements)

    mine, theirs = await paired_medians(ours, baseline, repeat=repeat, warmup=0)
    return mine, theirs, statements, answer


def check_page(answer: Any, rows: Rows) -> None:
    items = answer["items"]
    if not items:
        raise Mismatch("the page is empty: the benchmark would measure nothing")
    ids = [uuid.UUID(item["id"]) for item in items]
    for result in rows:  # a row per transaction, or per posting when they are read together
        found = {as_uuid(value) for row in result for value in row}
        if found.issuperset(ids):
            return
    raise Mismatch("no replayed statement returned the page's transactions")


def balances_by_account(answer: Any) -> dict[uuid.UUID, int]:
    found = {}
    for account in answer["accounts"]:
        for amount in account["balances"]:
            assert amount["commodity"] == "USD"
            found[uuid.UUID(account["account_id"])] = cents(amount["amount"])
    return found


def check_balances(answer: Any, rows: Rows) -> None:
    ours = balances_by_account(answer)
    for result in rows:
        if result and len(result[0]) == 3:
            raw = {as_uuid(row[0]): int(row[2]) for row in result if int(row[2]) != 0}
            if raw == ours:
                return
    raise Mismatch("the raw aggregate's balances differ from the API's")


def page_query(ledger: SyntheticLedger) -> dict[str, str]:
    year = ledger.end.year
    return {
        "account_id": str(ledger.accounts[PAGE_ACCOUNT]),
        "include_descendants": "true",
        "from": f"{year - 1}-01-01",
        "to": f"{year - 1}-12-31",
        "limit": "50",
    }


def _note(statements: Sequence[Statement]) -> str:
    return f"{len(statements)} statements replayed"


async def bench_reads(
    db: BenchDatabase, ledger: SyntheticLedger, *, repeat: int, only: Callable[[str], bool]
) -> list[Result]:
    headers = await bearer_token(db, ledger.user_id)
    base = f"/api/v1/ledgers/{ledger.ledger_id}"
    results: list[Result] = []
    async with running_app(db) as app, RawConnection.open(db) as raw:
        client = AsgiClient(app, headers)
        log = StatementLog(app.state.database.read_engine)
        if only("page"):
            ours, baseline, statements, _ = await versus(
                client,
                raw,
                log,
                f"{base}/transactions",
                page_query(ledger),
                repeat=repeat * 5,
                check=check_page,
            )
            results.append(
                Result(
                    "page of 50 transactions (account subtree + dates)",
                    db.backend,
                    ours * 1000,
                    baseline * 1000,
                    "ms",
                    target_ratio=0.6,
                    higher_is_better=False,
                    baseline_name="same SQL raw",
                    note=_note(statements),
                )
            )
        if only("balances"):
            ours, baseline, statements, _ = await versus(
                client,
                raw,
                log,
                f"{base}/balances",
                {"as_of": ledger.end.isoformat()},
                repeat=repeat,
                check=check_balances,
            )
            results.append(
                Result(
                    "all balances as of a date",
                    db.backend,
                    ours * 1000,
                    baseline * 1000,
                    "ms",
                    target_ratio=0.9,
                    higher_is_better=False,
                    baseline_name="same SQL raw",
                    note=_note(statements),
                )
            )
            results.append(
                Result(
                    "all balances as of a date, latency",
                    db.backend,
                    ours * 1000,
                    None,
                    "ms",
                    limit=1000 if db.backend == "postgresql" else None,
                    note=f"median of {repeat}, over {ledger.postings:,} postings",
                )
            )
        log.close()
    return results
