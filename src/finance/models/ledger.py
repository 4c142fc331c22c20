"""The books: ledgers and their members, commodities, accounts, transactions and postings.

Every finance table carries `ledger_id` as the first column of its primary key, and every
reference between finance rows is a composite foreign key through `ledger_id`: a posting cannot
point at another ledger's account even by mistake, and the schema can be distributed by
`ledger_id` (Citus) without changing a key.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from finance.models.base import Base, DecimalText, TimestampMixin, utcnow


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])


class Role(enum.StrEnum):
    OWNER = "owner"
    EDITOR = "editor"
    VIEWER = "viewer"


class AccountType(enum.StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    EQUITY = "equity"
    INCOME = "income"
    EXPENSE = "expense"


class TransactionStatus(enum.StrEnum):
    PENDING = "pending"
    CLEARED = "cleared"
    RECONCILED = "reconciled"


class Ledger(TimestampMixin, Base):
    __tablename__ = "ledgers"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    base_currency: Mapped[str] = mapped_column(String(24))
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )


class LedgerMember(Base):
    __tablename__ = "ledger_members"

    ledger_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ledgers.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[Role] = mapped_column(_enum(Role))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class LedgerScoped:
    """`(ledger_id, id)` primary key; the ledger's deletion cascades."""

    ledger_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ledgers.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


class Commodity(LedgerScoped, TimestampMixin, Base):
    __tablename__ = "commodities"
    __table_args__ = (
        UniqueConstraint("ledger_id", "code"),
        CheckConstraint("precision >= 0 AND precision <= 18", name="precision_range"),
    )

    code: Mapped[str] = mapped_column(String(24))
    name: Mapped[str | None] = mapped_column(String(200))
    precision: Mapped[int]


class Account(LedgerScoped, TimestampMixin, Base):
    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("ledger_id", "name"),)

    name: Mapped[str] = mapped_column(String(1000))  # the full path, "Assets:Bank:Checking"
    type: Mapped[AccountType] = mapped_column(_enum(AccountType))
    allowed_commodities: Mapped[list[str] | None] = mapped_column(JSON)  # codes; None = any
    opened_on: Mapped[dt.date | None]
    closed_on: Mapped[dt.date | None]
    note: Mapped[str | None] = mapped_column(Text)


class Transaction(LedgerScoped, TimestampMixin, Base):
    __tablename__ = "transactions"
    __table_args__ = (
        Index("ix_transactions_ledger_date", "ledger_id", "date", "id"),
        Index("ix_transactions_ledger_external_id", "ledger_id", "external_id"),
        # A payee's latest transaction (where a statement import finds a line's other side).
        Index("ix_transactions_ledger_payee", "ledger_id", "payee", "date"),
    )

    date: Mapped[dt.date]
    payee: Mapped[str | None] = mapped_column(String(500))
    narration: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    links: Mapped[list[str]] = mapped_column(JSON, default=list)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[TransactionStatus] = mapped_column(
        _enum(TransactionStatus), default=TransactionStatus.CLEARED
    )
    external_id: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(default=1)  # the ETag; bumped by every write
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )

    postings: Mapped[list[Posting]] = relationship(
        lazy="raise",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Posting.position",
    )


class Posting(LedgerScoped, Base):
    """One leg of a transaction. `date` repeats the transaction's, so balances as of a date
    are one indexed range scan over postings, with no join."""

    __tablename__ = "postings"
    __table_args__ = (
        ForeignKeyConstraint(
            ["ledger_id", "transaction_id"],
            ["transactions.ledger_id", "transactions.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(["ledger_id", "account_id"], ["accounts.ledger_id", "accounts.id"]),
        ForeignKeyConstraint(
            ["ledger_id", "commodity_id"], ["commodities.ledger_id", "commodities.id"]
        ),
        ForeignKeyConstraint(
            ["ledger_id", "cost_commodity_id"], ["commodities.ledger_id", "commodities.id"]
        ),
        ForeignKeyConstraint(
            ["ledger_id", "price_commodity_id"], ["commodities.ledger_id", "commodities.id"]
        ),
        ForeignKeyConstraint(
            ["ledger_id", "weight_commodity_id"], ["commodities.ledger_id", "commodities.id"]
        ),
        Index("ix_postings_transaction", "ledger_id", "transaction_id", "position"),
        Index("ix_postings_balance", "ledger_id", "account_id", "date", "commodity_id", "amount"),
        Index("ix_postings_ledger_date", "ledger_id", "date"),
    )

    transaction_id: Mapped[uuid.UUID]
    position: Mapped[int]
    date: Mapped[dt.date]
    account_id: Mapped[uuid.UUID]
    commodity_id: Mapped[uuid.UUID]
    amount: Mapped[int]  # units, in minor units of the commodity
    cost: Mapped[Decimal | None] = mapped_column(DecimalText)  # per unit, exact
    cost_commodity_id: Mapped[uuid.UUID | None]
    price: Mapped[Decimal | None] = mapped_column(DecimalText)  # per unit, exact
    price_commodity_id: Mapped[uuid.UUID | None]
    # What the posting weighs in the balance check (units x cost, x price, or the units
    # themselves), rounded to the weight commodity's precision; the exact residual is reported.
    weight: Mapped[int]
    weight_commodity_id: Mapped[uuid.UUID]
    memo: Mapped[str | None] = mapped_column(Text)


class BalanceAssertion(LedgerScoped, TimestampMixin, Base):
    """The account's balance at the start of `date` must equal `amount` (Beancount's meaning)."""

    __tablename__ = "balance_assertions"
    __table_args__ = (
        ForeignKeyConstraint(["ledger_id", "account_id"], ["accounts.ledger_id", "accounts.id"]),
        ForeignKeyConstraint(
            ["ledger_id", "commodity_id"], ["commodities.ledger_id", "commodities.id"]
        ),
        Index("ix_balance_assertions_account", "ledger_id", "account_id", "date"),
    )

    account_id: Mapped[uuid.UUID]
    date: Mapped[dt.date]
    commodity_id: Mapped[uuid.UUID]
    amount: Mapped[int]


class Price(LedgerScoped, TimestampMixin, Base):
    """One unit of `commodity` was worth `rate` units of `quote_commodity` on `date`."""

    __tablename__ = "prices"
    __table_args__ = (
        ForeignKeyConstraint(
            ["ledger_id", "commodity_id"], ["commodities.ledger_id", "commodities.id"]
        ),
        ForeignKeyConstraint(
            ["ledger_id", "quote_commodity_id"], ["commodities.ledger_id", "commodities.id"]
        ),
        UniqueConstraint("ledger_id", "commodity_id", "quote_commodity_id", "date"),
    )

    date: Mapped[dt.date]
    commodity_id: Mapped[uuid.UUID]
    quote_commodity_id: Mapped[uuid.UUID]
    rate: Mapped[Decimal] = mapped_column(DecimalText)


class AuditEntry(LedgerScoped, Base):
    """Append-only: who changed which object when, with its state before and after."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_ledger_at", "ledger_id", "at", "id"),
        # One object's history (`GET audit?object_id=`) without a scan of the ledger's log.
        Index("ix_audit_log_object", "ledger_id", "object_id", "at"),
    )

    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(16))  # create | update | delete
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[uuid.UUID]
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class IdempotencyKey(Base):
    """A client's `Idempotency-Key`, per user, with the response to replay.

    The row is claimed (state `started`) in its own short transaction before the work, so a
    concurrent retry sees it and gets 409; the response is written in the same transaction as
    the work itself, so a stored response always means the write is durable.
    """

    __tablename__ = "idempotency_keys"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # started | done
    response_status: Mapped[int | None]
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    response_headers: Mapped[dict[str, str] | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    locked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
