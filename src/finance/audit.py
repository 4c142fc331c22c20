"""The append-only audit log: every create, update and delete of a finance object."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from finance.models import AuditEntry

Action = Literal["create", "update", "delete"]


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

    `before` and `after` are the object's API representation (JSON-ready dicts), so the log
    reads like the API and survives schema changes.
    """
    session.add(
        AuditEntry(
            ledger_id=ledger_id,
            user_id=user_id,
            action=action,
            object_type=object_type,
            object_id=object_id,
            before=before,
            after=after,
        )
    )
