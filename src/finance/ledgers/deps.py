"""Tenancy: every finance route resolves `{ledger_id}` against the caller's membership here.

A ledger the caller does not belong to answers 404, exactly like one that does not exist;
a member whose role is too low for the operation gets 403.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from sqlalchemy import select

from finance.auth.deps import CurrentUser
from finance.db import SessionDep
from finance.errors import Forbidden, NotFound
from finance.models import Ledger, LedgerMember, Role, User

_RANK = {Role.VIEWER: 0, Role.EDITOR: 1, Role.OWNER: 2}


@dataclass(frozen=True)
class LedgerAccess:
    ledger: Ledger
    role: Role
    user: User

    @property
    def ledger_id(self) -> uuid.UUID:
        return self.ledger.id

    def can(self, role: Role) -> bool:
        return _RANK[self.role] >= _RANK[role]


def ledger_access(minimum: Role) -> Callable[..., Awaitable[LedgerAccess]]:
    async def dependency(
        ledger_id: uuid.UUID, user: CurrentUser, session: SessionDep
    ) -> LedgerAccess:
        row = (
            await session.execute(
                select(Ledger, LedgerMember.role)
                .join(LedgerMember, LedgerMember.ledger_id == Ledger.id)
                .where(Ledger.id == ledger_id, LedgerMember.user_id == user.id)
            )
        ).one_or_none()
        if row is None:
            raise NotFound("No such ledger")
        access = LedgerAccess(ledger=row[0], role=row[1], user=user)
        if not access.can(minimum):
            raise Forbidden(
                f"This needs the {minimum.value} role in this ledger; you are {access.role.value}"
            )
        return access

    return dependency


LedgerReader = Annotated[LedgerAccess, Depends(ledger_access(Role.VIEWER))]
LedgerWriter = Annotated[LedgerAccess, Depends(ledger_access(Role.EDITOR))]
LedgerOwner = Annotated[LedgerAccess, Depends(ledger_access(Role.OWNER))]
