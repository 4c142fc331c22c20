"""What every statement parser produces: lines with exact amounts and their place in the source."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from finance.errors import Unprocessable

MAX_DETAIL = 300
MAX_LINE_CHARS = 100_000


class InvalidFile(Unprocessable):
    """The file cannot be read as the format it claims; nothing of it is written."""

    type, title = "invalid-file", "The file cannot be imported"

    def __init__(self, detail: str, *, position: str | None = None, **extra: Any) -> None:
        if len(detail) > MAX_DETAIL:  # a message may quote the file; the file may be huge
            detail = detail[: MAX_DETAIL - 1] + "…"
        super().__init__(f"{position}: {detail}" if position else detail, **extra)
        self.extra["position"] = position


@dataclass(frozen=True, slots=True)
class Split:
    """One part of a split line (QIF `S`/`$`/`E`), signed like its line."""

    amount: Decimal
    category: str | None
    memo: str | None


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One bank line, signed from the statement account's side: positive is money in.

    `unique_id` is an identifier the bank promises is unique for the account (OFX FITID, a
    CAMT `AcctSvcrRef`, an MT940 bank reference); when present it is the line's identity.
    `reference` is weaker (a cheque number, an end-to-end id) and only part of the fingerprint.
    """

    position: str
    date: dt.date
    amount: Decimal
    payee: str | None = None
    narration: str | None = None
    unique_id: str | None = None
    reference: str | None = None
    currency: str | None = None
    category: str | None = None
    splits: tuple[Split, ...] = ()
    skip: str | None = None  # why there is nothing to book (a pending entry...)


@dataclass(slots=True)
class Statement:
    """A parsed statement: its currency (when the file says) and its lines, possibly lazy."""

    lines: Iterator[StatementLine]
    currency: str | None = None
    account_number: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


def check_line_lengths(data: bytes) -> None:
    """Refuse a file with a line longer than `MAX_LINE_CHARS`: no statement has one, and some
    parsers take time that grows faster than the line (Beancount's does)."""
    start = 0
    number = 1
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        if end - start > MAX_LINE_CHARS:
            raise InvalidFile(
                f"the line is longer than {MAX_LINE_CHARS} characters", position=f"line {number}"
            )
        start = end + 1
        number += 1


def clean_text(value: str | None, limit: int = 500) -> str | None:
    """Collapse whitespace, drop empties, cut to what the columns hold."""
    if value is None:
        return None
    text = " ".join(value.split())
    return text[:limit] or None


_SPACES = re.compile(r"[\s\u00a0\u202f']")


def parse_amount(
    text: str,
    *,
    decimal_separator: str = ".",
    thousands_separator: str | None = None,
    position: str | None = None,
) -> Decimal:
    """Exact decimal from a bank's text: `1.234,56`, `(12.00)`, `12.00-`, `+5`, `€ 3,50`.

    Only the configured separators are accepted, so `1.234,56` under a `.` decimal separator
    is an error instead of a silently wrong amount.
    """
    raw = text.strip()
    value = _SPACES.sub("", raw)
    if thousands_separator and thousands_separator not in (" ", "'"):
        value = value.replace(thousands_separator, "")
    negative = False
    if value.startswith("(") and value.endswith(")"):
        negative, value = True, value[1:-1]
    if value.endswith("-"):
        negative, value = not negative, value[:-1]
    value = value.strip("$€£¥")
    if value.startswith(("-", "+")):
        negative, value = negative != (value[0] == "-"), value[1:]
    value = value.strip("$€£¥")
    if decimal_separator != ".":
        if "." in value:
            raise InvalidFile(
                f"amount {raw!r} has a '.' but the decimal separator is {decimal_separator!r}",
                position=position,
            )
        value = value.replace(decimal_separator, ".")
    if not value or not re.fullmatch(r"\d+(\.\d*)?|\.\d+", value) or len(value) > 40:
        raise InvalidFile(f"amount {raw!r} is not a number", position=position)
    try:
        amount = Decimal(value)
    except InvalidOperation as exc:  # pragma: no cover - the pattern guards this
        raise InvalidFile(f"amount {raw!r} is not a number", position=position) from exc
    return -amount if negative else amount
