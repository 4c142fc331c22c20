"""`finance import` and `finance export`: the same services as the API, from a terminal.

The commands act as a member of the ledger, with that member's role: `--user EMAIL`, or,
when left out, the ledger's only owner (a ledger with several owners needs `--user`).
Importing needs the editor role, exporting the viewer role, as through the API.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import uuid
from pathlib import Path
from typing import Annotated, BinaryIO, TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from finance.config import Settings
from finance.db import Database
from finance.errors import Forbidden, NotFound, Unprocessable
from finance.exports.service import ExportFilter, ExportFormat, check_filter, export
from finance.imports import service
from finance.imports.outcomes import DEFAULT_EXPENSE_ACCOUNT, DEFAULT_INCOME_ACCOUNT, ImportRequest
from finance.imports.schemas import CsvMapping, ImportBatchOut
from finance.ledgers.deps import LedgerAccess
from finance.models import Account, CsvProfile, ImportFormat, Ledger, LedgerMember, Role, User
from finance.terminal import run_with_database
from finance.terminal import stderr as console

T = TypeVar("T")


def register(app: typer.Typer) -> None:
    """Add `import` and `export` to the `finance` command."""
    app.command("import")(import_file)
    app.command("export")(export_ledger)


async def _access(
    session: AsyncSession, ledger: str, email: str | None, minimum: Role
) -> LedgerAccess:
    """The ledger (by id, or by a name that only one ledger has) and who acts on it."""
    try:
        found = await session.get(Ledger, uuid.UUID(ledger))
        ledgers = [found] if found is not None else []
    except ValueError:
        ledgers = list(await session.scalars(select(Ledger).where(Ledger.name == ledger)))
    if not ledgers:
        raise NotFound(f"No ledger {ledger!r}")
    if len(ledgers) > 1:
        ids = ", ".join(str(item.id) for item in ledgers)
        raise Unprocessable(f"{len(ledgers)} ledgers are named {ledger!r}: give an id ({ids})")
    chosen = ledgers[0]
    members = (
        select(User, LedgerMember.role)
        .join(LedgerMember, LedgerMember.user_id == User.id)
        .where(LedgerMember.ledger_id == chosen.id)
    )
    if email is not None:
        row = (
            await session.execute(members.where(func.lower(User.email) == email.lower()))
        ).first()
        if row is None:
            raise NotFound(f"{email} is not a member of {chosen.name}")
    else:
        owners = (await session.execute(members.where(LedgerMember.role == Role.OWNER))).all()
        if len(owners) != 1:
            raise Unprocessable(
                f"{chosen.name} has {len(owners)} owners: say who acts with --user EMAIL"
            )
        row = owners[0]
    access = LedgerAccess(ledger=chosen, role=row[1], user=row[0])
    if not access.can(minimum):
        raise Forbidden(f"{access.user.email} is {access.role.value} of {chosen.name}")
    return access


async def _named(
    session: AsyncSession, model: type[Account] | type[CsvProfile], ledger_id: uuid.UUID, key: str
) -> uuid.UUID:
    """An account or CSV profile of the ledger, by id or by (full) name."""
    try:
        wanted = uuid.UUID(key)
        condition = model.id == wanted
    except ValueError:
        condition = model.name == key
    found = await session.scalar(select(model.id).where(model.ledger_id == ledger_id, condition))
    if found is None:
        kind = "account" if model is Account else "CSV profile"
        raise NotFound(f"No {kind} {key!r} in this ledger")
    return found


def _mapping(text: str | None) -> CsvMapping | None:
    """A mapping given as JSON, or as @path of a JSON file."""
    if text is None:
        return None
    if text.startswith("@"):
        text = Path(text[1:]).read_text()
    try:
        return CsvMapping.model_validate(json.loads(text))
    except ValueError as exc:
        raise Unprocessable(f"--mapping: {exc}") from exc


def _line_count(file: BinaryIO) -> int | None:
    total = 0
    while block := file.read(1 << 20):
        total += block.count(b"\n")
    file.seek(0)
    return total or None


def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    ledger: Annotated[str, typer.Option(help="The ledger's id or name")],
    account: Annotated[
        str | None, typer.Option(help="The statement's account: id or full name")
    ] = None,
    format: Annotated[
        ImportFormat | None, typer.Option(help="Detected from the content when left out")
    ] = None,
    profile: Annotated[str | None, typer.Option(help="A CSV profile: id or name")] = None,
    mapping: Annotated[
        str | None, typer.Option(help="A CSV mapping as JSON, or @file.json")
    ] = None,
    currency: Annotated[str | None, typer.Option(help="When the file does not say")] = None,
    date_order: Annotated[str, typer.Option(help="QIF dates: mdy or dmy")] = "mdy",
    expense_account: Annotated[str, typer.Option()] = DEFAULT_EXPENSE_ACCOUNT,
    income_account: Annotated[str, typer.Option()] = DEFAULT_INCOME_ACCOUNT,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would happen")] = False,
    user: Annotated[str | None, typer.Option(help="Act as this member (email)")] = None,
) -> None:
    """Import a bank statement or a Beancount file into a ledger, all or nothing."""
    if date_order not in ("mdy", "dmy"):
        raise typer.BadParameter("mdy or dmy", param_hint="--date-order")

    async def work(database: Database) -> ImportBatchOut:
        settings = Settings()
        with file.open("rb") as stream, _progress() as progress:
            total = _line_count(stream) if format in (None, ImportFormat.CSV) else None
            task = progress.add_task(f"Importing {file.name}", total=total)
            async with database.sessions() as session, session.begin():
                access = await _access(session, ledger, user, Role.EDITOR)
                request = ImportRequest(
                    format=format,
                    account_id=(
                        await _named(session, Account, access.ledger_id, account)
                        if account
                        else None
                    ),
                    mapping=_mapping(mapping),
                    profile_id=(
                        await _named(session, CsvProfile, access.ledger_id, profile)
                        if profile
                        else None
                    ),
                    currency=currency,
                    date_order="dmy" if date_order == "dmy" else "mdy",
                    expense_account=expense_account,
                    income_account=income_account,
                    dry_run=dry_run,
                    filename=file.name,
                )
                return await service.run_import(
                    session,
                    access.ledger,
                    access.user.id,
                    stream,
                    request,
                    max_lines=settings.import_max_lines,
                    progress=lambda done: progress.update(task, completed=done),
                )

    batch = run_with_database(work)
    _summary(batch)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _summary(batch: ImportBatchOut) -> None:
    title = "Dry run: nothing stored" if batch.dry_run else f"Import {batch.id}"
    table = Table("outcome", "lines", title=title)
    counts = batch.counts
    for name in ("new", "duplicate", "flagged", "rejected", "skipped"):
        table.add_row(name, str(getattr(counts, name)))
    table.add_row("[b]total[/b]", f"[b]{counts.lines}[/b]")
    console.print(table)
    attention = [line for line in batch.lines if line.outcome.value != "new"][:20]
    if attention:
        details = Table("where", "outcome", "date", "amount", "payee", "reason")
        for line in attention:
            details.add_row(
                line.position,
                line.outcome.value,
                str(line.date or ""),
                f"{line.amount or ''} {line.commodity or ''}".strip(),
                line.payee or "",
                line.reason or "",
            )
        console.print(details)
    if batch.pending_review:
        console.print(
            f"{batch.pending_review} flagged line(s) wait for a review: "
            f"POST .../imports/{batch.id}/lines/{{seq}}/review"
        )


def export_ledger(
    ledger: Annotated[str, typer.Option(help="The ledger's id or name")],
    format: Annotated[ExportFormat, typer.Option(help="beancount, ledger, csv or json")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write here instead of to stdout")
    ] = None,
    date_from: Annotated[str | None, typer.Option("--from", help="YYYY-MM-DD")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="YYYY-MM-DD")] = None,
    account: Annotated[
        str | None, typer.Option(help="Only transactions touching this path or below")
    ] = None,
    user: Annotated[str | None, typer.Option(help="Act as this member (email)")] = None,
) -> None:
    """Export a ledger as Beancount, a ledger journal, CSV or JSON, streamed."""
    try:
        filters = ExportFilter(
            date_from=dt.date.fromisoformat(date_from) if date_from else None,
            date_to=dt.date.fromisoformat(date_to) if date_to else None,
            account=account,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc

    async def work(database: Database) -> int:
        async with database.read_sessions() as session:
            access = await _access(session, ledger, user, Role.VIEWER)
            await check_filter(session, access.ledger_id, filters)
        written = 0
        target = output.open("wb") if output else sys.stdout.buffer
        try:
            async for chunk in export(database.read_sessions, access.ledger_id, format, filters):
                target.write(chunk)
                written += len(chunk)
        finally:
            if output:
                target.close()
            else:
                target.flush()
        return written

    written = run_with_database(work)
    if output:
        console.print(f"Wrote {written} bytes to {output}")
