"""The service the importers call: a batch is validated with a cache and written in bulk."""

from __future__ import annotations

import uuid
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import func, select

from finance.db import Database
from finance.errors import Unprocessable
from finance.models import AuditEntry, Posting, Transaction, TransactionStatus
from finance.transactions import service
from finance.transactions.schemas import TransactionIn
from finance.transactions.service import Lookups, insert_transactions, prepare_transaction
from tests.books import Books, open_books
from tests.conftest import AuthedUser, UserFactory, statements

ACCOUNTS = ["Assets:Bank:Checking", "Expenses:Food", "Expenses:Rent", "Income:Salary"]


def _lines(books: Books, count: int) -> list[TransactionIn]:
    return [
        TransactionIn.model_validate(
            books.body(
                f"2024-{n % 12 + 1:02d}-{n % 28 + 1:02d}",
                (ACCOUNTS[n % 3 + 1], f"{n + 1}.{n % 100:02d}", "USD" if n % 2 else "EUR"),
                (ACCOUNTS[0], None, None),
                payee=f"line {n}",
            )
        )
        for n in range(count)
    ]


async def test_a_batch_costs_a_few_queries_and_one_bulk_write_per_table(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await open_books(client, user, *ACCOUNTS)
    await books.create("2024-01-01", (ACCOUNTS[1], "1.00", "USD"), (ACCOUNTS[0], None, None))
    lines = _lines(books, 600)
    ledger_id, user_id = uuid.UUID(books.ledger_id), uuid.UUID(user.id)
    async with database.sessions() as session, session.begin():
        lookups = Lookups(ledger_id, user_id)
        with statements(database) as loading:
            await lookups.load_accounts(session, [uuid.UUID(i) for i in books.accounts.values()])
            await lookups.load_commodities(session, ["USD", "EUR"])
        with statements(database) as preparing:
            prepared = [
                await prepare_transaction(session, ledger_id, line, lookups) for line in lines
            ]
        with statements(database) as writing:
            ids = await insert_transactions(
                session,
                ledger_id,
                user_id,
                prepared,
                extra_columns={"status": TransactionStatus.PENDING},
            )
    # Accounts in one query, known commodities in one, EUR created on first use (with its
    # audit entry); then the 600 lines are checked without a single query.
    # (SQLite also shows its BEGIN IMMEDIATE.)
    assert len([s for s in loading if not s.startswith("BEGIN")]) == 6
    assert preparing == []
    # 600 transactions and 1200 postings, one bulk write per table: an executemany INSERT on
    # SQLite, a COPY on PostgreSQL (sent by the driver, so no statement of SQLAlchemy's).
    bulk = ["INSERT INTO transactions", "INSERT INTO postings"]
    expected = [] if database.engine.dialect.name == "postgresql" else bulk
    assert [" ".join(statement.split()[:3]) for statement in writing] == expected, writing
    assert len(ids) == len(set(ids)) == 600

    async with database.sessions() as session:
        stored = await session.scalar(
            select(func.count()).select_from(Transaction).where(Transaction.id.in_(ids))
        )
        postings = await session.scalar(select(func.count()).select_from(Posting))
        pending = await session.scalar(
            select(func.count())
            .select_from(Transaction)
            .where(Transaction.status == TransactionStatus.PENDING)
        )
        audited = await session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.object_type == "transaction")
        )
    assert (stored, postings, pending, audited) == (600, 1202, 600, 1)
    first = await books.get(f"/transactions/{ids[0]}")
    assert [(p["amount"], p["commodity"]) for p in first["postings"]] == [
        ("1.00", "EUR"),
        ("-1.00", "EUR"),
    ]
    assert first["payee"] == "line 0"


async def test_preparing_refuses_with_the_same_errors_as_the_api(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await open_books(client, user, *ACCOUNTS)
    line = TransactionIn.model_validate(
        books.body("2024-01-01", (ACCOUNTS[1], "1.001", "USD"), (ACCOUNTS[0], None, None))
    )
    async with database.sessions() as session:
        with pytest.raises(Unprocessable) as refused:
            await prepare_transaction(session, uuid.UUID(books.ledger_id), line)
    assert refused.value.detail == (
        "postings[0].amount: amount 1.001 has more than 2 decimal places (USD)"
    )


async def test_deleting_many_is_set_based_and_audited_like_deleting_one(
    client: httpx.AsyncClient,
    user: AuthedUser,
    make_user: UserFactory,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service, "DELETE_CHUNK", 4)  # several chunks from a few transactions
    books = await open_books(client, user, *ACCOUNTS)
    created = [
        await books.create(
            f"2024-01-{day:02d}",
            (ACCOUNTS[1], f"{day}.00", "USD", {"memo": f"m{day}"}),
            (ACCOUNTS[0], None, None),
            payee=f"p{day}",
            tags=["t"],
        )
        for day in range(1, 11)
    ]
    other = await open_books(client, await make_user(), *ACCOUNTS)
    foreign = await other.create(
        "2024-01-01", (ACCOUNTS[1], "1.00", "USD"), (ACCOUNTS[0], None, None)
    )
    single = await books.create(
        "2024-02-01", (ACCOUNTS[1], "9.00", "USD"), (ACCOUNTS[0], None, None)
    )
    assert (
        await client.delete(f"{books.url}/transactions/{single['id']}", headers=user.headers)
    ).status_code == 204
    # Out of order, with a repeat, an id that is gone, one of another ledger, one never seen.
    chosen = [created[7], created[2], created[5], created[0], created[9], created[3], created[2]]
    ids = [uuid.UUID(t["id"]) for t in chosen]
    ids += [uuid.UUID(single["id"]), uuid.UUID(foreign["id"]), uuid.uuid4()]
    ledger_id, user_id = uuid.UUID(books.ledger_id), uuid.UUID(user.id)
    async with database.sessions() as session, session.begin():
        with statements(database) as deleting:
            deleted = await service.delete_transactions(session, ledger_id, user_id, ids)
    assert deleted == 6
    # Per chunk of ids: the transactions, their postings (and the commodities, once), two
    # DELETEs, one bulk insert of the audit entries (a COPY on PostgreSQL, unseen here).
    audit_insert = ["INSERT"] if database.engine.dialect.name == "sqlite" else []
    first = ["SELECT", "SELECT", "SELECT", "DELETE", "DELETE", *audit_insert]
    second = ["SELECT", "SELECT", "DELETE", "DELETE", *audit_insert]
    verbs = [statement.split()[0] for statement in deleting if not statement.startswith("BEGIN")]
    assert verbs == [*first, *second, "SELECT"], verbs  # the last chunk finds nothing
    remaining = {t["id"] for t in (await books.get("/transactions"))["items"]}
    assert remaining == {t["id"] for t in created} - {t["id"] for t in chosen}
    assert (await other.get(f"/transactions/{foreign['id']}"))["id"] == foreign["id"]
    async with database.sessions() as session:
        postings = await session.scalar(
            select(func.count()).select_from(Posting).where(Posting.ledger_id == ledger_id)
        )
        entries = list(
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.ledger_id == ledger_id, AuditEntry.action == "delete")
                .order_by(AuditEntry.at)
            )
        )
    assert postings == 2 * 4
    # One entry per transaction, as `delete_transaction` writes it: the one deleted by hand
    # first, then the others in the order given, each with its representation before.
    expected = [uuid.UUID(single["id"]), *dict.fromkeys(ids[:6])]
    assert [entry.object_id for entry in entries] == expected
    by_id = {t["id"]: t for t in [*created, single]}
    for entry in entries:
        assert entry.object_type == "transaction"
        assert entry.user_id == user_id
        assert entry.after is None
        assert entry.before == by_id[str(entry.object_id)]


async def test_one_api_write_stores_what_it_answers_in_as_few_statements_as_it_can(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    """A POST's statements: on PostgreSQL three round trips (the caller, the accounts and
    commodities, then transaction, postings and audit entry in `_INSERT_CREATED`); on SQLite,
    where a statement costs no round trip, one for each. Either way what is stored reads back
    as the answer, to the last field, and the audit entry holds it too."""
    books = await open_books(client, user, "Assets:Broker", "Assets:Bank:Checking")
    await books.commodity("ITOT", 3)
    body = books.body(
        "2024-05-02",
        ("Assets:Broker", "10.125", "ITOT", {"cost": {"amount": "98.38", "commodity": "USD"}}),
        ("Assets:Bank:Checking", "-996.10", "USD", {"memo": "settled T+1"}),
        payee="Broker",
        narration="Buy ITOT",
        tags=["invest"],
        links=["order-17"],
        meta={"source": "test", "lot": 3},
        status="cleared",
        external_id="ord-17",
    )
    with statements(database) as writing:
        response = await client.post(f"{books.url}/transactions", json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    created = response.json()
    sent = [" ".join(s.split()[:3]) for s in writing]
    if database.engine.dialect.name == "postgresql":
        # The caller and their role; the accounts and commodities, share-locked; the writes.
        assert sent[1:] == ["WITH locked_accounts AS", "WITH new_transaction AS"], writing
    else:
        assert sent[1:] == [
            "SELECT accounts.name, accounts.type,",
            "SELECT commodities.code, commodities.name,",
            *(f"INSERT INTO {table}" for table in ("transactions", "postings", "audit_log")),
        ]
    assert sent[0].startswith("SELECT auth_tokens")
    assert created["residual"] == {"USD": "-0.0025"}
    assert await books.get(f"/transactions/{created['id']}") == created
    async with database.read_sessions() as session:
        entry = (
            await session.scalars(
                select(AuditEntry).where(AuditEntry.object_id == uuid.UUID(created["id"]))
            )
        ).one()
        costs = list(
            await session.scalars(
                select(Posting.cost)
                .where(Posting.transaction_id == uuid.UUID(created["id"]))
                .order_by(Posting.position)
            )
        )
    assert (entry.action, entry.user_id, entry.before) == ("create", uuid.UUID(user.id), None)
    assert entry.after == created
    assert costs == [Decimal("98.38"), None]
