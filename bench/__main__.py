"""`python -m bench` (`make bench`): every benchmark, on SQLite and PostgreSQL, as one table.

Each backend gets fresh databases: one for the write benchmark, one seeded with the synthetic
ledger for the reads and reports, one for the imports. The table is printed and written to
bench/results/latest.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import asyncpg

from bench.harness import POSTGRES_ADMIN_DSN, Result, fresh_database, table
from bench.reads import bench_reads
from bench.reports import bench_reports, hledger_missing
from bench.synthetic import seed
from bench.writes import bench_writes

RESULTS = Path(__file__).parent / "results" / "latest.md"
NAMES = (
    "writes",
    "page",
    "balances",
    "balance-sheet",
    "income-statement",
    "net-worth",
    "cash-flow",
    "spending by payee",
    "trial-balance",
    "income-statement latency",
    "hledger",
    "imports",
)
READS = NAMES[1:11]


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--postings", type=int, default=1_000_000, help="size of the seeded ledger")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=f"run the benchmarks whose name contains NAME (repeatable): {', '.join(NAMES)}",
    )
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per read benchmark")
    parser.add_argument(
        "--write-seconds", type=float, default=5.0, help="length of each round of writes"
    )
    parser.add_argument("--write-rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument(
        "--import-lines", type=int, default=1_000_000, help="lines of the imported CSV"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def selector(tokens: Sequence[str]) -> Callable[[str], bool]:
    def only(name: str) -> bool:
        return not tokens or any(token in name for token in tokens)

    return only


async def run_backend(
    backend: str, args: argparse.Namespace, report: Callable[[Result], None]
) -> None:
    only = selector(args.only)
    if only("writes"):
        async with fresh_database(backend) as db:
            for result in await bench_writes(
                db, seconds=args.write_seconds, rounds=args.write_rounds
            ):
                report(result)
    if any(only(name) for name in READS):
        async with fresh_database(backend) as db:
            journal = None
            if only("hledger") and hledger_missing() is None:
                journal = db.workdir / "bench.journal"
            started = time.perf_counter()
            ledger = await seed(db.database.engine, n_postings=args.postings, journal=journal)
            print(
                f"[{backend}] seeded {ledger.postings:,} postings in "
                f"{time.perf_counter() - started:.0f} s",
                file=sys.stderr,
            )
            for result in await bench_reads(db, ledger, repeat=args.repeat, only=only):
                report(result)
            for result in await bench_reports(
                db, ledger, repeat=args.repeat, only=only, journal=journal
            ):
                report(result)
    if only("imports"):
        from bench.imports import bench_imports

        async with fresh_database(backend) as db:
            for result in await bench_imports(db, lines=args.import_lines):
                report(result)


async def describe() -> str:
    try:
        conn = await asyncpg.connect(POSTGRES_ADMIN_DSN)
        version = await conn.fetchval("SHOW server_version")
        await conn.close()
    except (OSError, asyncpg.PostgresError):
        version = "not reachable"
    return (
        f"{platform.processor() or platform.machine()}, "
        f"{len(os.sched_getaffinity(0))} cores; Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, PostgreSQL {version}"
    )


async def main(argv: Sequence[str]) -> int:
    args = parse(argv)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results: list[Result] = []
    started = time.perf_counter()

    def report(result: Result) -> None:
        results.append(result)
        print(result.row(), file=sys.stderr, flush=True)

    missing = hledger_missing()
    if missing is not None and selector(args.only)("hledger"):
        print(f"note: {missing}", file=sys.stderr)
    for backend in backends:
        await run_backend(backend, args, report)
    minutes = (time.perf_counter() - started) / 60
    text = "\n".join(
        [
            f"# Benchmarks, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
            "",
            f"{await describe()}.",
            f"Ledger of {args.postings:,} postings; CSV import of {args.import_lines:,} lines; "
            f"{args.repeat} timed runs per read; took {minutes:.1f} min.",
            *([f"Note: {missing}."] if missing is not None else []),
            "",
            table(results),
            "",
        ]
    )
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
