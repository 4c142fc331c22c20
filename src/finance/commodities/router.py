"""/api/v1/ledgers/{ledger_id}/commodities: HTTP only; the rules live in the service."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from fastapi import APIRouter, status

from finance.commodities import service
from finance.commodities.schemas import CommodityCreate, CommodityRead, CommodityUpdate
from finance.db import SessionDep
from finance.errors import responses
from finance.idempotency import IdempotentRoute
from finance.ledgers.deps import LedgerReader, LedgerWriter
from finance.models import Commodity

router = APIRouter(
    prefix="/ledgers/{ledger_id}/commodities", tags=["commodities"], route_class=IdempotentRoute
)


@router.get(
    "",
    response_model=list[CommodityRead],
    responses=responses(401, 404),
    summary="The ledger's commodities, by code",
)
async def list_commodities(access: LedgerReader, session: SessionDep) -> Sequence[Commodity]:
    return await service.list_commodities(session, access.ledger_id)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CommodityRead,
    responses=responses(401, 403, 404, 409, 422),
    summary="Add a commodity (ISO currencies are also added on first use)",
)
async def create_commodity(
    body: CommodityCreate, access: LedgerWriter, session: SessionDep
) -> Commodity:
    return await service.create_commodity(
        session,
        access.ledger_id,
        user_id=access.user.id,
        code=body.code,
        name=body.name,
        precision=body.precision,
    )


@router.get(
    "/{commodity_id}",
    response_model=CommodityRead,
    responses=responses(401, 404),
    summary="One commodity",
)
async def read_commodity(
    commodity_id: uuid.UUID, access: LedgerReader, session: SessionDep
) -> Commodity:
    return await service.get_commodity(session, access.ledger_id, commodity_id)


@router.patch(
    "/{commodity_id}",
    response_model=CommodityRead,
    responses=responses(401, 403, 404, 422),
    summary="Rename a commodity or raise its precision (stored amounts are rescaled exactly)",
)
async def update_commodity(
    commodity_id: uuid.UUID, body: CommodityUpdate, access: LedgerWriter, session: SessionDep
) -> Commodity:
    return await service.update_commodity(
        session,
        access.ledger_id,
        commodity_id,
        user_id=access.user.id,
        changes=body.model_dump(exclude_unset=True),
    )
