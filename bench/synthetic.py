"""A synthetic household ledger for benchmarks: years of salary, rent, cards, groceries, trips.

Rows are generated deterministically (a seeded PRNG) and written straight into the migrated
schema with Core bulk inserts, so that seeding a million postings takes seconds, not the hours
it would take through the API. The same rows can be written as a ledger-format journal, for
comparing with hledger on identical data.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from finance.models import Account, Commodity, Ledger, LedgerMember, Posting, Transaction, User

EXPENSES = [
    "Expenses:Food:Groceries",
    "Expenses:Food:Restaurants",
    "Expenses:Food:Coffee",
    "Expenses:Home:Rent",
    "Expenses:Home:Utilities:Electricity",
    "Expenses:Home:Utilities:Water",
    "Expenses:Home:Internet",
    "Expenses:Home:Furniture",
    "Expenses:Transport:Fuel",
    "Expenses:Transport:Public",
    "Expenses:Transport:Repairs",
    "Expenses:Health:Pharmacy",
    "Expenses:Health:Doctor",
    "Expenses:Leisure:Books",
    "Expenses:Leisure:Cinema",
    "Expenses:Leisure:Travel",
    "Expenses:Clothing",
    "Expenses:Gifts",
    "Expenses:Insurance",
    "Expenses:Taxes",
]
ASSETS = ["Assets:Bank:Checking", "Assets:Bank:Savings", "Assets:Cash"]
LIABILITIES = ["Liabilities:CreditCard"]
INCOME = ["Income:Salary", "Income:Interest"]
EQUITY = ["Equity:Opening-Balances"]
PAYEES = [f"Shop {i:03d}" for i in range(400)]
TAGS = ["trip", "work", "kids", "gift", "reimbursable"]


@dataclass
class SyntheticLedger:
    ledger_id: uuid.UUID
    user_id: uuid.UUID
    accounts: dict[str, uuid.UUID]
    usd: uuid.UUID
    start: dt.date
    end: dt.date
    postings: int = 0
    transactions: int = 0
    journal: list[str] = field(default_factory=list)


def _type(name: str) -> str:
    return {
        "Assets": "asset",
        "Liabilities": "liability",
        "Equity": "equity",
        "Income": "income",
        "Expenses": "expense",
    }[name.split(":")[0]]


def _rows(
    ledger: SyntheticLedger, n_postings: int, rng: random.Random
) -> Iterator[tuple[dict[str, object], list[dict[str, object]]]]:
    """Two-posting transactions spread evenly over the period, oldest first."""
    days = (ledger.end - ledger.start).days + 1
    n_tx = n_postings // 2
    now = dt.datetime.now(dt.UTC)
    for i in range(n_tx):
        date = ledger.start + dt.timedelta(days=i * days // n_tx)
        roll = rng.random()
        if roll < 0.03:
            debit, credit, cents = (
                "Assets:Bank:Checking",
                "Income:Salary",
                rng.randint(300_000, 600_000),
            )
            payee = "Employer Inc"
        elif roll < 0.06:
            debit, credit, cents = "Expenses:Home:Rent", "Assets:Bank:Checking", 150_000
            payee = "Landlord"
        elif roll < 0.10:
            debit, credit, cents = (
                "Assets:Bank:Savings",
                "Assets:Bank:Checking",
                rng.randint(1, 500) * 100,
            )
            payee = "Transfer"
        elif roll < 0.12:
            debit, credit, cents = (
                "Liabilities:CreditCard",
                "Assets:Bank:Checking",
                rng.randint(10_000, 90_000),
            )
            payee = "Card payment"
        else:
            debit = rng.choice(EXPENSES)
            credit = "Liabilities:CreditCard" if rng.random() < 0.5 else "Assets:Bank:Checking"
            cents = rng.randint(100, 25_000)
            payee = rng.choice(PAYEES)
        tx_id = uuid.uuid4()
        tags = [rng.choice(TAGS)] if rng.random() < 0.05 else []
        transaction = {
            "ledger_id": ledger.ledger_id,
            "id": tx_id,
            "date": date,
            "payee": payee,
            "narration": None,
            "tags": tags,
            "links": [],
            "meta": {},
            "status": "cleared",
            "external_id": None,
            "version": 1,
            "created_by": ledger.user_id,
            "created_at": now,
            "updated_at": now,
        }
        postings = []
        for position, (account, amount) in enumerate(((debit, cents), (credit, -cents))):
            postings.append(
                {
                    "ledger_id": ledger.ledger_id,
                    "id": uuid.uuid4(),
                    "transaction_id": tx_id,
                    "position": position,
                    "date": date,
                    "account_id": ledger.accounts[account],
                    "commodity_id": ledger.usd,
                    "amount": amount,
                    "weight": amount,
                    "weight_commodity_id": ledger.usd,
                    "cost": None,
                    "cost_commodity_id": None,
                    "price": None,
                    "price_commodity_id": None,
                    "memo": None,
                }
            )
        yield transaction, postings


async def seed(
    engine: AsyncEngine,
    *,
    n_postings: int,
    years: int = 10,
    end: dt.date = dt.date(2025, 12, 31),
    seed_value: int = 20261126,
    keep_journal: bool = False,
    batch: int = 20_000,
) -> SyntheticLedger:
    """Create a user, a ledger and its accounts, then `n_postings` postings over `years`."""
    rng = random.Random(seed_value)
    now = dt.datetime.now(dt.UTC)
    user_id, ledger_id, usd = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    names = ASSETS + LIABILITIES + INCOME + EQUITY + EXPENSES
    ledger = SyntheticLedger(
        ledger_id=ledger_id,
        user_id=user_id,
        accounts={name: uuid.uuid4() for name in names},
        usd=usd,
        start=dt.date(end.year - years + 1, 1, 1),
        end=end,
    )
    async with engine.begin() as conn:
        await conn.execute(
            insert(User).values(
                id=user_id,
                email=f"bench-{user_id.hex[:8]}@example.com",
                display_name="Bench",
                password_hash="!",
                is_admin=False,
                is_active=True,
                created_at=now,
                updated_at=now,
            )
        )
        await conn.execute(
            insert(Ledger).values(
                id=ledger_id,
                name="Bench",
                base_currency="USD",
                created_by=user_id,
                created_at=now,
                updated_at=now,
            )
        )
        await conn.execute(
            insert(LedgerMember).values(
                ledger_id=ledger_id, user_id=user_id, role="owner", created_at=now
            )
        )
        await conn.execute(
            insert(Commodity).values(
                ledger_id=ledger_id,
                id=usd,
                code="USD",
                name="US Dollar",
                precision=2,
                created_at=now,
                updated_at=now,
            )
        )
        await conn.execute(
            insert(Account),
            [
                {
                    "ledger_id": ledger_id,
                    "id": account_id,
                    "name": name,
                    "type": _type(name),
                    "allowed_commodities": None,
                    "opened_on": None,
                    "closed_on": None,
                    "note": None,
                    "created_at": now,
                    "updated_at": now,
                }
                for name, account_id in ledger.accounts.items()
            ],
        )
    transactions: list[dict[str, object]] = []
    postings: list[dict[str, object]] = []

    async def flush() -> None:
        async with engine.begin() as conn:
            await conn.execute(insert(Transaction), transactions)
            await conn.execute(insert(Posting), postings)
        transactions.clear()
        postings.clear()

    names_by_id = {account_id: name for name, account_id in ledger.accounts.items()}
    for transaction, legs in _rows(ledger, n_postings, rng):
        transactions.append(transaction)
        postings.extend(legs)
        ledger.transactions += 1
        ledger.postings += len(legs)
        if keep_journal:
            ledger.journal.append(_journal_entry(transaction, legs, names_by_id))
        if len(postings) >= batch:
            await flush()
    if transactions:
        await flush()
    return ledger


def _journal_entry(
    transaction: dict[str, object], legs: list[dict[str, object]], names: dict[uuid.UUID, str]
) -> str:
    lines = [f"{transaction['date']} {transaction['payee']}"]
    for leg in legs:
        amount = leg["amount"]
        assert isinstance(amount, int)
        account_id = leg["account_id"]
        assert isinstance(account_id, uuid.UUID)
        sign = "-" if amount < 0 else ""
        lines.append(
            f"    {names[account_id]}  {sign}{abs(amount) // 100}.{abs(amount) % 100:02d} USD"
        )
    return "\n".join(lines) + "\n"
