"""/api/v1/ledgers: the ledgers, their members and their audit log. HTTP only."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from finance import audit
from finance.auth.deps import CurrentUser
from finance.db import SessionDep
from finance.errors import responses
from finance.idempotency import IdempotentRoute
from finance.ledgers import service
from finance.ledgers.deps import LedgerOwner, LedgerReader
from finance.ledgers.schemas import (
    AuditEntryRead,
    LedgerCreate,
    LedgerRead,
    LedgerUpdate,
    MemberCreate,
    MemberRead,
    MemberUpdate,
)
from finance.models import Ledger, Role
from finance.schemas import Page, PageDep

router = APIRouter(prefix="/ledgers", tags=["ledgers"], route_class=IdempotentRoute)


def _read(ledger: Ledger, role: Role) -> LedgerRead:
    return LedgerRead(**service.ledger_representation(ledger), role=role)


@router.get(
    "",
    response_model=list[LedgerRead],
    responses=responses(401),
    summary="The ledgers you belong to, with your role in each",
)
async def list_ledgers(user: CurrentUser, session: SessionDep) -> list[LedgerRead]:
    return [_read(ledger, role) for ledger, role in await service.list_ledgers(session, user)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=LedgerRead,
    responses=responses(401, 422),
    summary="Create a ledger; you become its owner",
)
async def create_ledger(body: LedgerCreate, user: CurrentUser, session: SessionDep) -> LedgerRead:
    ledger = await service.create_ledger(
        session, user, name=body.name, base_currency=body.base_currency
    )
    return _read(ledger, Role.OWNER)


@router.get(
    "/{ledger_id}",
    response_model=LedgerRead,
    responses=responses(401, 404),
    summary="One ledger",
)
async def read_ledger(access: LedgerReader) -> LedgerRead:
    return _read(access.ledger, access.role)


@router.patch(
    "/{ledger_id}",
    response_model=LedgerRead,
    responses=responses(401, 403, 404, 422),
    summary="Rename a ledger or change its base currency (owners)",
)
async def update_ledger(body: LedgerUpdate, access: LedgerOwner, session: SessionDep) -> LedgerRead:
    ledger = await service.update_ledger(session, access, body.model_dump(exclude_unset=True))
    return _read(ledger, access.role)


@router.delete(
    "/{ledger_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404),
    summary="Delete a ledger and everything in it (owners)",
)
async def delete_ledger(access: LedgerOwner, session: SessionDep) -> Response:
    await service.delete_ledger(session, access)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{ledger_id}/members",
    response_model=list[MemberRead],
    responses=responses(401, 404),
    summary="Who belongs to the ledger, in the order they joined",
)
async def list_members(access: LedgerReader, session: SessionDep) -> list[MemberRead]:
    return await service.list_members(session, access.ledger_id)


@router.post(
    "/{ledger_id}/members",
    status_code=status.HTTP_201_CREATED,
    response_model=MemberRead,
    responses=responses(401, 403, 404, 409, 422),
    summary="Add a registered user by email, with a role (owners)",
)
async def add_member(body: MemberCreate, access: LedgerOwner, session: SessionDep) -> MemberRead:
    return await service.add_member(session, access, email=body.email, role=body.role)


@router.patch(
    "/{ledger_id}/members/{user_id}",
    response_model=MemberRead,
    responses=responses(401, 403, 404, 409, 422),
    summary="Change a member's role (owners); the last owner cannot be demoted",
)
async def change_role(
    user_id: uuid.UUID, body: MemberUpdate, access: LedgerOwner, session: SessionDep
) -> MemberRead:
    return await service.change_role(session, access, user_id, body.role)


@router.delete(
    "/{ledger_id}/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404, 409),
    summary="Remove a member (owners), or leave (your own id); the last owner cannot leave",
)
async def remove_member(user_id: uuid.UUID, access: LedgerReader, session: SessionDep) -> Response:
    await service.remove_member(session, access, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{ledger_id}/audit",
    response_model=Page[AuditEntryRead],
    responses=responses(401, 404, 422),
    summary="Every change to the ledger's data, newest first",
)
async def list_audit(
    access: LedgerReader,
    session: SessionDep,
    page: PageDep,
    object_type: Annotated[str | None, Query(max_length=40)] = None,
    object_id: uuid.UUID | None = None,
    user: Annotated[uuid.UUID | None, Query(description="Changes made by this user")] = None,
) -> Page[AuditEntryRead]:
    entries, next_cursor = await audit.list_entries(
        session,
        access.ledger_id,
        page,
        object_type=object_type,
        object_id=object_id,
        user_id=user,
    )
    return Page(
        items=[AuditEntryRead.model_validate(entry) for entry in entries], next_cursor=next_cursor
    )
