"""What an import records: its batch, every line's outcome, and the answer built from them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal, cast

from pydantic import ValidationError
from sqlalchemy import Table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from finance import audit
from finance.bulkwrite import insert_rows
from finance.errors import AppError, Conflict
from finance.imports.schemas import (
    CsvMapping,
    ImportBatchOut,
    ImportBatchSummary,
    ImportCounts,
    ImportLineOut,
)
from finance.models import ImportBatch, ImportFormat, ImportLine, ImportStatus, LineOutcome
from finance.models.base import utcnow

CHUNK = 5000
MAX_LINES_SHOWN = 1000
DEFAULT_EXPENSE_ACCOUNT = "Expenses:Uncategorized"
DEFAULT_INCOME_ACCOUNT = "Income:Uncategorized"
OBJECT_TYPE = "import_batch"
IMPORT_LINES = cast(Table, ImportLine.__table__)


@dataclass
class ImportRequest:
    """What the caller asks for, besides the file itself."""

    format: ImportFormat | None = None
    account_id: uuid.UUID | None = None
    mapping: CsvMapping | None = None
    profile_id: uuid.UUID | None = None
    currency: str | None = None
    date_order: Literal["mdy", "dmy"] = "mdy"
    expense_account: str = DEFAULT_EXPENSE_ACCOUNT
    income_account: str = DEFAULT_INCOME_ACCOUNT
    dry_run: bool = False
    filename: str | None = None


class Recorder:
    """Counts outcomes, writes the line records, keeps the ones the answer shows.

    The answer shows every line of a small file; of a large one, the lines that need
    attention (everything but new) first, up to `MAX_LINES_SHOWN`.
    """

    def __init__(self, session: AsyncSession, batch: ImportBatch, dry_run: bool) -> None:
        self.session = session
        self.batch = batch
        self.dry_run = dry_run
        self.counts: dict[LineOutcome, int] = dict.fromkeys(LineOutcome, 0)
        self.attention: list[ImportLineOut] = []
        self.new: list[ImportLineOut] = []
        self.truncated = False

    async def start(self) -> None:
        if not self.dry_run:
            self.session.add(self.batch)
            await self.session.flush()

    async def write(self, rows: list[dict[str, Any]]) -> None:
        """Record a chunk of lines (dicts of `import_lines` columns, without the keys)."""
        for row in rows:
            outcome: LineOutcome = row["outcome"]
            self.counts[outcome] += 1
            target = self.new if outcome == LineOutcome.NEW else self.attention
            if len(target) < MAX_LINES_SHOWN:
                target.append(line_out(row))
            else:
                self.truncated = True
        if self.dry_run:
            return
        keys = {"ledger_id": self.batch.ledger_id, "batch_id": self.batch.id}
        try:
            await insert_rows(self.session, IMPORT_LINES, rows, keys)
        except IntegrityError as exc:
            raise Conflict(
                "Another import wrote the same lines at the same time; run it again"
            ) from exc

    async def finish(self, user_id: uuid.UUID | None) -> ImportBatchOut:
        batch = self.batch
        counts = self.counts
        batch.line_count = sum(counts.values())
        batch.new_count = counts[LineOutcome.NEW]
        batch.duplicate_count = counts[LineOutcome.DUPLICATE]
        batch.flagged_count = counts[LineOutcome.FLAGGED]
        batch.rejected_count = counts[LineOutcome.REJECTED]
        batch.skipped_count = counts[LineOutcome.SKIPPED]
        room = MAX_LINES_SHOWN - len(self.attention)
        shown = sorted([*self.attention, *self.new[:room]], key=lambda line: line.seq)
        truncated = self.truncated or len(self.new) > room
        out = batch_out(batch, shown, truncated, pending=batch.flagged_count, dry_run=self.dry_run)
        if not self.dry_run:
            await self.session.flush()
            await audit.record(
                self.session,
                ledger_id=batch.ledger_id,
                user_id=user_id,
                action="create",
                object_type=OBJECT_TYPE,
                object_id=batch.id,
                after=summary(batch).model_dump(mode="json"),
            )
        return out


def reason_of(exc: AppError | ValidationError) -> str:
    """Why the books refused a line: the service's message, or the first validation error."""
    if isinstance(exc, AppError):
        return exc.detail
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    return f"{where}: {first.get('msg', 'invalid')}"


def new_batch(
    ledger_id: uuid.UUID,
    user_id: uuid.UUID | None,
    account_id: uuid.UUID | None,
    file_format: ImportFormat,
    request: ImportRequest,
    sha256: str,
) -> ImportBatch:
    return ImportBatch(
        ledger_id=ledger_id,
        id=uuid.uuid4(),
        account_id=account_id,
        format=file_format,
        filename=request.filename[:255] if request.filename else None,
        file_sha256=sha256,
        options={},
        status=ImportStatus.COMPLETED,
        created_by=user_id,
        created_at=utcnow(),
    )


def line_row(line: ImportLine) -> dict[str, Any]:
    return {column.key: getattr(line, column.key) for column in IMPORT_LINES.c}


def line_out(row: dict[str, Any]) -> ImportLineOut:
    amount = row.get("amount")
    return ImportLineOut(
        seq=row["seq"],
        position=row["position"],
        outcome=row["outcome"],
        reason=row.get("reason"),
        date=row.get("date"),
        amount=f"{amount:f}" if amount is not None else None,
        commodity=row.get("commodity"),
        payee=row.get("payee"),
        narration=row.get("narration"),
        reference=row.get("reference"),
        counter_account_id=row.get("counter_account_id"),
        transaction_id=row.get("transaction_id"),
        candidate_id=row.get("candidate_id"),
    )


def counts_of(batch: ImportBatch) -> ImportCounts:
    return ImportCounts(
        lines=batch.line_count,
        new=batch.new_count,
        duplicate=batch.duplicate_count,
        flagged=batch.flagged_count,
        rejected=batch.rejected_count,
        skipped=batch.skipped_count,
    )


def summary(batch: ImportBatch) -> ImportBatchSummary:
    return ImportBatchSummary(
        id=batch.id,
        status=batch.status,
        format=batch.format,
        account_id=batch.account_id,
        filename=batch.filename,
        counts=counts_of(batch),
        created_by=batch.created_by,
        created_at=batch.created_at,
        undone_at=batch.undone_at,
    )


def batch_out(
    batch: ImportBatch,
    lines: list[ImportLineOut],
    truncated: bool,
    *,
    pending: int,
    dry_run: bool = False,
) -> ImportBatchOut:
    return ImportBatchOut(
        id=None if dry_run else batch.id,
        dry_run=dry_run,
        status=batch.status,
        format=batch.format,
        account_id=batch.account_id,
        filename=batch.filename,
        file_sha256=batch.file_sha256,
        options=batch.options,
        counts=counts_of(batch),
        pending_review=pending,
        created_by=batch.created_by,
        created_at=batch.created_at,
        undone_at=batch.undone_at,
        lines=lines,
        lines_truncated=truncated,
    )
