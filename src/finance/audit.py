"""The append-only audit log: every create, update and delete of a finance object."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from finance.errors import Unprocessable
from finance.models import AuditEntry
from finance.models.base import utcnow
from finance.schemas import PageParams

Action = Literal["create", "update", "delete"]
_LAST_AT = "finance.audit.last_at"


async def record(
    session: AsyncSession,
    *,
    ledger_id: uuid.UUID,
    user_id: uuid.UUID | None,
    action: Action,
    object_type: str,
    object_id: uuid.UUID,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Add an entry in the caller's transaction: it is durable exactly when the change is.

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
    session.add(
        AuditEntry(
            at=at,
            ledger_id=ledger_id,
            user_id=user_id,
            action=action,
            object_type=object_type,
            object_id=object_id,
            before=before,
            after=after,
        )
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
        at, entry_id = _decode(page.cursor)
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


def _decode(cursor: list[Any]) -> tuple[datetime, uuid.UUID]:
    invalid = Unprocessable("cursor is not valid; pass back next_cursor unchanged")
    try:
        at_text, id_text = cursor
        at, entry_id = datetime.fromisoformat(at_text), uuid.UUID(id_text)
    except (TypeError, ValueError) as exc:
        raise invalid from exc
    if at.tzinfo is None:
        raise invalid
    return at, entry_id
