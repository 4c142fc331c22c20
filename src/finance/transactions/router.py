"""/api/v1/ledgers/{ledger_id}/transactions: HTTP only; the rules live in the service."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status

from finance.db import SessionDep
from finance.errors import Unprocessable, responses
from finance.idempotency import IdempotentRoute
from finance.ledgers.deps import LedgerReader, LedgerWriter
from finance.models import TransactionStatus
from finance.money import AmountError, parse_decimal
from finance.schemas import Page, PageDep, Prebuilt, created_location
from finance.transactions import service
from finance.transactions.schemas import (
    TransactionIn,
    TransactionOut,
    TransactionPatch,
)

router = APIRouter(
    prefix="/ledgers/{ledger_id}/transactions", tags=["transactions"], route_class=IdempotentRoute
)


# ASCII digits only: `str.isdigit` also takes "²", which `int` refuses.
_VERSION = re.compile(r"[0-9]{1,18}")


def etag(version: int) -> str:
    """A strong validator: the version changes with every write of the transaction."""
    return f'"{version}"'


async def if_match_versions(
    if_match: Annotated[
        str | None,
        Header(
            description='The ETag last read (`"3"`); a write to any other version gets 412. '
            "Without it the write is unconditional."
        ),
    ] = None,
) -> set[int] | None:
    """The versions an If-Match header accepts; None when any version will do.

    A weak `W/"3"` is taken like `"3"` (clients echo what they got); a tag that is not one
    of ours matches nothing, so the write gets 412.
    """
    if if_match is None or if_match.strip() == "*":
        return None
    versions = set()
    for tag in if_match.split(","):
        value = tag.strip().removeprefix("W/").strip('"')
        if _VERSION.fullmatch(value):
            versions.add(int(value))
    return versions


IfMatch = Annotated[set[int] | None, Depends(if_match_versions)]


def _tagged(response: Response, transaction: TransactionOut) -> TransactionOut:
    response.headers["ETag"] = etag(transaction.version)
    return transaction


def _decimal(value: str | None, name: str) -> Decimal | None:
    if value is None:
        return None
    try:
        return parse_decimal(value, field=name)
    except AmountError as exc:
        raise Unprocessable(str(exc)) from exc


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TransactionOut,
    responses=responses(401, 403, 404, 409, 422),
    summary="Record a balanced transaction",
)
async def create_transaction(
    body: TransactionIn, access: LedgerWriter, session: SessionDep, request: Request
) -> Response:
    created = await service.create_transaction(session, access.ledger_id, access.user.id, body)
    headers = {
        "ETag": etag(created["version"]),
        "Location": created_location(request, created["id"]),
    }
    return Prebuilt(created, status_code=status.HTTP_201_CREATED, headers=headers)


@router.get(
    "",
    response_model=Page[TransactionOut],
    responses=responses(401, 404, 422),
    summary="Transactions, newest first, filtered, a page at a time",
)
async def list_transactions(
    access: LedgerReader,
    session: SessionDep,
    page: PageDep,
    date_from: Annotated[
        dt.date | None, Query(alias="from", description="On or after this date")
    ] = None,
    date_to: Annotated[dt.date | None, Query(alias="to", description="On or before")] = None,
    account_id: Annotated[
        uuid.UUID | None, Query(description="With a posting on this account")
    ] = None,
    include_descendants: Annotated[
        bool, Query(description="account_id also matches the accounts below it")
    ] = True,
    payee: Annotated[
        str | None, Query(max_length=200, description="Payee contains this, any case")
    ] = None,
    tag: Annotated[str | None, Query(max_length=100)] = None,
    status_: Annotated[TransactionStatus | None, Query(alias="status")] = None,
    q: Annotated[
        str | None,
        Query(max_length=200, description="Text in the payee, the narration or a memo"),
    ] = None,
    min_amount: Annotated[
        str | None,
        Query(
            max_length=40,
            description="With a posting whose absolute amount is at least this, in commodity",
        ),
    ] = None,
    max_amount: Annotated[
        str | None,
        Query(
            max_length=40,
            description="With a posting whose absolute amount is at most this, in commodity",
        ),
    ] = None,
    commodity: Annotated[
        str | None, Query(max_length=24, description="With a posting in this commodity")
    ] = None,
) -> Response:
    filters = service.TransactionFilters(
        date_from=date_from,
        date_to=date_to,
        account_id=account_id,
        include_descendants=include_descendants,
        payee=payee,
        tag=tag,
        status=status_,
        q=q,
        min_amount=_decimal(min_amount, "min_amount"),
        max_amount=_decimal(max_amount, "max_amount"),
        commodity=commodity,
    )
    return Prebuilt(await service.list_transactions(session, access.ledger_id, filters, page))


@router.get(
    "/{transaction_id}",
    response_model=TransactionOut,
    responses=responses(401, 404),
    summary="One transaction with its postings; the ETag is its version",
)
async def get_transaction(
    transaction_id: uuid.UUID, access: LedgerReader, session: SessionDep
) -> Response:
    found = await service.get_transaction(session, access.ledger_id, transaction_id)
    return Prebuilt(found, headers={"ETag": etag(found["version"])})


@router.put(
    "/{transaction_id}",
    response_model=TransactionOut,
    responses=responses(401, 403, 404, 412, 422),
    summary="Replace a transaction and all its postings",
)
async def replace_transaction(
    transaction_id: uuid.UUID,
    body: TransactionIn,
    access: LedgerWriter,
    session: SessionDep,
    if_match: IfMatch,
    response: Response,
) -> TransactionOut:
    updated = await service.replace_transaction(
        session, access.ledger_id, access.user.id, transaction_id, body, if_match=if_match
    )
    return _tagged(response, updated)


@router.patch(
    "/{transaction_id}",
    response_model=TransactionOut,
    responses=responses(401, 403, 404, 412, 422),
    summary="Change some fields of a transaction (postings, if given, are replaced together)",
)
async def patch_transaction(
    transaction_id: uuid.UUID,
    body: TransactionPatch,
    access: LedgerWriter,
    session: SessionDep,
    if_match: IfMatch,
    response: Response,
) -> TransactionOut:
    updated = await service.patch_transaction(
        session, access.ledger_id, access.user.id, transaction_id, body, if_match=if_match
    )
    return _tagged(response, updated)


@router.delete(
    "/{transaction_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404, 412),
    summary="Delete a transaction and its postings",
)
async def delete_transaction(
    transaction_id: uuid.UUID, access: LedgerWriter, session: SessionDep, if_match: IfMatch
) -> Response:
    await service.delete_transaction(
        session, access.ledger_id, access.user.id, transaction_id, if_match=if_match
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
