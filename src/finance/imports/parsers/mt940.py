"""SWIFT MT940 statements, read with the mt-940 package (every fix of its Options switched on)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import mt940
from mt940.models import Transactions

from finance.imports.statement import InvalidFile, Statement, StatementLine, clean_text

_TAG_61 = re.compile(r"^:61:", re.MULTILINE)
_TAG_25 = re.compile(r"^:25:(.*)$", re.MULTILINE)
_NO_REFERENCE = {"", "NONREF", "NOTPROVIDED"}


def parse_mt940(text: str) -> Statement:
    accounts = {match.group(1).strip() for match in _TAG_25.finditer(text)}
    if len(accounts) > 1:
        raise InvalidFile(
            f"the file holds statements of {len(accounts)} accounts "
            f"({', '.join(sorted(accounts))}); import one account at a time"
        )
    if ":20:" not in text:
        raise InvalidFile("not an MT940 statement (no :20: field)")
    transactions = Transactions(options=mt940.Options.all())
    try:
        transactions.parse(text)
    except Exception as exc:  # the library raises ValueError, KeyError, RuntimeError...
        raise InvalidFile(f"not a readable MT940 file: {str(exc)[:300]}") from exc
    line_numbers = [text.count("\n", 0, match.start()) + 1 for match in _TAG_61.finditer(text)]
    currency = transactions.currency
    entries = [entry for entry in transactions if entry.data.get("amount") is not None]
    return Statement(
        lines=_lines(entries, line_numbers, currency),
        currency=currency,
        account_number=next(iter(accounts), None),
    )


def _lines(
    entries: list[Any], line_numbers: list[int], currency: str | None
) -> Iterator[StatementLine]:
    for index, entry in enumerate(entries, start=1):
        position = f":61: {index}"
        if len(line_numbers) == len(entries):
            position += f" (line {line_numbers[index - 1]})"
        yield _line(entry.data, position, currency)


def _line(data: dict[str, Any], position: str, currency: str | None) -> StatementLine:
    amount = data["amount"]
    booked = data.get("entry_date") or data.get("date")
    if not isinstance(booked, dt.date):
        raise InvalidFile("the :61: field has no date", position=position)
    details = data.get("transaction_details") or ""
    payee = data.get("applicant_name")
    purpose = data.get("purpose") or data.get("posting_text")
    narration = purpose or details or None
    if payee is None and details and not purpose:
        payee, _, rest = details.partition("\n")
        narration = rest or None
    return StatementLine(
        position=position,
        date=dt.date(booked.year, booked.month, booked.day),
        amount=amount.amount,
        payee=clean_text(payee),
        narration=clean_text(narration, 2000),
        unique_id=_reference(data.get("bank_reference")),
        reference=_reference(data.get("customer_reference"))
        or _reference(data.get("end_to_end_reference")),
        currency=amount.currency or data.get("currency") or currency,
    )


def _reference(value: Any) -> str | None:
    if not isinstance(value, str) or value.strip().upper() in _NO_REFERENCE:
        return None
    return clean_text(value, 255)
