"""/api/v1/ledgers/{ledger_id}/export: HTTP only; the rules live in the service."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from finance.db import SessionDep, get_database
from finance.errors import responses
from finance.exports.service import (
    EXTENSIONS,
    MEDIA_TYPES,
    ExportFilter,
    ExportFormat,
    check_filter,
    export,
)
from finance.idempotency import IdempotentRoute
from finance.ledgers.deps import LedgerReader

router = APIRouter(prefix="/ledgers/{ledger_id}", tags=["exports"], route_class=IdempotentRoute)


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The ledger in the format asked for, streamed",
            "content": {media: {} for media in sorted(set(MEDIA_TYPES.values()))},
        },
        **responses(401, 404, 422),
    },
    summary="Export the ledger as Beancount, ledger (hledger, ledger-cli), CSV or JSON",
)
async def export_ledger(
    access: LedgerReader,
    session: SessionDep,
    request: Request,
    format: Annotated[ExportFormat, Query(description="beancount, ledger, csv or json")],
    date_from: Annotated[dt.date | None, Query(alias="from", description="First day")] = None,
    date_to: Annotated[dt.date | None, Query(alias="to", description="Last day")] = None,
    account_id: Annotated[
        uuid.UUID | None,
        Query(description="Only the transactions touching this account or one below it"),
    ] = None,
    account: Annotated[
        str | None,
        Query(
            max_length=1000,
            description="Only the transactions touching an account of this path or below it "
            "(`Assets:Brokerage`)",
        ),
    ] = None,
) -> StreamingResponse:
    filters = ExportFilter(
        date_from=date_from, date_to=date_to, account_id=account_id, account=account
    )
    await check_filter(session, access.ledger_id, filters)
    # The request's session closes before the body is sent; the export opens its own.
    database = get_database(request)
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", access.ledger.name).strip("-") or "ledger"
    return StreamingResponse(
        export(database.read_sessions, access.ledger_id, format, filters),
        media_type=MEDIA_TYPES[format],
        headers={
            "Content-Disposition": f'attachment; filename="{name}.{EXTENSIONS[format]}"',
        },
    )
