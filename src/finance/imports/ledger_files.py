"""Beancount files into a ledger, empty or not: accounts, commodities, prices, transactions
with costs and prices, balance assertions, tags, links and metadata.

The file is read with Beancount's own parser and booked with its own booking (lots matched,
missing amounts interpolated) and `pad` expansion, exactly as `bean-check` reads it. It is
never given to Beancount's loader: `include` would read files of this server's disk and
`plugin` would import Python modules, so an `include` is refused and plugins are not run
(they are listed in the batch's options).

Accounts and commodities the file uses are created when missing: a commodity gets the most
decimals the file writes its amounts with (at least an ISO currency's own). Each directive
is a line of the batch: a transaction already imported (the same date, payee, narration and
postings, counted by occurrence) is a duplicate, and so are an existing account, price or
assertion, so importing the same file twice creates nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import anyio
from beancount.core import data as bean
from beancount.ops import pad
from beancount.parser import booking, parser
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from finance.accounts.service import ROOTS, create_account, update_account
from finance.balances.schemas import AssertionIn
from finance.balances.service import create_assertion
from finance.commodities.service import create_commodity, iso_currency
from finance.errors import AppError, Conflict, PayloadTooLarge
from finance.imports.identity import Identities, find_claims, serialize
from finance.imports.outcomes import CHUNK, ImportRequest, Recorder, reason_of
from finance.imports.statement import InvalidFile, check_line_lengths
from finance.models import (
    Account,
    BalanceAssertion,
    Commodity,
    ImportBatch,
    Ledger,
    LineOutcome,
    TransactionStatus,
)
from finance.money import MAX_PRECISION, decimals_of, format_decimal
from finance.prices.schemas import PriceIn
from finance.prices.service import create_price
from finance.transactions.schemas import MAX_RATE_DECIMALS, TransactionIn
from finance.transactions.service import (
    Lookups,
    PreparedTransaction,
    insert_transactions,
    prepare_transaction,
)

Progress = Callable[[int], None]
_HIDDEN_META = {"filename", "lineno"}
_MAX_ERRORS = 20
_FLAGS = {"!": TransactionStatus.PENDING}


def load(data: bytes) -> tuple[list[Any], dict[str, Any]]:
    """Parse, book and pad like `bean-check`; any error refuses the whole file."""
    check_line_lengths(data)
    entries, errors, options = parser.parse_string(data, report_filename="<import>")
    if options.get("include"):
        raise InvalidFile(
            "`include` is not supported: import each file, or concatenate them",
            position=f"line {_include_line(data)}",
        )
    _refuse(errors)
    entries.sort(key=bean.entry_sortkey)
    entries, errors = booking.book(entries, options)  # type: ignore[no-untyped-call]
    _refuse(errors)
    entries, errors = pad.pad(entries, options)  # type: ignore[no-untyped-call]
    _refuse(errors)
    return entries, options


def _refuse(errors: list[Any]) -> None:
    if not errors:
        return
    details = [
        {"line": (error.source or {}).get("lineno"), "message": str(error.message)[:500]}
        for error in errors[:_MAX_ERRORS]
    ]
    first = details[0]
    raise InvalidFile(
        f"{first['message']} ({len(errors)} error{'s' if len(errors) > 1 else ''} in the file)",
        position=f"line {first['line']}" if first["line"] else None,
        errors=details,
    )


def _include_line(data: bytes) -> int:
    for number, line in enumerate(data.splitlines(), start=1):
        if line.lstrip().startswith(b"include"):
            return number
    return 1


async def import_beancount(
    session: AsyncSession,
    ledger: Ledger,
    user_id: uuid.UUID | None,
    batch: ImportBatch,
    data: bytes,
    request: ImportRequest,
    *,
    max_lines: int,
    progress: Progress | None,
) -> Recorder:
    entries, options = await anyio.to_thread.run_sync(load, data)
    if len(entries) > max_lines:
        raise PayloadTooLarge(
            f"The file has {len(entries)} directives, over the limit of {max_lines} for one "
            "import; split it"
        )
    await serialize(session, ledger.id)
    plugins = [name for name, _config in options.get("plugin", [])]
    batch.options = {"plugins_not_run": plugins} if plugins else {}
    work = _LedgerImport(session, ledger, user_id, batch, request, options)
    await work.run(entries, progress)
    batch.options = {**batch.options, **work.created}
    return work.recorder


class _LedgerImport:
    def __init__(
        self,
        session: AsyncSession,
        ledger: Ledger,
        user_id: uuid.UUID | None,
        batch: ImportBatch,
        request: ImportRequest,
        options: dict[str, Any],
    ) -> None:
        self.session = session
        self.ledger_id = ledger.id
        self.user_id = user_id
        self.recorder = Recorder(session, batch, request.dry_run)
        self.dry_run = request.dry_run
        self.lookups = Lookups(ledger.id, user_id)
        self.identities = Identities("beancount")
        self.roots = {options[f"name_{key}"]: root for key, root in _ROOT_OPTIONS.items()}
        self.accounts: dict[str, Account] = {}
        self.created: dict[str, list[str]] = {"created_accounts": [], "created_commodities": []}
        self.pending: list[tuple[dict[str, Any], PreparedTransaction]] = []
        self.rows: list[dict[str, Any]] = []
        self.seq = 0
        self.identity: dict[int, uuid.UUID] = {}
        self.claimed: set[uuid.UUID] = set()
        self.new_commodities: set[str] = set()

    async def run(self, entries: list[Any], progress: Progress | None) -> None:
        await self.recorder.start()
        await self._load_accounts()
        await self._commodities(entries)
        await self._find_claims(entries)
        for number, entry in enumerate(entries, start=1):
            self.seq += 1
            row = await self._entry(entry)
            row["seq"] = self.seq
            row["position"] = f"line {entry.meta.get('lineno', '?')}"
            if row["outcome"] is not None:  # else a transaction waiting for its bulk insert
                self.rows.append(row)
            if len(self.rows) + len(self.pending) >= CHUNK:
                await self._flush()
                if progress is not None:
                    progress(number)
        await self._flush()
        if progress is not None:
            progress(len(entries))

    async def _flush(self) -> None:
        """Write the waiting transactions, then every waiting line record, in source order."""
        if self.pending:
            prepared = [item for _, item in self.pending]
            ids: list[uuid.UUID | None] = [None] * len(prepared)
            if not self.dry_run:
                ids = list(
                    await insert_transactions(self.session, self.ledger_id, self.user_id, prepared)
                )
            for (row, _), transaction_id in zip(self.pending, ids, strict=True):
                row["outcome"] = LineOutcome.NEW
                row["transaction_id"] = transaction_id
                self.rows.append(row)
            self.pending = []
        self.rows.sort(key=lambda row: row["seq"])
        await self.recorder.write(self.rows)
        self.rows = []

    async def _entry(self, entry: Any) -> dict[str, Any]:
        try:
            if isinstance(entry, bean.Transaction):
                return await self._transaction(entry)
            if isinstance(entry, bean.Open):
                return await self._open(entry)
            if isinstance(entry, bean.Close):
                await self._flush()  # the account's last postings must be there
                return await self._close(entry)
            if isinstance(entry, bean.Balance):
                await self._flush()
                return await self._balance(entry)
            if isinstance(entry, bean.Commodity):
                created = entry.currency in self.new_commodities
                return _row(
                    entry,
                    LineOutcome.NEW if created else LineOutcome.DUPLICATE,
                    f"commodity {entry.currency}",
                )
            if isinstance(entry, bean.Price):
                return await self._price(entry)
            if isinstance(entry, bean.Pad):
                return _row(entry, LineOutcome.SKIPPED, "booked as the padding transaction")
        except (AppError, ValidationError) as exc:
            return _row(entry, LineOutcome.REJECTED, reason_of(exc))
        return _row(entry, LineOutcome.SKIPPED, f"{type(entry).__name__} directives are not kept")

    # --- accounts and commodities ----------------------------------------------------------

    async def _load_accounts(self) -> None:
        found = await self.session.scalars(
            select(Account).where(Account.ledger_id == self.ledger_id)
        )
        self.accounts = {account.name: account for account in found}

    def _name(self, name: str) -> str:
        """The file's account name with its root translated (`option "name_assets"`)."""
        root, _, rest = name.partition(":")
        return f"{self.roots.get(root, root)}:{rest}" if rest else name

    async def _account(
        self,
        name: str,
        *,
        opened_on: dt.date | None = None,
        currencies: list[str] | None = None,
    ) -> tuple[Account, bool]:
        """The account of that name, created when missing; and whether it was created."""
        name = self._name(name)
        if name in self.accounts:
            return self.accounts[name], False
        account = await create_account(
            self.session,
            self.ledger_id,
            user_id=self.user_id,
            name=name,
            type_=None,
            allowed_commodities=currencies or None,
            opened_on=opened_on,
            closed_on=None,
            note=None,
        )
        self.accounts[name] = account
        if opened_on is None:
            self.created["created_accounts"].append(name)
        return account, True

    async def _commodities(self, entries: list[Any]) -> None:
        """Create, before anything else, every commodity the file names that the ledger lacks,
        with as many decimals as the file writes its amounts with."""
        decimals: dict[str, int] = defaultdict(int)
        declared: set[str] = set()
        for entry in entries:
            for code, number in _amounts(entry):
                decimals[code] = max(decimals[code], decimals_of(number) if number else 0)
            if isinstance(entry, bean.Commodity):
                declared.add(entry.currency)
                given = (entry.meta or {}).get("precision")  # as this service exports it
                if isinstance(given, int | Decimal) and 0 <= given <= MAX_PRECISION:
                    decimals[entry.currency] = max(decimals[entry.currency], int(given))
        codes = sorted(set(decimals) | declared)
        existing = set(
            await self.session.scalars(
                select(Commodity.code).where(
                    Commodity.ledger_id == self.ledger_id, Commodity.code.in_(codes)
                )
            )
        )
        for code in codes:
            if code in existing:
                continue
            iso = iso_currency(code)
            await create_commodity(
                self.session,
                self.ledger_id,
                user_id=self.user_id,
                code=code,
                name=None,
                precision=min(max(decimals[code], iso[0] if iso else 0), MAX_PRECISION),
            )
            self.new_commodities.add(code)
            if code not in declared:
                self.created["created_commodities"].append(code)
        await self.lookups.load_commodities(self.session, codes)

    # --- directives ------------------------------------------------------------------------

    async def _open(self, entry: Any) -> dict[str, Any]:
        _account, created = await self._account(
            entry.account, opened_on=entry.date, currencies=list(entry.currencies or [])
        )
        outcome = LineOutcome.NEW if created else LineOutcome.DUPLICATE
        return _row(entry, outcome, f"open {self._name(entry.account)}")

    async def _close(self, entry: Any) -> dict[str, Any]:
        account, _ = await self._account(entry.account)
        if account.closed_on == entry.date:
            return _row(entry, LineOutcome.DUPLICATE, f"close {account.name}")
        await update_account(
            self.session,
            self.ledger_id,
            account.id,
            user_id=self.user_id,
            changes={"closed_on": entry.date},
        )
        return _row(entry, LineOutcome.NEW, f"close {account.name}")

    async def _balance(self, entry: Any) -> dict[str, Any]:
        account, _ = await self._account(entry.account)
        amount = entry.amount
        commodity = self.lookups.commodities.get(amount.currency)
        row = _row(entry, LineOutcome.NEW, f"balance {account.name}")
        row |= {"amount": amount.number, "commodity": amount.currency}
        if commodity is not None:
            existing = await self.session.scalar(
                select(BalanceAssertion.id).where(
                    BalanceAssertion.ledger_id == self.ledger_id,
                    BalanceAssertion.account_id == account.id,
                    BalanceAssertion.date == entry.date,
                    BalanceAssertion.commodity_id == commodity.id,
                )
            )
            if existing is not None:
                row["outcome"] = LineOutcome.DUPLICATE
                return row
        await create_assertion(
            self.session,
            self.ledger_id,
            self.user_id,
            AssertionIn(
                account_id=account.id,
                date=entry.date,
                amount=format_decimal(amount.number),
                commodity=amount.currency,
            ),
        )
        return row

    async def _price(self, entry: Any) -> dict[str, Any]:
        amount = entry.amount
        row = _row(entry, LineOutcome.NEW, f"price of {entry.currency} in {amount.currency}")
        row |= {"amount": amount.number, "commodity": amount.currency}
        try:
            await create_price(
                self.session,
                self.ledger_id,
                self.user_id,
                PriceIn(
                    date=entry.date,
                    commodity=entry.currency,
                    quote_commodity=amount.currency,
                    amount=_rate(amount.number, amount.currency)["amount"],
                ),
            )
        except Conflict as exc:
            row |= {"outcome": LineOutcome.DUPLICATE, "reason": exc.detail}
        return row

    async def _transaction(self, entry: Any) -> dict[str, Any]:
        postings = []
        automatic = [posting for posting in entry.postings if _automatic(posting)]
        for posting in entry.postings:
            account, _ = await self._account(posting.account)
            units = posting.units
            item: dict[str, Any] = {"account_id": account.id, "commodity": units.currency}
            if not (len(automatic) == 1 and posting is automatic[0]):
                item["amount"] = format_decimal(units.number)
            if posting.cost is not None:
                item["cost"] = _rate(posting.cost.number, posting.cost.currency)
            if posting.price is not None:
                item["price"] = _rate(posting.price.number, posting.price.currency)
            memo = (posting.meta or {}).get("memo")
            if isinstance(memo, str):
                item["memo"] = memo
            postings.append(item)
        first = entry.postings[0].units if entry.postings else None
        row = _row(entry, None, None)
        row |= {
            "payee": entry.payee,
            "narration": entry.narration,
            "amount": first.number if first else None,
            "commodity": first.currency if first else None,
            "identity": self.identity[id(entry)],
        }
        if row["identity"] in self.claimed:
            row["outcome"] = LineOutcome.DUPLICATE
            row["reason"] = "already imported"
            row["identity"] = None
            return row
        data = TransactionIn.model_validate(
            {
                "date": entry.date,
                "payee": entry.payee,
                "narration": entry.narration or None,
                "tags": sorted(entry.tags or ()),
                "links": sorted(entry.links or ()),
                "meta": _meta(entry.meta),
                "status": _FLAGS.get(entry.flag, TransactionStatus.CLEARED),
                "postings": postings,
            }
        )
        prepared = await prepare_transaction(self.session, self.ledger_id, data, self.lookups)
        self.pending.append((row, prepared))
        return row

    async def _find_claims(self, entries: list[Any]) -> None:
        """Number every transaction's fingerprint, and find those an import already claimed."""
        for entry in entries:
            if isinstance(entry, bean.Transaction):
                self.identity[id(entry)] = self.identities.next(_fingerprint(entry))
        identities = list(self.identity.values())
        for start in range(0, len(identities), CHUNK):
            part = identities[start : start + CHUNK]
            self.claimed.update(await find_claims(self.session, self.ledger_id, part))


_ROOT_OPTIONS = {
    "assets": "Assets",
    "liabilities": "Liabilities",
    "equity": "Equity",
    "income": "Income",
    "expenses": "Expenses",
}
assert set(_ROOT_OPTIONS.values()) == set(ROOTS)


def _row(entry: Any, outcome: LineOutcome | None, reason: str | None) -> dict[str, Any]:
    return {
        "outcome": outcome,
        "reason": reason,
        "identity": None,
        "reference": None,
        "date": entry.date,
        "amount": None,
        "commodity": None,
        "payee": None,
        "narration": None,
        "counter_account_id": None,
        "transaction_id": None,
        "candidate_id": None,
    }


def _amounts(entry: Any) -> Iterable[tuple[str, Decimal | None]]:
    """The (commodity, number) pairs written in the file whose decimals set a precision."""
    if isinstance(entry, bean.Transaction):
        for posting in entry.postings:
            if posting.units is not None and not _automatic(posting):
                yield posting.units.currency, posting.units.number
            elif posting.units is not None:
                yield posting.units.currency, None
            if posting.cost is not None:
                yield str(posting.cost.currency), None
            if posting.price is not None:
                yield str(posting.price.currency), None
    elif isinstance(entry, bean.Balance):
        yield entry.amount.currency, entry.amount.number
    elif isinstance(entry, bean.Price):
        yield str(entry.currency), None
        yield str(entry.amount.currency), None
    elif isinstance(entry, bean.Open):
        for code in entry.currencies or ():
            yield code, None


def _automatic(posting: Any) -> bool:
    return bool(posting.meta and posting.meta.get("__automatic__"))


def _rate(number: Decimal, currency: str) -> dict[str, str]:
    """A per-unit cost or price; Beancount divides totals (`{{}}`, `@@`) to 28 digits."""
    if decimals_of(number) > MAX_RATE_DECIMALS:
        number = number.quantize(Decimal(1).scaleb(-MAX_RATE_DECIMALS))
    return {"amount": f"{number:f}", "commodity": currency}


def _meta(meta: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in meta.items():
        if key in _HIDDEN_META or key.startswith("__"):
            continue
        if value is None or isinstance(value, bool | int | str):
            kept[key] = value
        elif isinstance(value, dt.date | Decimal):
            kept[key] = value.isoformat() if isinstance(value, dt.date) else format_decimal(value)
        else:
            kept[key] = str(value)
    return kept


def _fingerprint(entry: Any) -> str:
    parts = [
        entry.date.isoformat(),
        entry.payee or "",
        entry.narration or "",
        *sorted(
            f"{posting.account} {posting.units} {posting.cost} {posting.price}"
            for posting in entry.postings
        ),
    ]
    return "bean:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
