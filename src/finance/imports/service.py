"""Imports: run one (a statement or a Beancount file), read batches, review, undo.

One import is one database transaction: a file that fails to parse anywhere, or goes over
the lines limit, writes nothing, and the error names the line or element and why. A dry
run does all the work in a savepoint that is rolled back, and answers the same batch
without an id: a preview of every line's outcome.

Undo deletes the transactions a batch created (through the transactions service, a chunk
at a time), releases the batch's identities (a later import of the same statement brings its
lines back), and keeps the batch's record, marked undone.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO, Literal

import anyio
from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from finance import audit
from finance.errors import Conflict, NotFound, Unprocessable
from finance.imports.detect import SAMPLE_BYTES, detect_format
from finance.imports.ledger_files import import_beancount
from finance.imports.outcomes import (
    CHUNK,
    MAX_LINES_SHOWN,
    OBJECT_TYPE,
    ImportRequest,
    batch_out,
    line_out,
    line_row,
    new_batch,
    summary,
)
from finance.imports.schemas import ImportBatchOut, ImportBatchSummary, ImportLineOut
from finance.imports.statement import InvalidFile
from finance.imports.statements import Progress, import_statement
from finance.models import (
    ImportBatch,
    ImportFormat,
    ImportLine,
    ImportStatus,
    Ledger,
    LineOutcome,
)
from finance.models.base import utcnow
from finance.money import format_decimal
from finance.schemas import Page, PageParams
from finance.transactions.schemas import TransactionIn
from finance.transactions.service import (
    Lookups,
    delete_transactions,
    insert_transactions,
    prepare_transaction,
)

# The outcomes whose line created a transaction of the batch.
CREATED = (LineOutcome.NEW, LineOutcome.ACCEPTED)


async def run_import(
    session: AsyncSession,
    ledger: Ledger,
    user_id: uuid.UUID | None,
    file: BinaryIO,
    request: ImportRequest,
    *,
    max_lines: int,
    progress: Progress | None = None,
) -> ImportBatchOut:
    """Import a statement (or a Beancount file) into the ledger, all or nothing."""
    sha256 = await anyio.to_thread.run_sync(_sha256, file)
    sample = file.read(SAMPLE_BYTES)
    file.seek(0)
    if not sample.strip():
        raise InvalidFile("the file is empty")
    file_format = request.format or detect_format(sample, request.filename)
    batch = new_batch(ledger.id, user_id, None, file_format, request, sha256)
    savepoint = await session.begin_nested() if request.dry_run else None
    try:
        with heap_set_aside():
            if file_format == ImportFormat.BEANCOUNT:
                data = await anyio.to_thread.run_sync(file.read)
                recorder = await import_beancount(
                    session,
                    ledger,
                    user_id,
                    batch,
                    data,
                    request,
                    max_lines=max_lines,
                    progress=progress,
                )
            else:
                recorder = await import_statement(
                    session,
                    ledger,
                    user_id,
                    batch,
                    file,
                    request,
                    max_lines=max_lines,
                    progress=progress,
                )
            return await recorder.finish(user_id)
    finally:
        if savepoint is not None:
            await savepoint.rollback()


_imports_running = 0


@contextmanager
def heap_set_aside() -> Iterator[None]:
    """Keep the garbage collector from walking the whole process while an import runs.

    A large import allocates millions of short-lived objects, and thousands survive long
    enough (a chunk's lines) to trigger full collections, each walking every object of the
    process (SQLAlchemy's, pydantic's, the app's: a few hundred thousand): measured, a third
    of a CSV import's time. What exists when the first import starts is frozen (`gc.freeze`)
    until the last running one ends; the imports' own garbage is collected as usual.
    """
    global _imports_running
    if _imports_running == 0:
        gc.freeze()
    _imports_running += 1
    try:
        yield
    finally:
        _imports_running -= 1
        if _imports_running == 0:
            gc.unfreeze()


def _sha256(file: BinaryIO) -> str:
    digest = hashlib.sha256()
    while block := file.read(1 << 20):
        digest.update(block)
    file.seek(0)
    return digest.hexdigest()


async def get_batch(
    session: AsyncSession, ledger_id: uuid.UUID, batch_id: uuid.UUID, *, lock: bool = False
) -> ImportBatch:
    statement = select(ImportBatch).where(
        ImportBatch.ledger_id == ledger_id, ImportBatch.id == batch_id
    )
    if lock:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    batch = await session.scalar(statement)
    if batch is None:
        raise NotFound("No such import")
    return batch


async def read_batch(
    session: AsyncSession, ledger_id: uuid.UUID, batch_id: uuid.UUID
) -> ImportBatchOut:
    """The batch, with its lines that need attention first, up to the response limit."""
    batch = await get_batch(session, ledger_id, batch_id)
    scope = (ImportLine.ledger_id == ledger_id, ImportLine.batch_id == batch_id)
    attention = (
        await session.scalars(
            select(ImportLine)
            .where(*scope, ImportLine.outcome != LineOutcome.NEW)
            .order_by(ImportLine.seq)
            .limit(MAX_LINES_SHOWN + 1)
        )
    ).all()
    room = max(0, MAX_LINES_SHOWN - len(attention))
    new = (
        await session.scalars(
            select(ImportLine)
            .where(*scope, ImportLine.outcome == LineOutcome.NEW)
            .order_by(ImportLine.seq)
            .limit(room + 1)
        )
    ).all()
    truncated = len(attention) > MAX_LINES_SHOWN or len(new) > room
    shown = sorted([*attention[:MAX_LINES_SHOWN], *new[:room]], key=lambda line: line.seq)
    pending = await session.scalar(
        select(func.count()).where(*scope, ImportLine.outcome == LineOutcome.FLAGGED)
    )
    return batch_out(
        batch, [line_out(line_row(line)) for line in shown], truncated, pending=pending or 0
    )


async def list_batches(
    session: AsyncSession, ledger_id: uuid.UUID, page: PageParams
) -> Page[ImportBatchSummary]:
    """Newest first, by a keyset on (created_at, id)."""
    statement = select(ImportBatch).where(ImportBatch.ledger_id == ledger_id)
    if page.cursor is not None:
        try:
            at = dt.datetime.fromisoformat(str(page.cursor[0]))
            last = uuid.UUID(str(page.cursor[1]))
        except (ValueError, IndexError) as exc:
            raise Unprocessable("cursor is not valid; pass back next_cursor unchanged") from exc
        statement = statement.where(
            (ImportBatch.created_at < at)
            | and_(ImportBatch.created_at == at, ImportBatch.id < last)
        )
    batches = (
        await session.scalars(
            statement.order_by(ImportBatch.created_at.desc(), ImportBatch.id.desc()).limit(
                page.limit + 1
            )
        )
    ).all()
    shown = batches[: page.limit]
    last_key = None
    if len(batches) > page.limit:
        last_key = [shown[-1].created_at.isoformat(), str(shown[-1].id)]
    return Page(items=[summary(batch) for batch in shown], next_cursor=page.next_cursor(last_key))


async def list_lines(
    session: AsyncSession,
    ledger_id: uuid.UUID,
    batch_id: uuid.UUID,
    page: PageParams,
    outcome: LineOutcome | None = None,
) -> Page[ImportLineOut]:
    """Every line of a batch, in source order, optionally of one outcome."""
    await get_batch(session, ledger_id, batch_id)
    statement = select(ImportLine).where(
        ImportLine.ledger_id == ledger_id, ImportLine.batch_id == batch_id
    )
    if outcome is not None:
        statement = statement.where(ImportLine.outcome == outcome)
    if page.cursor is not None:
        if not isinstance(page.cursor[0], int):
            raise Unprocessable("cursor is not valid; pass back next_cursor unchanged")
        statement = statement.where(ImportLine.seq > page.cursor[0])
    lines = (await session.scalars(statement.order_by(ImportLine.seq).limit(page.limit + 1))).all()
    items = [line_out(line_row(line)) for line in lines[: page.limit]]
    last_key = [items[-1].seq] if len(lines) > page.limit else None
    return Page(items=items, next_cursor=page.next_cursor(last_key))


async def undo_batch(
    session: AsyncSession, ledger_id: uuid.UUID, user_id: uuid.UUID | None, batch_id: uuid.UUID
) -> ImportBatchOut:
    """Delete the batch's transactions, release its identities, keep its record as undone.

    Transactions the batch created are deleted even if edited since; one deleted by hand in
    the meantime is simply gone already.
    """
    batch = await get_batch(session, ledger_id, batch_id, lock=True)
    if batch.status == ImportStatus.UNDONE:
        raise Conflict("This import has already been undone")
    before = summary(batch).model_dump(mode="json")
    last_seq = 0
    while True:  # a chunk of the batch's transactions at a time, in source order
        created = (
            await session.execute(
                select(ImportLine.seq, ImportLine.transaction_id)
                .where(
                    ImportLine.ledger_id == ledger_id,
                    ImportLine.batch_id == batch_id,
                    ImportLine.seq > last_seq,
                    ImportLine.outcome.in_(CREATED),
                    ImportLine.transaction_id.is_not(None),
                )
                .order_by(ImportLine.seq)
                .limit(CHUNK)
            )
        ).all()
        if not created:
            break
        last_seq = created[-1].seq
        ids = [transaction_id for _, transaction_id in created if transaction_id is not None]
        await delete_transactions(session, ledger_id, user_id, ids)
    await session.execute(
        update(ImportLine)
        .where(ImportLine.ledger_id == ledger_id, ImportLine.batch_id == batch_id)
        .values(identity=None)
    )
    batch.status = ImportStatus.UNDONE
    batch.undone_at = utcnow()
    batch.undone_by = user_id
    await session.flush()
    await audit.record(
        session,
        ledger_id=ledger_id,
        user_id=user_id,
        action="update",
        object_type=OBJECT_TYPE,
        object_id=batch.id,
        before=before,
        after=summary(batch).model_dump(mode="json"),
    )
    return await read_batch(session, ledger_id, batch_id)


async def review_line(
    session: AsyncSession,
    ledger_id: uuid.UUID,
    user_id: uuid.UUID | None,
    batch_id: uuid.UUID,
    seq: int,
    action: Literal["accept", "reject"],
) -> ImportLineOut:
    """Settle a flagged line: accept adds it as a transaction, reject records it as the
    hand-entered look-alike. Its identity stays claimed either way."""
    batch = await get_batch(session, ledger_id, batch_id, lock=True)
    if batch.status == ImportStatus.UNDONE:
        raise Conflict("This import has been undone")
    line = await session.scalar(
        select(ImportLine)
        .where(
            ImportLine.ledger_id == ledger_id,
            ImportLine.batch_id == batch_id,
            ImportLine.seq == seq,
        )
        .with_for_update()
    )
    if line is None:
        raise NotFound("No such line in this import")
    if line.outcome != LineOutcome.FLAGGED:
        raise Conflict(f"Only a flagged line can be reviewed; this one is {line.outcome.value}")
    if action == "reject":
        line.outcome = LineOutcome.MATCHED
        line.transaction_id = line.candidate_id
        line.reason = "the same as the transaction entered by hand (reviewed)"
    else:
        line.transaction_id = await _add_reviewed(session, ledger_id, user_id, batch, line)
        line.outcome = LineOutcome.ACCEPTED
        line.reason = "added after review"
    await session.flush()
    await audit.record(
        session,
        ledger_id=ledger_id,
        user_id=user_id,
        action="update",
        object_type=OBJECT_TYPE,
        object_id=batch.id,
        after={"line": seq, "review": action, "transaction_id": str(line.transaction_id)},
    )
    return line_out(line_row(line))


async def _add_reviewed(
    session: AsyncSession,
    ledger_id: uuid.UUID,
    user_id: uuid.UUID | None,
    batch: ImportBatch,
    line: ImportLine,
) -> uuid.UUID:
    if (
        batch.account_id is None
        or line.counter_account_id is None
        or line.amount is None
        or line.date is None
        or line.commodity is None
    ):
        raise Conflict("This line cannot be added from its record (a split line): enter it by hand")
    data = TransactionIn.model_validate(
        {
            "date": line.date,
            "payee": line.payee,
            "narration": line.narration,
            "postings": [
                {
                    "account_id": batch.account_id,
                    "amount": format_decimal(line.amount),
                    "commodity": line.commodity,
                },
                {
                    "account_id": line.counter_account_id,
                    "amount": format_decimal(-line.amount),
                    "commodity": line.commodity,
                },
            ],
        }
    )
    prepared = await prepare_transaction(session, ledger_id, data, Lookups(ledger_id, user_id))
    (transaction_id,) = await insert_transactions(session, ledger_id, user_id, [prepared])
    return transaction_id
