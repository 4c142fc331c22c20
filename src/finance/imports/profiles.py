"""Saved CSV mappings, one per bank export layout, named per ledger; and the CSV preview."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from itertools import islice
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from finance import audit
from finance.errors import Conflict, NotFound
from finance.imports.parsers.delimited import parse_csv, sniff
from finance.imports.schemas import CsvMapping, CsvPreview, CsvProfileIn, CsvProfileOut, PreviewLine
from finance.imports.statement import InvalidFile
from finance.models import CsvProfile

OBJECT_TYPE = "csv_profile"
PREVIEW_ROWS = 10

# Header words (lower case) that suggest a column's role, in several languages banks use.
_HINTS: dict[str, tuple[str, ...]] = {
    "date": ("date", "booking date", "posting date", "transaction date", "buchungstag", "datum"),
    "amount": ("amount", "betrag", "montant", "importe", "value"),
    "debit": ("debit", "withdrawal", "withdrawals", "soll", "money out", "paid out"),
    "credit": ("credit", "deposit", "deposits", "haben", "money in", "paid in"),
    "payee": ("payee", "name", "description", "merchant", "beguenstigter/zahlungspflichtiger"),
    "narration": ("memo", "narration", "details", "verwendungszweck", "purpose", "reference text"),
    "reference": ("reference", "check number", "cheque number", "ref"),
    "unique_id": ("transaction id", "id", "fitid"),
    "currency_column": ("currency", "waehrung", "währung", "devise"),
}


def _out(profile: CsvProfile) -> CsvProfileOut:
    return CsvProfileOut.model_validate(profile)


async def _get(session: AsyncSession, ledger_id: uuid.UUID, profile_id: uuid.UUID) -> CsvProfile:
    profile = await session.get(CsvProfile, (ledger_id, profile_id))
    if profile is None:
        raise NotFound("No such CSV profile")
    return profile


async def _check_name(
    session: AsyncSession, ledger_id: uuid.UUID, name: str, profile_id: uuid.UUID | None = None
) -> None:
    found = await session.scalar(
        select(CsvProfile.id).where(CsvProfile.ledger_id == ledger_id, CsvProfile.name == name)
    )
    if found is not None and found != profile_id:
        raise Conflict(f"This ledger already has a CSV profile named {name!r}")


async def list_profiles(session: AsyncSession, ledger_id: uuid.UUID) -> Sequence[CsvProfileOut]:
    profiles = await session.scalars(
        select(CsvProfile).where(CsvProfile.ledger_id == ledger_id).order_by(CsvProfile.name)
    )
    return [_out(profile) for profile in profiles]


async def get_profile(
    session: AsyncSession, ledger_id: uuid.UUID, profile_id: uuid.UUID
) -> CsvProfileOut:
    return _out(await _get(session, ledger_id, profile_id))


async def create_profile(
    session: AsyncSession, ledger_id: uuid.UUID, user_id: uuid.UUID | None, data: CsvProfileIn
) -> CsvProfileOut:
    await _check_name(session, ledger_id, data.name)
    profile = CsvProfile(
        ledger_id=ledger_id, name=data.name, mapping=data.mapping.model_dump(mode="json")
    )
    session.add(profile)
    await session.flush()
    created = _out(profile)
    await audit.record(
        session,
        ledger_id=ledger_id,
        user_id=user_id,
        action="create",
        object_type=OBJECT_TYPE,
        object_id=profile.id,
        after=created.model_dump(mode="json"),
    )
    return created


async def replace_profile(
    session: AsyncSession,
    ledger_id: uuid.UUID,
    user_id: uuid.UUID | None,
    profile_id: uuid.UUID,
    data: CsvProfileIn,
) -> CsvProfileOut:
    profile = await _get(session, ledger_id, profile_id)
    before = _out(profile).model_dump(mode="json")
    await _check_name(session, ledger_id, data.name, profile_id)
    profile.name = data.name
    profile.mapping = data.mapping.model_dump(mode="json")
    await session.flush()
    after = _out(profile)
    await audit.record(
        session,
        ledger_id=ledger_id,
        user_id=user_id,
        action="update",
        object_type=OBJECT_TYPE,
        object_id=profile.id,
        before=before,
        after=after.model_dump(mode="json"),
    )
    return after


async def delete_profile(
    session: AsyncSession, ledger_id: uuid.UUID, user_id: uuid.UUID | None, profile_id: uuid.UUID
) -> None:
    profile = await _get(session, ledger_id, profile_id)
    before = _out(profile).model_dump(mode="json")
    await session.delete(profile)
    await session.flush()
    await audit.record(
        session,
        ledger_id=ledger_id,
        user_id=user_id,
        action="delete",
        object_type=OBJECT_TYPE,
        object_id=profile_id,
        before=before,
    )


def preview(
    file: BinaryIO,
    mapping: CsvMapping | None,
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
    has_header: bool | None = None,
    skip_rows: int = 0,
) -> CsvPreview:
    """What the first lines hold, the columns their header suggests, and, with a mapping,
    how the first lines read (or why they do not)."""
    if mapping is not None:
        encoding = encoding or mapping.encoding
        delimiter = delimiter or mapping.delimiter
        has_header = mapping.has_header if has_header is None else has_header
        skip_rows = skip_rows or mapping.skip_rows
    layout = sniff(
        file,
        encoding=encoding,
        delimiter=delimiter,
        has_header=has_header,
        skip_rows=skip_rows,
        rows=PREVIEW_ROWS,
    )
    lines: list[PreviewLine] = []
    error = None
    if mapping is not None:
        file.seek(0)
        effective = mapping.model_copy(
            update={
                "encoding": layout.encoding,
                "delimiter": layout.delimiter,
                "has_header": layout.has_header,
                "skip_rows": skip_rows,
            }
        )
        try:
            for line in islice(parse_csv(file, effective).lines, PREVIEW_ROWS):
                lines.append(
                    PreviewLine(
                        position=line.position,
                        date=line.date,
                        amount=f"{line.amount:f}",
                        currency=line.currency,
                        payee=line.payee,
                        narration=line.narration,
                        reference=line.reference,
                        unique_id=line.unique_id,
                    )
                )
        except InvalidFile as exc:
            error = exc.detail
    return CsvPreview(
        encoding=layout.encoding,
        delimiter=layout.delimiter,
        has_header=layout.has_header,
        header=layout.header,
        rows=layout.rows,
        suggested_mapping=_suggest(layout.header),
        lines=lines,
        error=error,
    )


def _suggest(header: list[str]) -> dict[str, str | int | None]:
    """The first header cell whose text is a known word for each role."""
    suggested: dict[str, str | int | None] = {}
    taken: set[str] = set()
    for role, words in _HINTS.items():
        suggested[role] = None
        for cell in header:
            if cell not in taken and cell.strip().casefold() in words:
                suggested[role] = cell
                taken.add(cell)
                break
    return suggested
