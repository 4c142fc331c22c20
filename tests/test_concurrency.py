"""Fifty concurrent clients posting transfers: stored exactly once, balances always net zero."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from decimal import Decimal

import httpx
from sqlalchemy import func, select

from finance.db import Database
from finance.models import Posting, Transaction
from tests.books import open_books
from tests.conftest import AuthedUser

CLIENTS = 50
TRANSFERS_EACH = 4
ACCOUNTS = [f"Assets:Pocket:P{n}" for n in range(10)]


async def test_fifty_clients_posting_transfers_at_once(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await open_books(client, user, *ACCOUNTS)
    # EUR is first used by the concurrent writers themselves: created once, whoever wins.
    await books.create("2024-01-01", (ACCOUNTS[0], "1.00", "USD"), (ACCOUNTS[1], None, None))
    acknowledged: list[str] = []
    failures: list[httpx.Response] = []

    async def one_client(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(TRANSFERS_EACH):
            source, target = rng.sample(ACCOUNTS, 2)
            amount = f"{rng.randint(1, 100_000) / 100:.2f}"
            commodity = rng.choice(["USD", "EUR"])
            body = books.body(
                f"2024-02-{rng.randint(1, 28):02d}",
                (target, amount, commodity),
                (source, None, None),
            )
            key = uuid.uuid4().hex
            headers = {**user.headers, "Idempotency-Key": key}
            response = await client.post(f"{books.url}/transactions", json=body, headers=headers)
            if response.status_code != 201:
                failures.append(response)
                continue
            acknowledged.append(response.json()["id"])
            # A client that lost the answer retries with the same key: nothing new is made.
            retry = await client.post(f"{books.url}/transactions", json=body, headers=headers)
            if retry.status_code != 201 or retry.json()["id"] != response.json()["id"]:
                failures.append(retry)

    await asyncio.gather(*(one_client(seed) for seed in range(CLIENTS)))

    assert [(r.status_code, r.text) for r in failures] == []
    assert len(acknowledged) == len(set(acknowledged)) == CLIENTS * TRANSFERS_EACH
    async with database.sessions() as session:
        stored = set(
            str(i)
            for i in (
                await session.scalars(
                    select(Transaction.id).where(Transaction.date >= dt.date(2024, 2, 1))
                )
            ).all()
        )
        postings = await session.scalar(select(func.count()).select_from(Posting))
    assert stored == set(acknowledged)
    assert postings == 2 * (len(acknowledged) + 1)

    sheet = await books.get("/balances", as_of="2024-12-31")
    totals = {
        amount["commodity"]: Decimal(amount["amount"])
        for row in sheet["totals"]
        if row["path"] == "Assets"
        for amount in row["balances"]
    }
    assert totals == {}  # every commodity nets to zero over the ten accounts
    per_account: dict[str, Decimal] = {}
    for row in sheet["accounts"]:
        for amount in row["balances"]:
            per_account[amount["commodity"]] = per_account.get(
                amount["commodity"], Decimal(0)
            ) + Decimal(amount["amount"])
    assert set(per_account.values()) <= {Decimal(0)}
    assert set(per_account) == {"USD", "EUR"}
