"""Ledgers and their members: who may read, write and manage a set of books.

Roles: an owner does everything (members, renaming and deleting the ledger included), an
editor reads and writes the finance data, a viewer only reads. A ledger always keeps at least
one owner: every change of membership locks the ledger's row first, so two owners demoting
each other at once cannot leave it with none.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from finance import audit
from finance.auth.service import normalize_email
from finance.commodities.service import check_code, iso_currency, resolve_commodity
from finance.errors import Conflict, Forbidden, NotFound, Unprocessable
from finance.ledgers.deps import LedgerAccess
from finance.ledgers.schemas import LedgerFields, MemberRead
from finance.models import Ledger, LedgerMember, Role, User

logger = logging.getLogger("finance.ledgers")


def ledger_representation(ledger: Ledger) -> dict[str, object]:
    return LedgerFields.model_validate(ledger).model_dump(mode="json")


def member_read(member: LedgerMember, user: User) -> MemberRead:
    return MemberRead(
        user_id=user.id,
        email=user.email,
        display_name=user.display_name,
        role=member.role,
        joined_at=member.created_at,
    )


async def list_ledgers(session: AsyncSession, user: User) -> Sequence[tuple[Ledger, Role]]:
    """The ledgers the user belongs to, with their role in each."""
    rows = await session.execute(
        select(Ledger, LedgerMember.role)
        .join(LedgerMember, LedgerMember.ledger_id == Ledger.id)
        .where(LedgerMember.user_id == user.id)
        .order_by(Ledger.name, Ledger.id)
    )
    return [(ledger, role) for ledger, role in rows]


async def create_ledger(
    session: AsyncSession, user: User, *, name: str, base_currency: str
) -> Ledger:
    """The creator becomes its owner; the base currency is added as a commodity."""
    check_code(base_currency)
    if iso_currency(base_currency) is None:
        raise Unprocessable(
            f"base_currency {base_currency!r} is not an ISO 4217 currency: start with one, add "
            "your own commodities, then switch the ledger to one of them"
        )
    ledger = Ledger(name=name, base_currency=base_currency, created_by=user.id)
    session.add(ledger)
    await session.flush()
    member = LedgerMember(ledger_id=ledger.id, user_id=user.id, role=Role.OWNER)
    session.add(member)
    await session.flush()
    await audit.record(
        session,
        ledger_id=ledger.id,
        user_id=user.id,
        action="create",
        object_type="ledger",
        object_id=ledger.id,
        after=ledger_representation(ledger),
    )
    await _record_member(session, user.id, None, member, user)
    await resolve_commodity(session, ledger.id, base_currency, user_id=user.id)
    return ledger


async def update_ledger(
    session: AsyncSession, access: LedgerAccess, changes: dict[str, object]
) -> Ledger:
    ledger = access.ledger
    before = ledger_representation(ledger)
    name = changes.get("name")
    if "name" in changes:
        if not isinstance(name, str):
            raise Unprocessable("name cannot be null")
        ledger.name = name
    if "base_currency" in changes:
        code = changes["base_currency"]
        if not isinstance(code, str):
            raise Unprocessable("base_currency cannot be null")
        check_code(code)
        await resolve_commodity(session, ledger.id, code, user_id=access.user.id)
        ledger.base_currency = code
    await session.flush()
    after = ledger_representation(ledger)
    if after != before:
        await audit.record(
            session,
            ledger_id=ledger.id,
            user_id=access.user.id,
            action="update",
            object_type="ledger",
            object_id=ledger.id,
            before=before,
            after=after,
        )
    return ledger


async def delete_ledger(session: AsyncSession, access: LedgerAccess) -> None:
    """Everything in the ledger goes with it, its audit log included (the database cascades),
    so the deletion itself is written to the service log instead."""
    await session.delete(access.ledger)
    await session.flush()
    logger.info("ledger %s deleted by user %s", access.ledger_id, access.user.id)


async def list_members(session: AsyncSession, ledger_id: uuid.UUID) -> list[MemberRead]:
    rows = await session.execute(
        select(LedgerMember, User)
        .join(User, User.id == LedgerMember.user_id)
        .where(LedgerMember.ledger_id == ledger_id)
        .order_by(LedgerMember.created_at, User.email)
    )
    return [member_read(member, user) for member, user in rows]


async def add_member(
    session: AsyncSession, access: LedgerAccess, *, email: str, role: Role
) -> MemberRead:
    """Add a registered, active user. An unknown address and a deactivated account get the
    same answer, so an owner learns no more than "cannot be added"."""
    await _lock_ledger(session, access.ledger_id)
    user = await session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None or not user.is_active:
        raise Unprocessable("No active user has this email; they must register first")
    if await session.get(LedgerMember, (access.ledger_id, user.id)) is not None:
        raise Conflict("This user is already a member of the ledger")
    member = LedgerMember(ledger_id=access.ledger_id, user_id=user.id, role=role)
    session.add(member)
    await session.flush()
    await _record_member(session, access.user.id, None, member, user)
    return member_read(member, user)


async def change_role(
    session: AsyncSession, access: LedgerAccess, user_id: uuid.UUID, role: Role
) -> MemberRead:
    await _lock_ledger(session, access.ledger_id)
    member, user = await _get_member(session, access.ledger_id, user_id)
    if member.role == Role.OWNER and role != Role.OWNER:
        await _keep_an_owner(session, access.ledger_id, "demoted")
    before = member_read(member, user)
    member.role = role
    await session.flush()
    if before.role != role:
        await _record_member(session, access.user.id, before, member, user)
    return member_read(member, user)


async def remove_member(session: AsyncSession, access: LedgerAccess, user_id: uuid.UUID) -> None:
    """An owner removes anyone; any member may remove themselves (leave)."""
    if user_id != access.user.id and not access.can(Role.OWNER):
        raise Forbidden("Only an owner may remove other members; you may only leave")
    await _lock_ledger(session, access.ledger_id)
    member, user = await _get_member(session, access.ledger_id, user_id)
    if member.role == Role.OWNER:
        await _keep_an_owner(session, access.ledger_id, "removed")
    before = member_read(member, user)
    await session.delete(member)
    await session.flush()
    await audit.record(
        session,
        ledger_id=access.ledger_id,
        user_id=access.user.id,
        action="delete",
        object_type="member",
        object_id=user.id,
        before=before.model_dump(mode="json"),
    )


async def _lock_ledger(session: AsyncSession, ledger_id: uuid.UUID) -> None:
    """Serialize membership changes of one ledger. `FOR NO KEY UPDATE` (PostgreSQL) leaves the
    foreign-key checks of the ledger's ordinary writes unblocked; SQLite's writers are
    serialized anyway."""
    await session.execute(
        select(Ledger.id).where(Ledger.id == ledger_id).with_for_update(key_share=True)
    )


async def _get_member(
    session: AsyncSession, ledger_id: uuid.UUID, user_id: uuid.UUID
) -> tuple[LedgerMember, User]:
    row = (
        await session.execute(
            select(LedgerMember, User)
            .join(User, User.id == LedgerMember.user_id)
            .where(LedgerMember.ledger_id == ledger_id, LedgerMember.user_id == user_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFound("No such member")
    return row[0], row[1]


async def _keep_an_owner(session: AsyncSession, ledger_id: uuid.UUID, what: str) -> None:
    owners = await session.scalar(
        select(func.count())
        .select_from(LedgerMember)
        .where(LedgerMember.ledger_id == ledger_id, LedgerMember.role == Role.OWNER)
    )
    if owners == 1:
        raise Conflict(
            f"The last owner cannot be {what}: make another member an owner first, "
            "or delete the ledger"
        )


async def _record_member(
    session: AsyncSession,
    by: uuid.UUID,
    before: MemberRead | None,
    member: LedgerMember,
    user: User,
) -> None:
    await audit.record(
        session,
        ledger_id=member.ledger_id,
        user_id=by,
        action="create" if before is None else "update",
        object_type="member",
        object_id=user.id,
        before=None if before is None else before.model_dump(mode="json"),
        after=member_read(member, user).model_dump(mode="json"),
    )
