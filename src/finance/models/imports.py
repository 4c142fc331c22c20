"""Statement imports: batches, the outcome of every source line, and saved CSV mappings.

A line that created (or was matched to) a transaction holds a claim on its identity: the
`(ledger_id, identity)` unique index is what makes re-importing a statement create nothing,
also when two imports of the same file race. Lines that hold no claim (duplicates, refused
lines, lines of an undone batch) keep `identity` NULL, which both databases leave unindexed
for uniqueness.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from finance.models.base import Base, DecimalText, TimestampMixin, utcnow
from finance.models.ledger import LedgerScoped


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])


class ImportFormat(enum.StrEnum):
    CSV = "csv"
    OFX = "ofx"
    QIF = "qif"
    CAMT053 = "camt053"
    MT940 = "mt940"
    BEANCOUNT = "beancount"


class ImportStatus(enum.StrEnum):
    COMPLETED = "completed"
    UNDONE = "undone"


class LineOutcome(enum.StrEnum):
    NEW = "new"  # became a transaction
    DUPLICATE = "duplicate"  # its identity was already claimed by an earlier line
    FLAGGED = "flagged"  # looks like a hand-entered transaction: waits for a review
    REJECTED = "rejected"  # the books refused it (closed account, too many decimals...)
    ACCEPTED = "accepted"  # was flagged; the reviewer added it as a transaction of its own
    MATCHED = "matched"  # was flagged; the reviewer confirmed it is the hand-entered one
    SKIPPED = "skipped"  # nothing to book (a Beancount note, a zero amount...)


class ImportBatch(LedgerScoped, Base):
    __tablename__ = "import_batches"
    __table_args__ = (
        ForeignKeyConstraint(["ledger_id", "account_id"], ["accounts.ledger_id", "accounts.id"]),
        Index("ix_import_batches_ledger_created", "ledger_id", "created_at", "id"),
    )

    account_id: Mapped[uuid.UUID | None]  # the statement's account; None for a Beancount file
    format: Mapped[ImportFormat] = mapped_column(_enum(ImportFormat))
    filename: Mapped[str | None] = mapped_column(String(255))
    file_sha256: Mapped[str] = mapped_column(String(64))
    # The effective options (CSV mapping, date order, default accounts): enough to redo it.
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[ImportStatus] = mapped_column(_enum(ImportStatus))
    line_count: Mapped[int] = mapped_column(default=0)
    new_count: Mapped[int] = mapped_column(default=0)
    duplicate_count: Mapped[int] = mapped_column(default=0)
    flagged_count: Mapped[int] = mapped_column(default=0)
    rejected_count: Mapped[int] = mapped_column(default=0)
    skipped_count: Mapped[int] = mapped_column(default=0)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    undone_at: Mapped[dt.datetime | None]
    undone_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class ImportLine(Base):
    """One source line (or element) of a batch and what became of it.

    `transaction_id` is a plain reference, not a foreign key: the record of what a statement
    said outlives the transaction (a user may delete an imported transaction, and the claim
    on its identity stays, so the next import of the same statement does not bring it back).
    """

    __tablename__ = "import_lines"
    __table_args__ = (
        ForeignKeyConstraint(
            ["ledger_id", "batch_id"],
            ["import_batches.ledger_id", "import_batches.id"],
            ondelete="CASCADE",
        ),
        UniqueConstraint("ledger_id", "identity"),
        Index("ix_import_lines_transaction", "ledger_id", "transaction_id"),
    )

    ledger_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ledgers.id", ondelete="CASCADE"), primary_key=True
    )
    batch_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True)  # 1, 2, ... in source order
    position: Mapped[str] = mapped_column(String(120))  # "line 12", "Ntry 3 (line 40)"
    outcome: Mapped[LineOutcome] = mapped_column(_enum(LineOutcome))
    reason: Mapped[str | None] = mapped_column(Text)
    identity: Mapped[uuid.UUID | None]  # the claim; see the module docstring
    reference: Mapped[str | None] = mapped_column(String(255))  # FITID or bank reference
    date: Mapped[dt.date | None]
    amount: Mapped[Decimal | None] = mapped_column(DecimalText)
    commodity: Mapped[str | None] = mapped_column(String(24))
    payee: Mapped[str | None] = mapped_column(String(500))
    narration: Mapped[str | None] = mapped_column(Text)
    counter_account_id: Mapped[uuid.UUID | None]
    transaction_id: Mapped[uuid.UUID | None]
    candidate_id: Mapped[uuid.UUID | None]  # a flagged line's look-alike transaction


class CsvProfile(LedgerScoped, TimestampMixin, Base):
    """A saved column mapping for one bank's CSV export (see `imports.schemas.CsvMapping`)."""

    __tablename__ = "csv_profiles"
    __table_args__ = (UniqueConstraint("ledger_id", "name"),)

    name: Mapped[str] = mapped_column(String(200))
    mapping: Mapped[dict[str, Any]] = mapped_column(JSON)
