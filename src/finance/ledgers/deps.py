"""Tenancy: every finance route resolves `{ledger_id}` against the caller's membership here.

A ledger the caller does not belong to answers 404, exactly like one that does not exist;
a member whose role is too low for the operation gets 403.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import BackgroundTasks, Depends, Request
from sqlalchemy import Uuid, and_, bindparam

from finance.auth.deps import BearerSecret, signed_in
from finance.auth.service import TOKEN_LOOKUP, check_live, token_lookup_parameters
from finance.config import SettingsDep
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


# The caller's token and user (`auth.service.TOKEN_LOOKUP`) and, in the same statement, the
# ledger with the caller's role, or NULLs where the caller is not a member.
_ACCESS_LOOKUP = (
    TOKEN_LOOKUP.add_columns(Ledger, LedgerMember.role)
    .outerjoin(
        LedgerMember,
        and_(
            LedgerMember.user_id == User.id,
            LedgerMember.ledger_id == bindparam("ledger_id", type_=Uuid),
        ),
    )
    .outerjoin(Ledger, Ledger.id == LedgerMember.ledger_id)
)


def ledger_access(minimum: Role) -> Callable[..., Awaitable[LedgerAccess]]:
    async def dependency(
        request: Request,
        ledger_id: uuid.UUID,
        secret: BearerSecret,
        session: SessionDep,
        settings: SettingsDep,
        background: BackgroundTasks,
    ) -> LedgerAccess:
        """Authentication and membership in one query: a 401 for a bad token first, then a
        404 for a ledger the caller does not belong to, then a 403 for too low a role."""
        row = (
            await session.execute(
                _ACCESS_LOOKUP,
                {**token_lookup_parameters(settings, secret), "ledger_id": ledger_id},
            )
        ).one_or_none()
        token, user = check_live(None if row is None else (row[0], row[1]))
        signed_in(request, background, token, user)
        ledger, role = (None, None) if row is None else (row[2], row[3])
        if ledger is None or role is None:
            raise NotFound("No such ledger")
        access = LedgerAccess(ledger=ledger, role=role, user=user)
        if not access.can(minimum):
            raise Forbidden(
                f"This needs the {minimum.value} role in this ledger; you are {access.role.value}"
            )
        return access

    return dependency


LedgerReader = Annotated[LedgerAccess, Depends(ledger_access(Role.VIEWER))]
LedgerWriter = Annotated[LedgerAccess, Depends(ledger_access(Role.EDITOR))]
LedgerOwner = Annotated[LedgerAccess, Depends(ledger_access(Role.OWNER))]
