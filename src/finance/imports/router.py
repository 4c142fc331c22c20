"""/api/v1/ledgers/{ledger_id}/imports and csv-profiles: HTTP only; rules live in the service."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, File, Form, Query, Response, UploadFile, status
from pydantic import ValidationError

from finance.config import SettingsDep
from finance.db import SessionDep
from finance.errors import Unprocessable, responses
from finance.idempotency import IdempotentRoute
from finance.imports import profiles, service
from finance.imports.outcomes import DEFAULT_EXPENSE_ACCOUNT, DEFAULT_INCOME_ACCOUNT, ImportRequest
from finance.imports.schemas import (
    CsvMapping,
    CsvPreview,
    CsvProfileIn,
    CsvProfileOut,
    ImportBatchOut,
    ImportBatchSummary,
    ImportLineOut,
    ReviewIn,
)
from finance.ledgers.deps import LedgerReader, LedgerWriter
from finance.models import ImportFormat, LineOutcome
from finance.schemas import Page, PageDep

router = APIRouter(prefix="/ledgers/{ledger_id}", tags=["imports"], route_class=IdempotentRoute)

UploadedFile = Annotated[UploadFile, File(description="The statement or Beancount file")]
MappingForm = Annotated[
    str | None,
    Form(
        max_length=10_000,
        description="A CSV mapping as JSON (the `mapping` of a csv-profile), instead of profile_id",
    ),
]


def _mapping(text: str | None) -> CsvMapping | None:
    if text is None:
        return None
    try:
        return CsvMapping.model_validate(json.loads(text))
    except (ValueError, ValidationError) as exc:
        detail = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        raise Unprocessable(f"mapping: {detail}") from exc


@router.post(
    "/imports",
    status_code=status.HTTP_201_CREATED,
    response_model=ImportBatchOut,
    responses={
        200: {"description": "A dry run: nothing was stored", "model": ImportBatchOut},
        **responses(401, 403, 404, 409, 413, 422),
    },
    summary="Import a bank statement (CSV, OFX/QFX, QIF, camt.053, MT940) or a Beancount file",
    description="The format is detected when left out. A statement goes into `account_id`; "
    "a CSV file needs `profile_id` or `mapping`. Answers the batch: counts of new, duplicate, "
    "flagged, rejected and skipped lines, and each line's outcome with its reason and its "
    "place in the file. A file that cannot be read writes nothing (422 naming the line).",
)
async def create_import(
    access: LedgerWriter,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
    file: UploadedFile,
    account_id: Annotated[uuid.UUID | None, Form()] = None,
    format: Annotated[ImportFormat | None, Form()] = None,
    profile_id: Annotated[uuid.UUID | None, Form()] = None,
    mapping: MappingForm = None,
    currency: Annotated[
        str | None, Form(max_length=24, description="When the file does not say")
    ] = None,
    date_order: Annotated[
        Literal["mdy", "dmy"], Form(description="QIF dates: month first (US) or day first")
    ] = "mdy",
    expense_account: Annotated[str, Form(max_length=1000)] = DEFAULT_EXPENSE_ACCOUNT,
    income_account: Annotated[str, Form(max_length=1000)] = DEFAULT_INCOME_ACCOUNT,
    dry_run: Annotated[bool, Form(description="Answer the outcome; store nothing")] = False,
) -> ImportBatchOut:
    request = ImportRequest(
        format=format,
        account_id=account_id,
        mapping=_mapping(mapping),
        profile_id=profile_id,
        currency=currency,
        date_order=date_order,
        expense_account=expense_account,
        income_account=income_account,
        dry_run=dry_run,
        filename=file.filename,
    )
    batch = await service.run_import(
        session,
        access.ledger,
        access.user.id,
        file.file,
        request,
        max_lines=settings.import_max_lines,
    )
    if dry_run:
        response.status_code = status.HTTP_200_OK
    return batch


@router.get(
    "/imports",
    response_model=Page[ImportBatchSummary],
    responses=responses(401, 404, 422),
    summary="The ledger's imports, newest first",
)
async def list_imports(
    access: LedgerReader, session: SessionDep, page: PageDep
) -> Page[ImportBatchSummary]:
    return await service.list_batches(session, access.ledger_id, page)


@router.get(
    "/imports/{batch_id}",
    response_model=ImportBatchOut,
    responses=responses(401, 404),
    summary="One import, with its lines that need attention first",
)
async def read_import(
    batch_id: uuid.UUID, access: LedgerReader, session: SessionDep
) -> ImportBatchOut:
    return await service.read_batch(session, access.ledger_id, batch_id)


@router.get(
    "/imports/{batch_id}/lines",
    response_model=Page[ImportLineOut],
    responses=responses(401, 404, 422),
    summary="Every line of an import, in file order",
)
async def list_import_lines(
    batch_id: uuid.UUID,
    access: LedgerReader,
    session: SessionDep,
    page: PageDep,
    outcome: Annotated[LineOutcome | None, Query(description="Only lines of this outcome")] = None,
) -> Page[ImportLineOut]:
    return await service.list_lines(session, access.ledger_id, batch_id, page, outcome)


@router.delete(
    "/imports/{batch_id}",
    response_model=ImportBatchOut,
    responses=responses(401, 403, 404, 409),
    summary="Undo an import: delete its transactions, keep its record as undone",
)
async def undo_import(
    batch_id: uuid.UUID, access: LedgerWriter, session: SessionDep
) -> ImportBatchOut:
    return await service.undo_batch(session, access.ledger_id, access.user.id, batch_id)


@router.post(
    "/imports/{batch_id}/lines/{seq}/review",
    response_model=ImportLineOut,
    responses=responses(401, 403, 404, 409, 422),
    summary="Accept a flagged line (add it) or reject it (it is the hand-entered one)",
)
async def review_import_line(
    batch_id: uuid.UUID,
    seq: int,
    body: ReviewIn,
    access: LedgerWriter,
    session: SessionDep,
) -> ImportLineOut:
    return await service.review_line(
        session, access.ledger_id, access.user.id, batch_id, seq, body.action
    )


@router.post(
    "/imports/csv-preview",
    response_model=CsvPreview,
    responses=responses(401, 403, 404, 413, 422),
    summary="Detect a CSV file's encoding, delimiter and header; read its first lines",
)
async def preview_csv(
    access: LedgerWriter,
    session: SessionDep,
    file: UploadedFile,
    profile_id: Annotated[uuid.UUID | None, Form()] = None,
    mapping: MappingForm = None,
    encoding: Annotated[str | None, Form(max_length=40)] = None,
    delimiter: Annotated[str | None, Form(min_length=1, max_length=1)] = None,
    has_header: Annotated[bool | None, Form()] = None,
    skip_rows: Annotated[int, Form(ge=0, le=100)] = 0,
) -> CsvPreview:
    chosen = _mapping(mapping)
    if chosen is None and profile_id is not None:
        profile = await profiles.get_profile(session, access.ledger_id, profile_id)
        chosen = profile.mapping
    return await anyio.to_thread.run_sync(
        lambda: profiles.preview(
            file.file,
            chosen,
            encoding=encoding,
            delimiter=delimiter,
            has_header=has_header,
            skip_rows=skip_rows,
        )
    )


@router.get(
    "/csv-profiles",
    response_model=list[CsvProfileOut],
    responses=responses(401, 404),
    summary="The ledger's saved CSV mappings, by name",
)
async def list_csv_profiles(access: LedgerReader, session: SessionDep) -> Sequence[CsvProfileOut]:
    return await profiles.list_profiles(session, access.ledger_id)


@router.post(
    "/csv-profiles",
    status_code=status.HTTP_201_CREATED,
    response_model=CsvProfileOut,
    responses=responses(401, 403, 404, 409, 422),
    summary="Save a CSV mapping for a bank's export layout",
)
async def create_csv_profile(
    body: CsvProfileIn, access: LedgerWriter, session: SessionDep
) -> CsvProfileOut:
    return await profiles.create_profile(session, access.ledger_id, access.user.id, body)


@router.get(
    "/csv-profiles/{profile_id}",
    response_model=CsvProfileOut,
    responses=responses(401, 404),
    summary="One CSV profile",
)
async def read_csv_profile(
    profile_id: uuid.UUID, access: LedgerReader, session: SessionDep
) -> CsvProfileOut:
    return await profiles.get_profile(session, access.ledger_id, profile_id)


@router.put(
    "/csv-profiles/{profile_id}",
    response_model=CsvProfileOut,
    responses=responses(401, 403, 404, 409, 422),
    summary="Replace a CSV profile's name and mapping",
)
async def replace_csv_profile(
    profile_id: uuid.UUID, body: CsvProfileIn, access: LedgerWriter, session: SessionDep
) -> CsvProfileOut:
    return await profiles.replace_profile(
        session, access.ledger_id, access.user.id, profile_id, body
    )


@router.delete(
    "/csv-profiles/{profile_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404),
    summary="Delete a CSV profile (imports made with it keep their mapping)",
)
async def delete_csv_profile(
    profile_id: uuid.UUID, access: LedgerWriter, session: SessionDep
) -> Response:
    await profiles.delete_profile(session, access.ledger_id, access.user.id, profile_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
