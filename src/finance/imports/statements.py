"""Bank statements into the books: duplicates, look-alikes, counter-postings, in chunks.

Lines are read as a stream and handled `CHUNK` at a time: per chunk, one query finds the
identities already claimed, one the hand-entered look-alikes, one the payees' last
counter-accounts; the new lines are validated by the transactions service and written with
its bulk insert, and the chunk's outcomes with one more (`finance.bulkwrite`: COPY on
PostgreSQL, executemany on SQLite).

Outcomes (`LineOutcome`):
- new: the line became a balanced transaction: the statement account on one side, on the
  other its QIF category (or splits), else the account the payee's last transaction used,
  else the default `Expenses:Uncategorized` (money out) or `Income:Uncategorized` (money in),
  created when missing.
- duplicate: its identity (see `finance.imports.identity`) was claimed by a line of an
  earlier import.
- flagged: no import brought it in before, but a transaction entered by hand looks like it
  (the same amount and commodity on the statement account, dated within 3 days, a similar
  payee). It stays out of the books until reviewed: accept adds it as a transaction of its
  own, reject records it as that hand-entered transaction. Either way its identity stays
  claimed, so the next import of the same statement finds it a duplicate.
- rejected: the books refuse it (the account is closed on that date, too many decimals for
  the commodity...); the reason says why, and nothing claims its identity, so a corrected
  re-import brings it in.
- skipped: nothing to book (a zero amount, a pending camt.053 entry).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import islice
from typing import Any, BinaryIO

import anyio
from pydantic import ValidationError
from rapidfuzz import fuzz, utils
from sqlalchemy import String, and_, bindparam, column, exists, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from finance.accounts.service import ROOTS, check_name, create_account, get_account
from finance.errors import NotFound, PayloadTooLarge, Unprocessable
from finance.imports.detect import decode
from finance.imports.identity import Identities, find_claims, line_key, serialize
from finance.imports.outcomes import CHUNK, ImportRequest, Recorder, reason_of
from finance.imports.parsers.camt import parse_camt053
from finance.imports.parsers.delimited import parse_csv
from finance.imports.parsers.mt940 import parse_mt940
from finance.imports.parsers.ofx import parse_ofx
from finance.imports.parsers.qif import parse_qif
from finance.imports.schemas import CsvMapping
from finance.imports.statement import Statement, StatementLine
from finance.models import (
    Account,
    AccountType,
    CsvProfile,
    ImportBatch,
    ImportFormat,
    ImportLine,
    Ledger,
    LineOutcome,
    Posting,
    Transaction,
)
from finance.money import format_decimal
from finance.transactions.schemas import TransactionIn
from finance.transactions.service import (
    Lookups,
    PreparedTransaction,
    insert_transactions,
    prepare_transaction,
)

LOOKALIKE_DAYS = 3
LOOKALIKE_PAYEE_SCORE = 80  # rapidfuzz token_set_ratio, 0 to 100
Progress = Callable[[int], None]


async def import_statement(
    session: AsyncSession,
    ledger: Ledger,
    user_id: uuid.UUID | None,
    batch: ImportBatch,
    file: BinaryIO,
    request: ImportRequest,
    *,
    max_lines: int,
    progress: Progress | None,
) -> Recorder:
    if request.account_id is None:
        raise Unprocessable("account_id: a statement is imported into an account; name it")
    account = await get_account(session, ledger.id, request.account_id, lock=True)
    if account.type not in (AccountType.ASSET, AccountType.LIABILITY):
        raise Unprocessable(
            f"Statements are imported into asset or liability accounts; {account.name} is "
            f"{account.type.value}"
        )
    for name in (request.expense_account, request.income_account):
        try:
            check_name(name)
        except Unprocessable as exc:
            raise Unprocessable(f"Default counter-account {name!r}: {exc.detail}") from exc
    await serialize(session, account.id)
    mapping = None
    if batch.format == ImportFormat.CSV:
        mapping = await _mapping(session, ledger.id, request)
    statement = await _parse(file, batch.format, request, mapping)
    batch.account_id = account.id
    batch.options = {
        **statement.options,
        "expense_account": request.expense_account,
        "income_account": request.income_account,
        **({"currency": request.currency} if request.currency else {}),
        **({"profile_id": str(request.profile_id)} if request.profile_id else {}),
    }
    work = _StatementImport(session, ledger, user_id, batch, account, request, statement)
    await work.run(max_lines, progress)
    return work.recorder


async def _mapping(
    session: AsyncSession, ledger_id: uuid.UUID, request: ImportRequest
) -> CsvMapping:
    if request.mapping is not None:
        return request.mapping
    if request.profile_id is None:
        raise Unprocessable(
            "A CSV file needs a column mapping: pass profile_id (see csv-profiles; "
            "csv-preview shows the file's columns)"
        )
    profile = await session.get(CsvProfile, (ledger_id, request.profile_id))
    if profile is None:
        raise NotFound("No such CSV profile")
    return CsvMapping.model_validate(profile.mapping)


async def _parse(
    file: BinaryIO, file_format: ImportFormat, request: ImportRequest, mapping: CsvMapping | None
) -> Statement:
    """Whole-document formats are parsed off the event loop; CSV is read lazily, by chunks."""
    if file_format == ImportFormat.CSV:
        assert mapping is not None
        return await anyio.to_thread.run_sync(parse_csv, file, mapping)
    data = await anyio.to_thread.run_sync(file.read)

    def parse() -> Statement:
        if file_format == ImportFormat.OFX:
            return parse_ofx(data)
        if file_format == ImportFormat.CAMT053:
            return parse_camt053(data)
        if file_format == ImportFormat.MT940:
            return parse_mt940(decode(data))
        if file_format == ImportFormat.QIF:
            return parse_qif(decode(data), date_order=request.date_order)
        raise Unprocessable(f"{file_format.value} is not a bank statement format")

    return await anyio.to_thread.run_sync(parse)


@dataclass(slots=True)
class _Line:
    """A line on its way through a chunk."""

    seq: int
    source: StatementLine
    currency: str
    identity: uuid.UUID | None = None
    outcome: LineOutcome | None = None
    reason: str | None = None
    counter_account_id: uuid.UUID | None = None
    transaction_id: uuid.UUID | None = None
    candidate_id: uuid.UUID | None = None
    prepared: PreparedTransaction | None = None


class _StatementImport:
    def __init__(
        self,
        session: AsyncSession,
        ledger: Ledger,
        user_id: uuid.UUID | None,
        batch: ImportBatch,
        account: Account,
        request: ImportRequest,
        statement: Statement,
    ) -> None:
        self.session = session
        self.ledger = ledger
        self.user_id = user_id
        self.account = account
        self.request = request
        self.statement = statement
        self.recorder = Recorder(session, batch, request.dry_run)
        self.lookups = Lookups(ledger.id, user_id)
        self.identities = Identities(str(account.id))
        self.counter = CounterAccounts(session, ledger.id, user_id, account, request)
        allowed = account.allowed_commodities or []
        self.default_currency = (
            request.currency
            or statement.currency
            or (allowed[0] if len(allowed) == 1 else ledger.base_currency)
        )
        self.matched: set[uuid.UUID] = set()

    async def run(self, max_lines: int, progress: Progress | None) -> None:
        await self.recorder.start()
        lines = self.statement.lines
        seq = 0
        try:
            while chunk := await anyio.to_thread.run_sync(_take, lines, CHUNK):
                if seq + len(chunk) > max_lines:
                    raise PayloadTooLarge(
                        f"The file has more than {max_lines} lines, the limit of one import; "
                        "split it"
                    )
                items = [
                    _Line(
                        seq=seq + index,
                        source=line,
                        currency=line.currency or self.default_currency,
                    )
                    for index, line in enumerate(chunk, start=1)
                ]
                seq += len(chunk)
                await self._chunk(items)
                if progress is not None:
                    progress(seq)
        finally:
            if isinstance(lines, Generator):
                lines.close()  # a CSV reader lets go of the file now, not when collected

    async def _chunk(self, items: list[_Line]) -> None:
        live: list[_Line] = []
        for item in items:
            if item.source.skip:
                item.outcome, item.reason = LineOutcome.SKIPPED, item.source.skip
            elif item.source.amount == 0:
                item.outcome, item.reason = LineOutcome.SKIPPED, "the amount is zero"
            else:
                item.identity = self.identities.next(line_key(item.source, item.currency))
                live.append(item)
        await self._duplicates(live)
        live = [item for item in live if item.outcome is None]
        await self._lookalikes(live)
        await self._prepare(live)
        created = [item for item in live if item.outcome == LineOutcome.NEW]
        if created and not self.request.dry_run:
            prepared = [item.prepared for item in created if item.prepared is not None]
            ids = await insert_transactions(self.session, self.ledger.id, self.user_id, prepared)
            for item, transaction_id in zip(created, ids, strict=True):
                item.transaction_id = transaction_id
        await self.recorder.write([_row(item) for item in items])

    async def _duplicates(self, items: list[_Line]) -> None:
        if not items:
            return
        claims = {item.identity: item for item in items if item.identity is not None}
        found = await find_claims(self.session, self.ledger.id, claims.keys())
        for identity, (batch_id, position) in found.items():
            item = claims[identity]
            item.outcome = LineOutcome.DUPLICATE
            item.reason = f"already imported: {position} of import {batch_id}"

    async def _lookalikes(self, items: list[_Line]) -> None:
        """Flag the lines that look like a transaction entered by hand (not by an import)."""
        if not items:
            return
        lookups = self.lookups
        await lookups.load_commodities(self.session, {item.currency for item in items})
        wanted: dict[tuple[uuid.UUID, int], list[_Line]] = {}
        for item in items:
            commodity = lookups.commodities.get(item.currency)
            minor = _minor(item.source.amount, commodity.precision) if commodity else None
            if commodity is not None and minor is not None:
                wanted.setdefault((commodity.id, minor), []).append(item)
        if not wanted:
            return
        dates = [item.source.date for item in items]
        window = dt.timedelta(days=LOOKALIKE_DAYS)
        imported = exists().where(
            ImportLine.ledger_id == Posting.ledger_id,
            ImportLine.transaction_id == Posting.transaction_id,
        )
        rows = await self.session.execute(
            select(
                Posting.transaction_id,
                Posting.commodity_id,
                Posting.amount,
                Posting.date,
                Transaction.payee,
            )
            .join(
                Transaction,
                and_(
                    Transaction.ledger_id == Posting.ledger_id,
                    Transaction.id == Posting.transaction_id,
                ),
            )
            .where(
                Posting.ledger_id == self.ledger.id,
                Posting.account_id == self.account.id,
                Posting.date.between(min(dates) - window, max(dates) + window),
                Posting.amount.in_(bindparam("amounts", expanding=True)),
                ~imported,
            )
            .order_by(Posting.date, Posting.transaction_id),
            # Bound at execution: the statement is compiled once, not per chunk and amount.
            {"amounts": sorted({minor for _, minor in wanted})},
        )
        for transaction_id, commodity_id, amount, date, payee in rows:
            for item in wanted.get((commodity_id, amount), []):
                if (
                    item.outcome is None
                    and transaction_id not in self.matched
                    and abs((item.source.date - date).days) <= LOOKALIKE_DAYS
                    and _similar(item.source.payee, payee)
                ):
                    self.matched.add(transaction_id)
                    item.outcome = LineOutcome.FLAGGED
                    item.candidate_id = transaction_id
                    item.reason = (
                        f"looks like the transaction of {date.isoformat()} ({payee}) entered "
                        "by hand: accept the line to add it as well, or reject it as the same"
                    )
                    break

    async def _prepare(self, items: list[_Line]) -> None:
        """Validate the lines that would become transactions; flagged ones too, so that their
        counter-account is chosen now and a refusal shows before the review."""
        await self.counter.learn([item.source.payee for item in items if item.source.payee])
        for item in items:
            try:
                data = await self.counter.transaction(item.source, item.currency)
                item.counter_account_id = _counter_of(data, self.account.id)
                item.prepared = await prepare_transaction(
                    self.session, self.ledger.id, data, self.lookups
                )
            except (Unprocessable, ValidationError) as exc:
                if item.outcome is None:
                    item.outcome, item.reason = LineOutcome.REJECTED, reason_of(exc)
                continue
            if item.outcome is None:
                item.outcome = LineOutcome.NEW


def _row(item: _Line) -> dict[str, Any]:
    assert item.outcome is not None
    claims = item.outcome in (LineOutcome.NEW, LineOutcome.FLAGGED)
    source = item.source
    return {
        "seq": item.seq,
        "position": source.position[:120],
        "outcome": item.outcome,
        "reason": item.reason,
        "identity": item.identity if claims else None,
        "reference": source.unique_id or source.reference,
        "date": source.date,
        "amount": source.amount,
        "commodity": item.currency[:24],
        "payee": source.payee,
        "narration": source.narration,
        "counter_account_id": item.counter_account_id,
        "transaction_id": item.transaction_id,
        "candidate_id": item.candidate_id,
    }


def _take(lines: Iterator[StatementLine], size: int) -> list[StatementLine]:
    return list(islice(lines, size))


def _minor(amount: Decimal, precision: int) -> int | None:
    scaled = amount.scaleb(precision)
    return int(scaled) if scaled == scaled.to_integral_value() else None


def _similar(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    return bool(
        fuzz.token_set_ratio(a, b, processor=utils.default_process) >= LOOKALIKE_PAYEE_SCORE
    )


def _counter_of(data: TransactionIn, statement_account: uuid.UUID) -> uuid.UUID | None:
    others = {p.account_id for p in data.postings if p.account_id != statement_account}
    return others.pop() if len(others) == 1 else None


class CounterAccounts:
    """Chooses the other side of a bank line, and creates the accounts it names.

    In order: the line's QIF category or splits (`Food:Groceries` is an expense or income
    account of that name, `[Savings]` a transfer to the account of that name), else the
    account on the other side of the last transaction with the same payee, else the default
    for money out or in.
    """

    def __init__(
        self,
        session: AsyncSession,
        ledger_id: uuid.UUID,
        user_id: uuid.UUID | None,
        account: Account,
        request: ImportRequest,
    ) -> None:
        self.session = session
        self.ledger_id = ledger_id
        self.user_id = user_id
        self.account = account
        self.request = request
        self.by_payee: dict[str, uuid.UUID | None] = {}
        self.by_name: dict[str, uuid.UUID] = {}

    async def learn(self, payees: Sequence[str]) -> None:
        """Find, in one query, the last counter-account of each payee not seen yet: the other
        posting (the largest, if several) of the payee's latest transaction."""
        wanted = {payee for payee in payees if payee not in self.by_payee}
        if not wanted:
            return
        if self.session.get_bind().dialect.name == "postgresql":
            names = bindparam("payees", sorted(wanted), type_=ARRAY(String()))
            source = func.unnest(names).table_valued(column("payee", String())).render_derived()
            name = source.c.payee
        else:
            names = bindparam("payees", json.dumps(sorted(wanted)), type_=String())
            source = func.json_each(names).table_valued(column("value", String()))
            name = source.c.value
        # One probe of ix_transactions_ledger_payee per payee, not a scan of its history.
        latest = (
            select(Transaction.id)
            .where(Transaction.ledger_id == self.ledger_id, Transaction.payee == name)
            .order_by(Transaction.date.desc(), Transaction.created_at.desc(), Transaction.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        last = select(name.label("payee"), latest.label("id")).select_from(source).subquery()
        rows = await self.session.execute(
            select(last.c.payee, Posting.account_id, Posting.amount)
            .join(
                Posting,
                and_(Posting.ledger_id == self.ledger_id, Posting.transaction_id == last.c.id),
            )
            .where(Posting.account_id != self.account.id)
        )
        best: dict[str, tuple[int, uuid.UUID]] = {}
        for payee, account_id, amount in rows:
            if payee not in best or abs(amount) > best[payee][0]:
                best[payee] = (abs(amount), account_id)
        for payee in wanted:
            self.by_payee[payee] = best[payee][1] if payee in best else None

    async def transaction(self, line: StatementLine, currency: str) -> TransactionIn:
        postings: list[dict[str, Any]] = [
            {
                "account_id": self.account.id,
                "amount": format_decimal(line.amount),
                "commodity": currency,
            }
        ]
        if line.splits:
            for split in line.splits:
                postings.append(
                    {
                        "account_id": await self._category(split.category, split.amount),
                        "amount": format_decimal(-split.amount),
                        "commodity": currency,
                        "memo": split.memo,
                    }
                )
        else:
            postings.append(
                {
                    "account_id": await self._other_side(line),
                    "amount": format_decimal(-line.amount),
                    "commodity": currency,
                }
            )
        external_id = line.unique_id if line.unique_id and len(line.unique_id) <= 200 else None
        return TransactionIn.model_validate(
            {
                "date": line.date,
                "payee": line.payee,
                "narration": line.narration,
                "external_id": external_id,
                "postings": postings,
                # Given, not defaulted: pydantic copies a mutable default for every line.
                "tags": [],
                "links": [],
                "meta": {},
            }
        )

    async def _other_side(self, line: StatementLine) -> uuid.UUID:
        if line.category:
            return await self._category(line.category, line.amount)
        learned = self.by_payee.get(line.payee) if line.payee else None
        if learned is not None:
            return learned
        return await self._default(line.amount)

    async def _default(self, amount: Decimal) -> uuid.UUID:
        request = self.request
        name = request.expense_account if amount < 0 else request.income_account
        return self.by_name.get(name) or await self.named(name)

    async def _category(self, category: str | None, amount: Decimal) -> uuid.UUID:
        """A QIF category: `[Account]` is a transfer; `Food:Groceries` an expense (or income)
        account of that name, whichever exists, else one by the amount's sign; the class
        after a `/` is dropped."""
        if not category:
            return await self._default(amount)
        if category.startswith("[") and category.endswith("]"):
            return await self._transfer(category[1:-1].strip())
        path = ":".join(part.strip() for part in category.split("/", 1)[0].split(":"))
        if path.split(":", 1)[0] in ROOTS:
            return await self.named(path)
        spend, earn = f"Expenses:{path}", f"Income:{path}"
        preferred, other = (spend, earn) if amount < 0 else (earn, spend)
        for name in (preferred, other):
            found = await self._existing(name)
            if found is not None:
                return found
        return await self.named(preferred)

    async def _transfer(self, name: str) -> uuid.UUID:
        """A transfer: the account of that full name, or the only asset or liability account
        whose last level is that name, else a new `Assets:<name>`."""
        found = await self._existing(name)
        if found is not None:
            return found
        suffix = ":" + name
        rows = (
            await self.session.scalars(
                select(Account.id).where(
                    Account.ledger_id == self.ledger_id,
                    Account.type.in_((AccountType.ASSET, AccountType.LIABILITY)),
                    func.substr(Account.name, func.length(Account.name) - len(suffix) + 1)
                    == suffix,
                )
            )
        ).all()
        if len(rows) == 1:
            return rows[0]
        return await self.named(f"Assets:{name}")

    async def _existing(self, name: str) -> uuid.UUID | None:
        if name in self.by_name:
            return self.by_name[name]
        found = await self.session.scalar(
            select(Account.id).where(Account.ledger_id == self.ledger_id, Account.name == name)
        )
        if found is not None:
            self.by_name[name] = found
        return found

    async def named(self, name: str) -> uuid.UUID:
        """The account of that name, created (and audited) when missing."""
        found = await self._existing(name)
        if found is not None:
            return found
        try:
            check_name(name)
        except Unprocessable as exc:
            raise Unprocessable(f"Counter-account {name!r}: {exc.detail}") from exc
        account = await create_account(
            self.session,
            self.ledger_id,
            user_id=self.user_id,
            name=name,
            type_=None,
            allowed_commodities=None,
            opened_on=None,
            closed_on=None,
            note="Created by a statement import",
        )
        self.by_name[name] = account.id
        return account.id
