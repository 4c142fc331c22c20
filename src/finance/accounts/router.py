"""/api/v1/ledgers/{ledger_id}/accounts: HTTP only; the rules live in the service."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from finance.accounts import service
from finance.accounts.schemas import AccountCreate, AccountRead, AccountUpdate
from finance.db import SessionDep
from finance.errors import responses
from finance.idempotency import IdempotentRoute
from finance.ledgers.deps import LedgerReader, LedgerWriter
from finance.models import Account, AccountType

router = APIRouter(
    prefix="/ledgers/{ledger_id}/accounts", tags=["accounts"], route_class=IdempotentRoute
)


@router.get(
    "",
    response_model=list[AccountRead],
    responses=responses(401, 404, 422),
    summary="The ledger's accounts, by name",
)
async def list_accounts(
    access: LedgerReader,
    session: SessionDep,
    type: Annotated[AccountType | None, Query(description="Only accounts of this type")] = None,
    prefix: Annotated[
        str | None,
        Query(
            max_length=1000,
            description="Only this account path and those below it (`Assets:Bank`)",
        ),
    ] = None,
) -> Sequence[Account]:
    return await service.list_accounts(session, access.ledger_id, type_=type, prefix=prefix)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=AccountRead,
    responses=responses(401, 403, 404, 409, 422),
    summary="Open an account",
)
async def create_account(body: AccountCreate, access: LedgerWriter, session: SessionDep) -> Account:
    return await service.create_account(
        session,
        access.ledger_id,
        user_id=access.user.id,
        name=body.name,
        type_=body.type,
        allowed_commodities=body.allowed_commodities,
        opened_on=body.opened_on,
        closed_on=body.closed_on,
        note=body.note,
    )


@router.get(
    "/{account_id}",
    response_model=AccountRead,
    responses=responses(401, 404),
    summary="One account",
)
async def read_account(account_id: uuid.UUID, access: LedgerReader, session: SessionDep) -> Account:
    return await service.get_account(session, access.ledger_id, account_id)


@router.patch(
    "/{account_id}",
    response_model=AccountRead,
    responses=responses(401, 403, 404, 409, 422),
    summary="Change an account; a new name renames its descendants too",
)
async def update_account(
    account_id: uuid.UUID, body: AccountUpdate, access: LedgerWriter, session: SessionDep
) -> Account:
    return await service.update_account(
        session,
        access.ledger_id,
        account_id,
        user_id=access.user.id,
        changes=body.model_dump(exclude_unset=True),
    )


@router.delete(
    "/{account_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404, 409),
    summary="Delete an unused account (one with postings is closed instead)",
)
async def delete_account(
    account_id: uuid.UUID, access: LedgerWriter, session: SessionDep
) -> Response:
    await service.delete_account(session, access.ledger_id, account_id, user_id=access.user.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
