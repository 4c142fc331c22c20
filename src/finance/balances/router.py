"""/api/v1/ledgers/{ledger_id}: balances, registers and assertions; HTTP only."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from finance.balances import service
from finance.balances.schemas import (
    AccountBalanceOut,
    AssertionIn,
    AssertionOut,
    BalanceSheet,
    RegisterEntry,
)
from finance.db import SessionDep
from finance.errors import responses
from finance.idempotency import IdempotentRoute
from finance.ledgers.deps import LedgerReader, LedgerWriter
from finance.schemas import Page, PageDep, Prebuilt, created_location

router = APIRouter(prefix="/ledgers/{ledger_id}", tags=["balances"], route_class=IdempotentRoute)

AsOf = Annotated[
    dt.date | None,
    Query(description="Balances at the end of this day (YYYY-MM-DD); default: today, UTC"),
]
IncludeDescendants = Annotated[
    bool, Query(description="Count the accounts below this one too (names under its path)")
]


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@router.get(
    "/balances",
    response_model=BalanceSheet,
    responses=responses(401, 404, 422),
    summary="Every account's balance, every path's roll-up and each type's total, as of a date",
)
async def balances(access: LedgerReader, session: SessionDep, as_of: AsOf = None) -> Response:
    return Prebuilt(await service.balance_sheet(session, access.ledger_id, as_of or _today()))


@router.get(
    "/accounts/{account_id}/balance",
    response_model=AccountBalanceOut,
    responses=responses(401, 404, 422),
    summary="One account's balance as of a date",
)
async def account_balance(
    account_id: uuid.UUID,
    access: LedgerReader,
    session: SessionDep,
    as_of: AsOf = None,
    include_descendants: IncludeDescendants = True,
) -> Response:
    return Prebuilt(
        await service.account_balance(
            session, access.ledger_id, account_id, as_of or _today(), include_descendants
        )
    )


@router.get(
    "/accounts/{account_id}/register",
    response_model=Page[RegisterEntry],
    responses=responses(401, 404, 422),
    summary="An account's postings, newest first, each with the running balance after it",
)
async def register(
    account_id: uuid.UUID,
    access: LedgerReader,
    session: SessionDep,
    page: PageDep,
    include_descendants: IncludeDescendants = True,
    date_from: Annotated[dt.date | None, Query(alias="from")] = None,
    date_to: Annotated[dt.date | None, Query(alias="to")] = None,
) -> Response:
    found = await service.register(
        session,
        access.ledger_id,
        account_id,
        include_descendants=include_descendants,
        date_from=date_from,
        date_to=date_to,
        page=page,
    )
    return Prebuilt(found)


@router.get(
    "/assertions",
    response_model=list[AssertionOut],
    responses=responses(401, 404),
    summary="Every balance assertion, each checked against the books as they are now",
)
async def list_assertions(access: LedgerReader, session: SessionDep) -> list[AssertionOut]:
    return await service.list_assertions(session, access.ledger_id)


@router.post(
    "/assertions",
    status_code=status.HTTP_201_CREATED,
    response_model=AssertionOut,
    responses=responses(401, 403, 404, 422),
    summary="Assert an account's balance at the start of a day",
)
async def create_assertion(
    body: AssertionIn,
    access: LedgerWriter,
    session: SessionDep,
    request: Request,
    response: Response,
) -> AssertionOut:
    created = await service.create_assertion(session, access.ledger_id, access.user.id, body)
    response.headers["Location"] = created_location(request, created.id)
    return created


@router.get(
    "/assertions/{assertion_id}",
    response_model=AssertionOut,
    responses=responses(401, 404),
    summary="One balance assertion, checked now",
)
async def get_assertion(
    assertion_id: uuid.UUID, access: LedgerReader, session: SessionDep
) -> AssertionOut:
    return await service.get_assertion(session, access.ledger_id, assertion_id)


@router.delete(
    "/assertions/{assertion_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404),
    summary="Delete a balance assertion",
)
async def delete_assertion(
    assertion_id: uuid.UUID, access: LedgerWriter, session: SessionDep
) -> Response:
    await service.delete_assertion(session, access.ledger_id, access.user.id, assertion_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
