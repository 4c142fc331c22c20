"""/api/v1/ledgers/{ledger_id}/prices: HTTP only; the rules live in the service."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from finance.db import SessionDep
from finance.errors import responses
from finance.idempotency import IdempotentRoute
from finance.ledgers.deps import LedgerReader, LedgerWriter
from finance.prices import service
from finance.prices.schemas import PriceIn, PriceOut
from finance.schemas import Page, PageDep, created_location

router = APIRouter(
    prefix="/ledgers/{ledger_id}/prices", tags=["prices"], route_class=IdempotentRoute
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=PriceOut,
    responses=responses(401, 403, 404, 409, 422),
    summary="Record a price (one per commodity, quote commodity and date)",
)
async def create_price(
    body: PriceIn, access: LedgerWriter, session: SessionDep, request: Request, response: Response
) -> PriceOut:
    created = await service.create_price(session, access.ledger_id, access.user.id, body)
    response.headers["Location"] = created_location(request, created.id)
    return created


@router.get(
    "",
    response_model=Page[PriceOut],
    responses=responses(401, 404, 422),
    summary="Prices, newest first, a page at a time",
)
async def list_prices(
    access: LedgerReader,
    session: SessionDep,
    page: PageDep,
    commodity: Annotated[str | None, Query(max_length=24)] = None,
    quote: Annotated[str | None, Query(max_length=24, description="The quote commodity")] = None,
    date_from: Annotated[dt.date | None, Query(alias="from")] = None,
    date_to: Annotated[dt.date | None, Query(alias="to")] = None,
) -> Page[PriceOut]:
    return await service.list_prices(
        session,
        access.ledger_id,
        page,
        commodity=commodity,
        quote=quote,
        date_from=date_from,
        date_to=date_to,
    )


@router.get(
    "/{price_id}", response_model=PriceOut, responses=responses(401, 404), summary="One price"
)
async def get_price(price_id: uuid.UUID, access: LedgerReader, session: SessionDep) -> PriceOut:
    return await service.get_price(session, access.ledger_id, price_id)


@router.delete(
    "/{price_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404),
    summary="Delete a price",
)
async def delete_price(price_id: uuid.UUID, access: LedgerWriter, session: SessionDep) -> Response:
    await service.delete_price(session, access.ledger_id, access.user.id, price_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
