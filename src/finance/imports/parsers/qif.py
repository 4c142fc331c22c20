"""QIF (Quicken Interchange Format): bank, cash and credit-card registers, splits, categories.

Written here rather than taken from a library: the maintained one (quiffen) reads amounts by
deleting every character but digits, `.` and `-` (so `1.234,56` becomes 1.23456), guesses
dates with dateutil, and reports no line numbers. QIF is a line-per-field format; the rules
below are the whole of it that bank exports use.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from finance.imports.statement import (
    InvalidFile,
    Split,
    Statement,
    StatementLine,
    clean_text,
    parse_amount,
)

DateOrder = Literal["mdy", "dmy"]

# Register types that are a list of money movements on one account.
_REGISTERS = {"bank", "cash", "ccard", "oth a", "oth l"}
# Lists that describe things (categories, classes, memorised payees): nothing to import.
_LISTS = {"cat", "class", "memorized", "prices", "security"}
_DATE_PARTS = re.compile(r"^(\d{1,4})[/.\-](\d{1,2})[/.\-'](\d{1,4})$")


@dataclass
class _Record:
    start: int
    fields: dict[str, str] = field(default_factory=dict)
    splits: list[dict[str, str]] = field(default_factory=list)


def parse_qif(text: str, *, date_order: DateOrder = "mdy") -> Statement:
    return Statement(lines=_lines(text, date_order), options={"date_order": date_order})


def _lines(text: str, date_order: DateOrder) -> Iterator[StatementLine]:
    section: str | None = None
    account: str | None = None
    accounts_with_lines: set[str | None] = set()
    record: _Record | None = None
    count = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("!"):
            header = line[1:].lower()
            if header.startswith("type:"):
                section = header[5:].strip()
                if section == "invst":
                    raise InvalidFile(
                        "investment registers are not supported", position=f"line {number}"
                    )
                if section not in _REGISTERS and section not in _LISTS:
                    raise InvalidFile(f"unknown QIF section {line!r}", position=f"line {number}")
            elif header == "account":
                section = "account"
            elif not header.startswith(("option:", "clear:")):
                raise InvalidFile(f"unknown QIF header {line!r}", position=f"line {number}")
            record = None
            continue
        if section is None:
            raise InvalidFile("QIF data before any !Type header", position=f"line {number}")
        code, value = line[0], line[1:].strip()
        if code == "^":
            if section == "account" and record is not None:
                account = record.fields.get("N")
            elif section in _REGISTERS and record is not None:
                accounts_with_lines.add(account)
                if len(accounts_with_lines) > 1:
                    raise InvalidFile(
                        "the file holds several accounts' registers; export one account",
                        position=f"line {number}",
                    )
                count += 1
                yield _to_line(record, count, date_order)
            record = None
            continue
        if record is None:
            record = _Record(start=number)
        if section not in _REGISTERS:
            record.fields[code] = value
        elif code == "S":
            record.splits.append({"S": value})
        elif code in "$E%" and record.splits:
            record.splits[-1][code] = value
        elif code in "$E%":
            raise InvalidFile(f"split field {code!r} before any S line", position=f"line {number}")
        else:
            record.fields[code] = value
    if record is not None and section in _REGISTERS and record.fields:
        raise InvalidFile("the last record has no closing ^", position=f"line {record.start}")


def _to_line(record: _Record, count: int, date_order: DateOrder) -> StatementLine:
    position = f"record {count} (line {record.start})"
    fields = record.fields
    if "D" not in fields:
        raise InvalidFile("the record has no date (D)", position=position)
    amount_text = fields.get("T", fields.get("U"))
    if amount_text is None:
        raise InvalidFile("the record has no amount (T)", position=position)
    amount = _amount(amount_text, position)
    splits = tuple(
        Split(
            amount=_amount(split.get("$", "0"), position),
            category=clean_text(split.get("S"), 1000),
            memo=clean_text(split.get("E")),
        )
        for split in record.splits
    )
    if splits and sum((split.amount for split in splits), Decimal(0)) != amount:
        raise InvalidFile(
            f"the splits add up to {sum(s.amount for s in splits)}, not to the total {amount}",
            position=position,
        )
    return StatementLine(
        position=position,
        date=_date(fields["D"], date_order, position),
        amount=amount,
        payee=clean_text(fields.get("P")),
        narration=clean_text(fields.get("M"), 2000),
        reference=clean_text(fields.get("N"), 255),
        category=clean_text(fields.get("L"), 1000),
        splits=splits,
    )


def _amount(text: str, position: str) -> Decimal:
    """US style `1,234.56`, or European `1.234,56` (the last mark is the decimal one)."""
    compact = text.replace(" ", "")
    comma, dot = compact.rfind(","), compact.rfind(".")
    if comma > dot and (dot >= 0 or len(compact) - comma - 1 != 3):
        return parse_amount(
            compact, decimal_separator=",", thousands_separator=".", position=position
        )
    return parse_amount(compact, thousands_separator=",", position=position)


def _date(text: str, order: DateOrder, position: str) -> dt.date:
    """Quicken's dates: `1/15'24` (an apostrophe marks 2000 and later), `01/15/2024`,
    `15.01.2024`, `2024-01-15`; two-digit years without an apostrophe pivot at 70."""
    compact = text.replace(" ", "")
    match = _DATE_PARTS.match(compact)
    if match is None:
        raise InvalidFile(f"date {text!r} is not a QIF date", position=position)
    first, second, third = match.groups()
    try:
        if len(first) == 4:
            year, month, day = int(first), int(second), int(third)
        else:
            month, day = (int(first), int(second)) if order == "mdy" else (int(second), int(first))
            year = int(third)
            if len(third) <= 2:
                year += 2000 if "'" in compact or year < 70 else 1900
        return dt.date(year, month, day)
    except ValueError as exc:
        raise InvalidFile(
            f"date {text!r} is not a valid date (read as {order})", position=position
        ) from exc
