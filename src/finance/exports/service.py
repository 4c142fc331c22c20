"""A ledger out as Beancount, ledger (hledger, ledger-cli), CSV or JSON, as a stream of text.

The export reads in one snapshot (REPEATABLE READ on PostgreSQL; SQLite's read transaction
is one), transactions in keyset chunks of `CHUNK` by (date, id) with their postings, so a
ledger of any size streams in the memory of one chunk.

- beancount: options, commodities (with their precision as metadata), open and close,
  prices, transactions with costs `{}` and prices `@`, tags, links, metadata and memos, and
  balance assertions. `bean-check` accepts it; imported again it gives the same balances.
  Account names are made Beancount-valid (each level starts with a capital or a digit and
  holds letters, digits and dashes).
- ledger: the journal format hledger and ledger-cli share. A cost or price is written as
  the posting's `@` price (the cost when there is one: it is what the posting weighs), so
  both tools balance every transaction as this service does; balance assertions, whose
  meaning differs between the tools, are written as comments.
- csv: one row per posting, every field of its transaction repeated.
- json: everything (ledger, commodities, accounts, prices, assertions, transactions with
  their postings), for backups and other programs.

With `date_from`, each account's balance before that date opens the export as one
transaction per account and commodity (per lot, for holdings at cost) against
`Equity:Opening-Balances`, so balances and assertions still hold.
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
import io
import json
import re
import unicodedata
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from finance.accounts.service import descendants_of
from finance.db import one_snapshot
from finance.errors import NotFound, Unprocessable
from finance.models import (
    Account,
    BalanceAssertion,
    Commodity,
    Ledger,
    Posting,
    Price,
    Transaction,
    TransactionStatus,
)
from finance.models.base import utcnow

CHUNK = 2000
OPENING_ACCOUNT = "Equity:Opening-Balances"


class ExportFormat(enum.StrEnum):
    BEANCOUNT = "beancount"
    LEDGER = "ledger"
    CSV = "csv"
    JSON = "json"


MEDIA_TYPES = {
    ExportFormat.BEANCOUNT: "text/plain; charset=utf-8",
    ExportFormat.LEDGER: "text/plain; charset=utf-8",
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.JSON: "application/json",
}
EXTENSIONS = {
    ExportFormat.BEANCOUNT: "beancount",
    ExportFormat.LEDGER: "journal",
    ExportFormat.CSV: "csv",
    ExportFormat.JSON: "json",
}


@dataclass(frozen=True)
class ExportFilter:
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    account_id: uuid.UUID | None = None
    account: str | None = None  # a path: the accounts of that name and below it


async def check_filter(session: AsyncSession, ledger_id: uuid.UUID, filters: ExportFilter) -> None:
    """Refuse a bad filter before the first byte is sent (afterwards there is no status)."""
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        raise Unprocessable("from must be on or before to")
    if filters.account_id is not None:
        found = await session.get(Account, (ledger_id, filters.account_id))
        if found is None:
            raise NotFound("No such account")
    if filters.account is not None:
        path = filters.account
        below = await session.scalar(
            select(Account.id)
            .where(
                Account.ledger_id == ledger_id,
                or_(Account.name == path, descendants_of(path)),
            )
            .limit(1)
        )
        if below is None:
            raise NotFound(f"No account named {path} or below it")


def amount_text(minor: int, precision: int) -> str:
    """Integer minor units as a plain decimal with `precision` places, exactly."""
    if precision == 0:
        return str(minor)
    whole, fraction = divmod(abs(minor), 10**precision)
    return f"{'-' if minor < 0 else ''}{whole}.{fraction:0{precision}d}"


def rate_text(value: Decimal) -> str:
    return f"{value:f}"


# --- what is read ----------------------------------------------------------------------------


@dataclass
class _Posting:
    account_id: uuid.UUID
    commodity_id: uuid.UUID
    amount: int
    cost: Decimal | None
    cost_commodity_id: uuid.UUID | None
    price: Decimal | None
    price_commodity_id: uuid.UUID | None
    memo: str | None


@dataclass
class _Transaction:
    id: uuid.UUID
    date: dt.date
    payee: str | None
    narration: str | None
    tags: list[str]
    links: list[str]
    meta: dict[str, Any]
    status: TransactionStatus
    external_id: str | None
    postings: list[_Posting] = field(default_factory=list)
    opening: bool = False


@dataclass
class _Books:
    """Everything but the transactions: small, read first."""

    ledger: Ledger
    commodities: dict[uuid.UUID, Commodity]
    accounts: dict[uuid.UUID, Account]
    prices: list[Price]
    assertions: list[BalanceAssertion]
    subtree: set[uuid.UUID] | None
    first_date: dt.date
    filters: ExportFilter


class _Reader:
    def __init__(self, session: AsyncSession, ledger_id: uuid.UUID, filters: ExportFilter) -> None:
        self.session = session
        self.ledger_id = ledger_id
        self.filters = filters

    async def books(self) -> _Books:
        session, ledger_id, filters = self.session, self.ledger_id, self.filters
        ledger = await session.get(Ledger, ledger_id)
        if ledger is None:
            raise NotFound("No such ledger")
        commodities = {
            row.id: row
            for row in await session.scalars(
                select(Commodity).where(Commodity.ledger_id == ledger_id).order_by(Commodity.code)
            )
        }
        accounts = {
            row.id: row
            for row in await session.scalars(
                select(Account).where(Account.ledger_id == ledger_id).order_by(Account.name)
            )
        }
        subtree = None
        top = accounts[filters.account_id].name if filters.account_id else filters.account
        if top is not None:
            subtree = {
                account.id
                for account in accounts.values()
                if account.name == top or account.name.startswith(top + ":")
            }
        prices = list(
            await session.scalars(
                select(Price)
                .where(Price.ledger_id == ledger_id, *self._dates(Price.date))
                .order_by(Price.date, Price.id)
            )
        )
        assertions_query = select(BalanceAssertion).where(
            BalanceAssertion.ledger_id == ledger_id, *self._dates(BalanceAssertion.date)
        )
        if subtree is not None:
            assertions_query = assertions_query.where(BalanceAssertion.account_id.in_(subtree))
        assertions = list(await session.scalars(assertions_query.order_by(BalanceAssertion.date)))
        first = await session.scalar(
            select(func.min(Posting.date)).where(
                Posting.ledger_id == ledger_id, *self._dates(Posting.date)
            )
        )
        candidates = [
            first,
            filters.date_from,
            *(price.date for price in prices),
            *(assertion.date for assertion in assertions),
        ]
        dates = [date for date in candidates if date is not None]
        return _Books(
            ledger=ledger,
            commodities=commodities,
            accounts=accounts,
            prices=prices,
            assertions=assertions,
            subtree=subtree,
            first_date=min(dates) if dates else utcnow().date(),
            filters=filters,
        )

    def _dates(self, column: Any) -> list[Any]:
        conditions = []
        if self.filters.date_from is not None:
            conditions.append(column >= self.filters.date_from)
        if self.filters.date_to is not None:
            conditions.append(column <= self.filters.date_to)
        return conditions

    async def opening(self, books: _Books) -> list[_Transaction]:
        """The balances before `date_from`, one transaction per account, commodity and lot."""
        start = self.filters.date_from
        if start is None:
            return []
        query = (
            select(
                Posting.account_id,
                Posting.commodity_id,
                Posting.cost,
                Posting.cost_commodity_id,
                func.sum(Posting.amount),
            )
            .where(Posting.ledger_id == self.ledger_id, Posting.date < start)
            .group_by(
                Posting.account_id, Posting.commodity_id, Posting.cost, Posting.cost_commodity_id
            )
        )
        if books.subtree is not None:
            query = query.where(Posting.account_id.in_(books.subtree))
        rows = sorted(
            (
                (books.accounts[account].name, account, commodity, cost, cost_commodity, int(total))
                for account, commodity, cost, cost_commodity, total in await self.session.execute(
                    query
                )
                if total
            ),
            key=lambda row: (row[0], books.commodities[row[2]].code, row[3] or Decimal(0)),
        )
        return [
            _Transaction(
                id=uuid.uuid4(),
                date=start,
                payee=None,
                narration=f"Opening balance of {name}",
                tags=[],
                links=[],
                meta={},
                status=TransactionStatus.CLEARED,
                external_id=None,
                postings=[
                    _Posting(account, commodity, total, cost, cost_commodity, None, None, None)
                ],
                opening=True,
            )
            for name, account, commodity, cost, cost_commodity, total in rows
        ]

    async def transactions(self, books: _Books) -> AsyncIterator[list[_Transaction]]:
        """The filtered transactions by (date, id), a chunk at a time, with their postings."""
        session, ledger_id = self.session, self.ledger_id
        conditions = [Transaction.ledger_id == ledger_id, *self._dates(Transaction.date)]
        if books.subtree is not None:
            conditions.append(
                exists().where(
                    Posting.ledger_id == Transaction.ledger_id,
                    Posting.transaction_id == Transaction.id,
                    Posting.account_id.in_(books.subtree),
                )
            )
        after: tuple[dt.date, uuid.UUID] | None = None
        while True:
            query = select(Transaction).where(*conditions)
            if after is not None:
                query = query.where(
                    or_(
                        Transaction.date > after[0],
                        and_(Transaction.date == after[0], Transaction.id > after[1]),
                    )
                )
            rows = list(
                await session.scalars(query.order_by(Transaction.date, Transaction.id).limit(CHUNK))
            )
            if not rows:
                return
            chunk = {
                row.id: _Transaction(
                    id=row.id,
                    date=row.date,
                    payee=row.payee,
                    narration=row.narration,
                    tags=list(row.tags or []),
                    links=list(row.links or []),
                    meta=dict(row.meta or {}),
                    status=row.status,
                    external_id=row.external_id,
                )
                for row in rows
            }
            postings = await session.execute(
                select(
                    Posting.transaction_id,
                    Posting.account_id,
                    Posting.commodity_id,
                    Posting.amount,
                    Posting.cost,
                    Posting.cost_commodity_id,
                    Posting.price,
                    Posting.price_commodity_id,
                    Posting.memo,
                )
                .where(Posting.ledger_id == ledger_id, Posting.transaction_id.in_(chunk))
                .order_by(Posting.transaction_id, Posting.position)
            )
            for row in postings:
                chunk[row.transaction_id].postings.append(
                    _Posting(
                        row.account_id,
                        row.commodity_id,
                        row.amount,
                        row.cost,
                        row.cost_commodity_id,
                        row.price,
                        row.price_commodity_id,
                        row.memo,
                    )
                )
            yield list(chunk.values())
            session.expunge_all()  # keep the identity map from growing with the export
            after = (rows[-1].date, rows[-1].id)


# --- writers ---------------------------------------------------------------------------------


class _Writer:
    """Turns the books and chunks of transactions into text."""

    def __init__(self, books: _Books) -> None:
        self.books = books

    def code(self, commodity_id: uuid.UUID) -> str:
        return self.books.commodities[commodity_id].code

    def units(self, posting: _Posting) -> str:
        commodity = self.books.commodities[posting.commodity_id]
        return amount_text(posting.amount, commodity.precision)

    def head(self) -> str:
        raise NotImplementedError

    def transactions(self, chunk: Sequence[_Transaction]) -> str:
        raise NotImplementedError

    def tail(self) -> str:
        return ""


_BEANCOUNT_LEVEL = re.compile(r"[^\w-]|_")
_BEANCOUNT_META_KEY = re.compile(r"[^a-zA-Z0-9_-]")
_BEANCOUNT_LABEL = re.compile(r"[^A-Za-z0-9_/.-]")


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _BeancountWriter(_Writer):
    def __init__(self, books: _Books) -> None:
        super().__init__(books)
        self.names = _unique(
            {account.id: _beancount_name(account.name) for account in books.accounts.values()}
        )
        self.assertions = sorted(books.assertions, key=lambda a: a.date)

    def head(self) -> str:
        books = self.books
        first = books.first_date.isoformat()
        out = [
            f"; Exported from Finance on {utcnow().date().isoformat()}",
            f'option "title" {_quoted(books.ledger.name)}',
            f'option "operating_currency" {_quoted(books.ledger.base_currency)}',
            "",
        ]
        for commodity in books.commodities.values():
            out.append(f"{first} commodity {commodity.code}")
            if commodity.name:
                out.append(f"  name: {_quoted(commodity.name)}")
            out.append(f"  precision: {commodity.precision}")
        out.append("")
        opening_used = False
        for account in books.accounts.values():
            opened = account.opened_on or books.first_date
            currencies = (
                " " + ",".join(account.allowed_commodities) if account.allowed_commodities else ""
            )
            out.append(f"{opened.isoformat()} open {self.names[account.id]}{currencies}")
            opening_used = opening_used or account.name == OPENING_ACCOUNT
        if not opening_used:
            out.append(f"{books.first_date.isoformat()} open {OPENING_ACCOUNT}")
        out.append("")
        for price in books.prices:
            out.append(
                f"{price.date.isoformat()} price {self.code(price.commodity_id)} "
                f"{rate_text(price.rate)} {self.code(price.quote_commodity_id)}"
            )
        for assertion in self.assertions:
            commodity = books.commodities[assertion.commodity_id]
            out.append(
                f"{assertion.date.isoformat()} balance {self.names[assertion.account_id]} "
                f"{amount_text(assertion.amount, commodity.precision)} {commodity.code}"
            )
        out.append("")
        return "\n".join(out) + "\n"

    def transactions(self, chunk: Sequence[_Transaction]) -> str:
        out: list[str] = []
        for transaction in chunk:
            flag = "!" if transaction.status == TransactionStatus.PENDING else "*"
            words = [transaction.date.isoformat(), flag]
            if transaction.payee is not None:
                words.append(_quoted(transaction.payee))
            words.append(_quoted(transaction.narration or ""))
            words += ["#" + _BEANCOUNT_LABEL.sub("-", tag) for tag in transaction.tags] + [
                "^" + _BEANCOUNT_LABEL.sub("-", link) for link in transaction.links
            ]
            out.append(" ".join(words))
            for key, value in transaction.meta.items():
                if value is None:
                    continue
                out.append(f"  {_meta_key(key)}: {_meta_value(value)}")
            for posting in transaction.postings:
                units = f"{self.units(posting)} {self.code(posting.commodity_id)}"
                line = f"  {self.names[posting.account_id]}  {units}"
                if posting.cost is not None and posting.cost_commodity_id is not None:
                    line += f" {{{rate_text(posting.cost)} {self.code(posting.cost_commodity_id)}}}"
                if posting.price is not None and posting.price_commodity_id is not None:
                    line += f" @ {rate_text(posting.price)} {self.code(posting.price_commodity_id)}"
                out.append(line)
                if posting.memo:
                    out.append(f"    memo: {_quoted(posting.memo)}")
            if transaction.opening:
                out.append(f"  {self.opening_name()}")
            out.append("")
        return "\n".join(out) + "\n"

    def opening_name(self) -> str:
        for account in self.books.accounts.values():
            if account.name == OPENING_ACCOUNT:
                return self.names[account.id]
        return OPENING_ACCOUNT

    def tail(self) -> str:
        books = self.books
        out = []
        for account in books.accounts.values():
            closed = account.closed_on
            to = books.filters.date_to
            if closed is None or (to is not None and closed > to):
                continue
            out.append(f"{closed.isoformat()} close {self.names[account.id]}")
        return "\n".join(out) + ("\n" if out else "")


def _beancount_name(name: str) -> str:
    levels = []
    for index, level in enumerate(name.split(":")):
        clean = _BEANCOUNT_LEVEL.sub("-", unicodedata.normalize("NFC", level.strip())).strip("-")
        clean = clean or "X"
        if index > 0 and not (clean[0].isdigit() or clean[0].isupper()):
            clean = clean[0].upper() + clean[1:] if clean[0].isalpha() else "X" + clean
        levels.append(clean)
    return ":".join(levels)


def _unique(names: dict[uuid.UUID, str]) -> dict[uuid.UUID, str]:
    """Two accounts whose names clean to the same text get `-2`, `-3`... on the second."""
    seen: dict[str, int] = {}
    unique = {}
    for account_id, name in names.items():
        count = seen.get(name, 0) + 1
        seen[name] = count
        unique[account_id] = name if count == 1 else f"{name}-{count}"
    return unique


def _meta_key(key: str) -> str:
    clean = _BEANCOUNT_META_KEY.sub("-", key)
    return clean if clean[:1].islower() else "x" + clean


def _meta_value(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    return _quoted(str(value))


class _LedgerWriter(_Writer):
    """The journal format of hledger and ledger-cli."""

    def head(self) -> str:
        books = self.books
        out = [
            f"; Exported from Finance on {utcnow().date().isoformat()}: "
            f"{_one_line(books.ledger.name)}, base currency {books.ledger.base_currency}",
            "",
        ]
        out += [f"account {_ledger_name(account.name)}" for account in books.accounts.values()]
        out.append("")
        for price in books.prices:
            out.append(
                f"P {price.date.isoformat()} {_symbol(self.code(price.commodity_id))} "
                f"{rate_text(price.rate)} {_symbol(self.code(price.quote_commodity_id))}"
            )
        for assertion in books.assertions:
            commodity = books.commodities[assertion.commodity_id]
            out.append(
                f"; balance assertion: {_ledger_name(books.accounts[assertion.account_id].name)} "
                f"(and below) was {amount_text(assertion.amount, commodity.precision)} "
                f"{commodity.code} at the start of {assertion.date.isoformat()}"
            )
        out.append("")
        return "\n".join(out) + "\n"

    def transactions(self, chunk: Sequence[_Transaction]) -> str:
        out: list[str] = []
        for transaction in chunk:
            flag = "!" if transaction.status == TransactionStatus.PENDING else "*"
            description = " | ".join(
                _one_line(text) for text in (transaction.payee, transaction.narration) if text
            )
            head = f"{transaction.date.isoformat()} {flag} {description}".rstrip()
            labels = [f"{tag}:" for tag in transaction.tags]
            if labels:
                head += "  ; " + ", ".join(labels)
            out.append(head)
            for posting in transaction.postings:
                account = _ledger_name(self.books.accounts[posting.account_id].name)
                units = f"{self.units(posting)} {_symbol(self.code(posting.commodity_id))}"
                line = f"    {account}  {units}"
                rate, rate_commodity = (
                    (posting.cost, posting.cost_commodity_id)
                    if posting.cost is not None
                    else (posting.price, posting.price_commodity_id)
                )
                if rate is not None and rate_commodity is not None:
                    line += f" @ {rate_text(rate)} {_symbol(self.code(rate_commodity))}"
                if posting.memo:
                    line += f"  ; {_one_line(posting.memo)}"
                out.append(line)
            if transaction.opening:
                out.append(f"    {OPENING_ACCOUNT}")
            out.append("")
        return "\n".join(out) + "\n"


def _one_line(text: str) -> str:
    return " ".join(text.replace(";", ",").split())


def _ledger_name(name: str) -> str:
    return " ".join(name.split())


def _symbol(code: str) -> str:
    return code if code.isalpha() else f'"{code}"'


CSV_COLUMNS = [
    "transaction_id",
    "date",
    "status",
    "payee",
    "narration",
    "tags",
    "links",
    "external_id",
    "meta",
    "posting",
    "account",
    "amount",
    "commodity",
    "cost",
    "cost_commodity",
    "price",
    "price_commodity",
    "memo",
]


class _CsvWriter(_Writer):
    def head(self) -> str:
        return self._rows([CSV_COLUMNS])

    def transactions(self, chunk: Sequence[_Transaction]) -> str:
        rows = []
        for transaction in chunk:
            shared = [
                str(transaction.id) if not transaction.opening else "",
                transaction.date.isoformat(),
                transaction.status.value,
                transaction.payee or "",
                transaction.narration or "",
                " ".join(transaction.tags),
                " ".join(transaction.links),
                transaction.external_id or "",
                json.dumps(transaction.meta, sort_keys=True) if transaction.meta else "",
            ]
            for position, posting in enumerate(transaction.postings, start=1):
                rows.append(
                    [
                        *shared,
                        str(position),
                        self.books.accounts[posting.account_id].name,
                        self.units(posting),
                        self.code(posting.commodity_id),
                        rate_text(posting.cost) if posting.cost is not None else "",
                        self._code_or_blank(posting.cost_commodity_id),
                        rate_text(posting.price) if posting.price is not None else "",
                        self._code_or_blank(posting.price_commodity_id),
                        posting.memo or "",
                    ]
                )
        return self._rows(rows)

    def _code_or_blank(self, commodity_id: uuid.UUID | None) -> str:
        return self.code(commodity_id) if commodity_id is not None else ""

    @staticmethod
    def _rows(rows: Iterable[list[str]]) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        return buffer.getvalue()


class _JsonWriter(_Writer):
    def __init__(self, books: _Books) -> None:
        super().__init__(books)
        self.first = True

    def head(self) -> str:
        books = self.books
        ledger = books.ledger
        parts = {
            "format": "finance-export",
            "version": 1,
            "exported_at": utcnow().isoformat(),
            "ledger": {
                "id": str(ledger.id),
                "name": ledger.name,
                "base_currency": ledger.base_currency,
            },
            "filter": {
                "from": _iso(books.filters.date_from),
                "to": _iso(books.filters.date_to),
                "account_id": str(books.filters.account_id) if books.filters.account_id else None,
                "account": books.filters.account,
            },
            "commodities": [
                {"code": c.code, "name": c.name, "precision": c.precision}
                for c in books.commodities.values()
            ],
            "accounts": [
                {
                    "id": str(a.id),
                    "name": a.name,
                    "type": a.type.value,
                    "allowed_commodities": a.allowed_commodities,
                    "opened_on": _iso(a.opened_on),
                    "closed_on": _iso(a.closed_on),
                    "note": a.note,
                }
                for a in books.accounts.values()
            ],
            "prices": [
                {
                    "date": p.date.isoformat(),
                    "commodity": self.code(p.commodity_id),
                    "quote_commodity": self.code(p.quote_commodity_id),
                    "amount": rate_text(p.rate),
                }
                for p in books.prices
            ],
            "assertions": [
                {
                    "account": books.accounts[a.account_id].name,
                    "date": a.date.isoformat(),
                    "amount": amount_text(a.amount, books.commodities[a.commodity_id].precision),
                    "commodity": self.code(a.commodity_id),
                }
                for a in books.assertions
            ],
        }
        text = json.dumps(parts, ensure_ascii=False, indent=None)
        return text[:-1] + ', "transactions": [\n'

    def transactions(self, chunk: Sequence[_Transaction]) -> str:
        items = []
        for transaction in chunk:
            postings = [self._posting(posting) for posting in transaction.postings]
            if transaction.opening:
                postings.append({"account": OPENING_ACCOUNT, "amount": None})
            item = {
                "id": None if transaction.opening else str(transaction.id),
                "date": transaction.date.isoformat(),
                "status": transaction.status.value,
                "payee": transaction.payee,
                "narration": transaction.narration,
                "tags": transaction.tags,
                "links": transaction.links,
                "meta": transaction.meta,
                "external_id": transaction.external_id,
                "opening_balance": transaction.opening,
                "postings": postings,
            }
            items.append(json.dumps(item, ensure_ascii=False))
        text = ",\n".join(items)
        if items and not self.first:
            text = ",\n" + text
        self.first = self.first and not items
        return text

    def _posting(self, posting: _Posting) -> dict[str, Any]:
        return {
            "account": self.books.accounts[posting.account_id].name,
            "amount": self.units(posting),
            "commodity": self.code(posting.commodity_id),
            "cost": _rate(posting.cost, posting.cost_commodity_id, self.code),
            "price": _rate(posting.price, posting.price_commodity_id, self.code),
            "memo": posting.memo,
        }

    def tail(self) -> str:
        return "\n]}\n"


def _rate(
    value: Decimal | None, commodity_id: uuid.UUID | None, code: Callable[[uuid.UUID], str]
) -> dict[str, str] | None:
    if value is None or commodity_id is None:
        return None
    return {"amount": rate_text(value), "commodity": code(commodity_id)}


def _iso(date: dt.date | None) -> str | None:
    return date.isoformat() if date else None


_WRITERS: dict[ExportFormat, type[_Writer]] = {
    ExportFormat.BEANCOUNT: _BeancountWriter,
    ExportFormat.LEDGER: _LedgerWriter,
    ExportFormat.CSV: _CsvWriter,
    ExportFormat.JSON: _JsonWriter,
}


async def export(
    sessions: async_sessionmaker[AsyncSession],
    ledger_id: uuid.UUID,
    export_format: ExportFormat,
    filters: ExportFilter,
) -> AsyncIterator[bytes]:
    """The export as UTF-8 chunks, read in one snapshot from a session of its own."""
    async with sessions() as session:
        await one_snapshot(session)
        reader = _Reader(session, ledger_id, filters)
        books = await reader.books()
        writer = _WRITERS[export_format](books)
        yield writer.head().encode()
        opening = await reader.opening(books)
        if opening:
            yield writer.transactions(opening).encode()
        async for chunk in reader.transactions(books):
            yield writer.transactions(chunk).encode()
        yield writer.tail().encode()
