"""The append-only audit log: every create, update and delete of a finance object."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, NotRequired, TypedDict, Unpack, cast

from sqlalchemy import Table, and_, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from finance.bulkwrite import insert_records, new_ids
from finance.models import AuditEntry
from finance.models.base import utcnow
from finance.schemas import PageParams, cursor_key, cursor_utc, cursor_uuid

Action = Literal["create", "update", "delete"]
_LAST_AT = "finance.audit.last_at"
TABLE = cast(Table, AuditEntry.__table__)
_INSERT = insert(TABLE)


class Change(TypedDict):
    """Who changed which object of which ledger, and how."""

    ledger_id: uuid.UUID
    user_id: uuid.UUID | None
    action: Action
    object_type: str
    object_id: uuid.UUID
    before: NotRequired[dict[str, Any] | None]
    after: NotRequired[dict[str, Any] | None]


def entry(session: AsyncSession, **change: Unpack[Change]) -> dict[str, Any]:
    """The row of an entry that the caller writes in its transaction (`record` does, as does
    a write that inserts its rows and its entry in one statement).

    `before` and `after` are the object's API representation (JSON-ready dicts:
    `schema.model_dump(mode="json")`), so the log reads like the API and survives schema
    changes. Entries of one transaction get strictly increasing times, so that the log lists
    them in the order they were recorded even within one microsecond.
    """
    at = utcnow()
    previous: datetime | None = session.info.get(_LAST_AT)
    if previous is not None and at <= previous:
        at = previous + timedelta(microseconds=1)
    session.info[_LAST_AT] = at
    return {"id": uuid.uuid4(), "at": at, "before": None, "after": None, **change}


async def record(session: AsyncSession, **change: Unpack[Change]) -> None:
    """Add an entry in the caller's transaction: it is durable exactly when the change is."""
    row = entry(session, **change)
    # Written now with Core, not added to the unit of work; what is pending goes first (the
    # entry refers to its ledger, which may be new; a flush with nothing pending is a no-op).
    await session.flush()
    await session.execute(_INSERT, row)


async def record_many(
    session: AsyncSession,
    *,
    ledger_id: uuid.UUID,
    user_id: uuid.UUID | None,
    action: Action,
    object_type: str,
    changes: Sequence[tuple[uuid.UUID, dict[str, Any] | None, dict[str, Any] | None]],
) -> None:
    """`record` for many objects at once, `(object_id, before, after)` each, written now in
    one bulk insert (a batch undo deletes thousands of transactions); the same entries, with
    the same strictly increasing times, as one `record` call per object would add."""
    if not changes:
        return
    start = utcnow()
    previous: datetime | None = session.info.get(_LAST_AT)
    if previous is not None and start <= previous:
        start = previous + timedelta(microseconds=1)
    records = [
        (entry_id, start + timedelta(microseconds=index), object_id, before, after)
        for index, (entry_id, (object_id, before, after)) in enumerate(
            zip(new_ids(len(changes)), changes, strict=True)
        )
    ]
    session.info[_LAST_AT] = records[-1][1]
    await insert_records(
        session,
        TABLE,
        ("id", "at", "object_id", "before", "after"),
        records,
        {"ledger_id": ledger_id, "user_id": user_id, "action": action, "object_type": object_type},
    )


async def list_entries(
    session: AsyncSession,
    ledger_id: uuid.UUID,
    page: PageParams,
    *,
    object_type: str | None = None,
    object_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
) -> tuple[Sequence[AuditEntry], str | None]:
    """One page, newest first, and the cursor of the next (keyset on `at`, then `id`)."""
    statement = select(AuditEntry).where(AuditEntry.ledger_id == ledger_id)
    if object_type is not None:
        statement = statement.where(AuditEntry.object_type == object_type)
    if object_id is not None:
        statement = statement.where(AuditEntry.object_id == object_id)
    if user_id is not None:
        statement = statement.where(AuditEntry.user_id == user_id)
    if page.cursor is not None:
        at, entry_id = cursor_key(page.cursor, cursor_utc, cursor_uuid)
        statement = statement.where(
            or_(AuditEntry.at < at, and_(AuditEntry.at == at, AuditEntry.id < entry_id))
        )
    statement = statement.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(page.limit + 1)
    entries = (await session.scalars(statement)).all()
    if len(entries) <= page.limit:
        return entries, None
    entries = entries[: page.limit]
    last = entries[-1]
    return entries, page.next_cursor([last.at.isoformat(), str(last.id)])
